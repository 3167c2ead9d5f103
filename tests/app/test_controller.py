"""The worker thread: batches arrive on the main thread, and every way of ending it is clean."""

from __future__ import annotations

import itertools
import time

import pytest

from app.shell.controller import RaceController
from app.shell.worker import MAX_EMIT_HZ


def counting(n, delay=0.0, made=None):
    """A generator factory of 0..n-1; ``made`` (a list) gets each number as it is made, on the
    worker thread, before it is batched."""
    def make(stop):
        for i in range(n):
            if stop.is_set():
                return
            if delay:
                time.sleep(delay)
            if made is not None:
                made.append(i)
            yield i

    return make


def test_all_records_arrive_in_order_in_few_batches(qtbot):
    ctrl = RaceController()
    got = []
    ctrl.batch.connect(got.extend)
    with qtbot.waitSignal(ctrl.finished, timeout=10_000) as blocker:
        ctrl.start(counting(20_000))
    assert blocker.args == [True]
    assert got == list(range(20_000))
    assert not ctrl.is_running()


def test_batches_are_throttled(qtbot):
    ctrl = RaceController()
    batches = []
    ctrl.batch.connect(batches.append)
    started = time.perf_counter()
    with qtbot.waitSignal(ctrl.finished, timeout=10_000):
        ctrl.start(counting(3000, delay=0.0002))
    elapsed = time.perf_counter() - started
    # At most ~60 emits a second (+ the final flush), never one signal per record.
    assert len(batches) <= elapsed * MAX_EMIT_HZ * 1.5 + 3
    assert sum(len(b) for b in batches) == 3000


def test_pause_step_and_play(qtbot):
    ctrl = RaceController()
    got, made = [], []
    ctrl.batch.connect(got.extend)
    ctrl.start(counting(1_000_000, made=made), playing=False)
    qtbot.wait(150)
    assert got == []
    ctrl.step(3)
    qtbot.waitUntil(lambda: len(got) == 3, timeout=5000)
    qtbot.wait(100)
    assert got == [0, 1, 2]
    ctrl.play()
    qtbot.waitUntil(lambda: len(got) > 100, timeout=5000)
    ctrl.pause()
    at_pause = len(made)
    # What was made before the pause still arrives (the last batch may come a little later);
    # after it, at most the record in progress when pause() was called.
    qtbot.wait(150)
    qtbot.waitUntil(lambda: got == made, timeout=5000)
    assert len(made) <= at_pause + 1
    ctrl.stop()
    assert not ctrl.is_running()


def test_speed_paces_the_loop(qtbot):
    ctrl = RaceController()
    got, made = [], []
    ctrl.batch.connect(got.extend)
    ctrl.set_speed(50)
    started = time.perf_counter()
    ctrl.start(counting(1_000_000, made=made))
    qtbot.waitUntil(lambda: len(got) >= 10, timeout=10_000)
    ctrl.stop()  # returns once the worker thread has ended
    elapsed = time.perf_counter() - started
    # Record k is made no sooner than k/50 s after the start, however fast or slow the machine:
    # an upper bound on the same clock, not a rate the machine must reach (+1 for a timed wait
    # that wakes a hair early).
    assert 10 <= len(got) <= len(made) <= 50 * elapsed + 2


def test_a_worker_exception_reaches_the_user_and_the_thread_ends(qtbot):
    def broken(stop):
        yield 1
        raise RuntimeError("boom in the engine")

    ctrl = RaceController()
    with qtbot.waitSignal(ctrl.failed, timeout=5000) as failed:
        ctrl.start(broken)
    assert "boom in the engine" in failed.args[0]
    qtbot.waitUntil(lambda: not ctrl.is_running(), timeout=5000)


def test_restart_never_mixes_two_races(qtbot):
    ctrl = RaceController()
    got = []
    ctrl.batch.connect(got.extend)
    ctrl.start(lambda stop: (("old", i) for i in itertools.count()))
    qtbot.wait(50)
    got.clear()
    with qtbot.waitSignal(ctrl.finished, timeout=5000):
        ctrl.start(lambda stop: (("new", i) for i in range(100)))
    assert got and all(tag == "new" for tag, _ in got)


@pytest.mark.parametrize("cycle", range(20))
def test_start_stop_twenty_times_leaves_no_thread(qtbot, cycle):
    ctrl = RaceController()
    ctrl.start(counting(10_000_000))
    qtbot.wait(cycle % 3)  # stop at different moments, including before the first record
    ctrl.stop()
    assert not ctrl.is_running()
