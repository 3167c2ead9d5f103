"""Closing the main window (or failing) in the middle of every kind of background work.

For each: the surface computation, a network race with Follow training, a sweep, the LR range
test, a fair race and a GIF / MP4 export — start it on a tiny lab, wait until it really runs
(progress has arrived), close the main window. Nothing may outlive it: no QThread (the autouse
fixture of conftest.py), no Qt warning (pytest's qt_log_level_fail), no tool window left open, no
partial export file, no child process (ffmpeg) left running or unreaped; a sweep's finished
trials stay in its SQLite storage. A worker that raises reaches the user (a dialog with the
traceback to copy, or the window's error line), and the same work can be started again.
"""

from __future__ import annotations

import glob
import os
import threading
from pathlib import Path

import optuna
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

import app.surface.work as surface_work
import app.tools.fair_race_window as fair_race_window
import app.tools.lr_finder_window as lr_finder_view
from app.export.animation_options import AnimationOptions
from app.tools.sweep_settings import STORAGE_SQLITE
from core.engine.function_race import FunctionRace
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.landscape.live import TrainingFollower
from core.tools.sweep.run import Sweep

BOOM = "injected failure for the test"


# -- tiny labs ---------------------------------------------------------------------------------


def _function_lab(steps=40) -> Lab:
    return validate_lab(Lab(
        name="banana", steps=steps, problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
        runs=(RunSpec("SGD", "sgd", {"lr": 1e-4, "momentum": 0.5}),
              RunSpec("Adam", "adam", {"lr": 0.05}))))


def _network_lab(steps=30) -> Lab:
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]},
        loss="cross_entropy", batch_size=32, eval_every=10, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.02}))
    return validate_lab(Lab(name="net", seed=2, steps=steps, problem=problem, runs=runs))


def _open(window, lab: Lab, tmp_path: Path) -> Path:
    """Open ``lab`` from a real file (a sweep's SQLite storage lives next to it)."""
    path = tmp_path / f"{lab.name}.lab.json"
    save_lab(lab, path)
    assert window.open_lab(path)
    return path


def _fastest(window) -> None:
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)


# -- what must hold after the window closed --------------------------------------------------------


def _child_pids() -> set[int]:
    """This process's children, zombies included (they stay listed until they are reaped)."""
    pids: set[int] = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with open(path) as handle:
            pids.update(int(pid) for pid in handle.read().split())
    return pids


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _close_main_window(qtbot, window) -> None:
    window._confirm_discard = lambda: True
    assert window.close()
    qtbot.wait(20)  # queued signals of the stopped workers arrive (and must be dropped)
    assert not window.controller.is_running()


def _error_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]


def _close_boxes() -> None:
    for box in _error_boxes():
        box.close()


def _assert_one_traceback_box() -> None:
    """The user gets the whole traceback to copy, in one dialog."""
    boxes = _error_boxes()
    assert len(boxes) == 1
    assert "Traceback" in boxes[0].detailedText() and BOOM in boxes[0].detailedText()
    _close_boxes()


@pytest.fixture(autouse=True)
def no_child_process_left():
    """Every test: any child process started during it (ffmpeg) has ended and been reaped."""
    before = _child_pids()
    yield
    _close_boxes()
    left = {pid: _process_name(pid) for pid in _child_pids() - before}
    assert not left, f"child processes left behind: {left}"


# -- surface computation and Follow training -------------------------------------------------------


def _trained_surface(qtbot, window, tmp_path, steps=30):
    _open(window, _network_lab(steps), tmp_path)
    surface = window.network_view.surface_view
    window.network_view.tabs.setCurrentWidget(surface)
    _fastest(window)
    with qtbot.waitSignal(window.race_finished, timeout=20_000):
        window.play()
    return surface


def _big_request(surface) -> None:
    surface.controls.set_directions("random")
    surface.controls.grid_spin.setValue(151)  # many levels: still running when we close


def test_closing_during_a_surface_computation(qtbot, window, tmp_path):
    surface = _trained_surface(qtbot, window, tmp_path)
    _big_request(surface)
    assert surface.compute()
    qtbot.waitUntil(lambda: surface.result is not None, timeout=10_000)  # a first level drew
    assert surface.controller.is_running() and surface.final is None
    _close_main_window(qtbot, window)
    assert not surface.controller.is_running()
    assert surface.final is None  # nothing finished behind the user's back


def test_a_failing_surface_computation_shows_the_traceback_and_can_run_again(
        qtbot, window, tmp_path, monkeypatch):
    surface = _trained_surface(qtbot, window, tmp_path)
    real = surface_work.surface_updates

    def failing(source, request, stop=None):
        for update in real(source, request, stop):
            yield update  # the first level is shown …
            raise RuntimeError(BOOM)  # … then the core code breaks

    monkeypatch.setattr(surface_work, "surface_updates", failing)
    surface.controls.grid_spin.setValue(21)
    assert surface.compute()
    qtbot.waitUntil(lambda: not surface.controller.is_running(), timeout=10_000)
    assert surface.result is not None and surface.final is None
    assert BOOM in surface.info.text()
    boxes = _error_boxes()
    assert len(boxes) == 1
    assert "Traceback" in boxes[0].detailedText() and BOOM in boxes[0].detailedText()
    _close_boxes()
    monkeypatch.setattr(surface_work, "surface_updates", real)
    surface.controls.grid_spin.setValue(9)
    assert surface.compute()
    qtbot.waitUntil(lambda: surface.final is not None, timeout=10_000)
    assert surface.final.loss.shape == (9, 9)


def _follow(surface, every=10) -> None:
    surface.controls.grid_spin.setValue(9)
    surface.controls.follow_spin.setValue(every)
    surface.controls.follow_check.setChecked(True)


def test_pause_resume_then_close_during_a_network_race_with_follow_training(
        qtbot, window, tmp_path, monkeypatch):
    _open(window, _network_lab(steps=100_000), tmp_path)
    made = []  # the steps the engine made, as the worker thread took them
    start = window.controller.start

    def counted_start(make, playing=True):
        def counted(stop):
            for record in make(stop):
                made.append(record.step)
                yield record

        start(counted, playing)

    monkeypatch.setattr(window.controller, "start", counted_start)
    surface = window.network_view.surface_view
    window.network_view.tabs.setCurrentWidget(surface)
    _follow(surface)
    _fastest(window)
    window.play()
    qtbot.waitUntil(lambda: surface.follow_count >= 2 and surface.result is not None,
                    timeout=10_000)
    window.pause()
    assert window.controller.state() == "paused"
    at_pause = len(made)
    qtbot.waitUntil(lambda: not surface.controller.is_running(), timeout=10_000)
    qtbot.wait(100)
    # Paused means paused: what was made before arrives (its last batch may come a little
    # later), and after it at most the step in progress when Pause was pressed.
    qtbot.waitUntil(lambda: window.history.last_step == made[-1], timeout=10_000)
    assert len(made) <= at_pause + 1
    paused_at = window.history.last_step
    follows = surface.follow_count
    window.play()
    qtbot.waitUntil(lambda: surface.follow_count > follows, timeout=10_000)
    assert window.history.last_step > paused_at
    _close_main_window(qtbot, window)
    assert not surface.controller.is_running()
    # A redraw already queued when the window closed (its timer, a pending paint) draws
    # nothing and starts no "Follow training" task: that left a thread running (flaky before).
    window._latest = window._latest or object()
    window._redraw()
    surface.race_step(window.history.last_step + 10 ** 6)
    assert not surface.controller.is_running()


def test_a_failing_follow_up_reports_once_and_the_race_goes_on(qtbot, window, tmp_path,
                                                              monkeypatch):
    _open(window, _network_lab(steps=60), tmp_path)
    surface = window.network_view.surface_view
    window.network_view.tabs.setCurrentWidget(surface)
    real = TrainingFollower.updates

    def failing(self, source, stop=None):
        for update in real(self, source, stop):
            yield update
            raise RuntimeError(BOOM)

    monkeypatch.setattr(TrainingFollower, "updates", failing)
    _follow(surface)
    _fastest(window)
    with qtbot.waitSignal(window.race_finished, timeout=20_000) as done:
        window.play()
    assert done.args == [True]  # the race itself is not hurt
    qtbot.waitUntil(lambda: not surface.controller.is_running(), timeout=10_000)
    boxes = _error_boxes()
    assert len(boxes) == 1, "one dialog, not one per follow-up"
    assert BOOM in boxes[0].detailedText() and "Traceback" in boxes[0].detailedText()
    assert not surface.controls.following and surface.follow_count == 1
    _close_boxes()
    # Fixed (here: unpatched), Follow training works again on the next race.
    monkeypatch.setattr(TrainingFollower, "updates", real)
    surface.controls.follow_check.setChecked(True)
    window.reset()
    with qtbot.waitSignal(window.race_finished, timeout=20_000):
        window.play()
    qtbot.waitUntil(lambda: not surface.controller.is_running(), timeout=10_000)
    assert surface.follow_count >= 2 and surface.result is not None
    assert surface.result.followed and BOOM not in surface.info.text()


# -- sweep, LR range test, fair race ------------------------------------------------------------------


def _start_sweep(window, trials=400, prune=False):
    sweep = window.open_tool("sweep")
    assert sweep.storage_combo.currentData() == STORAGE_SQLITE
    sweep.prune_check.setChecked(prune)  # no per-step reports to SQLite: trials end sooner
    sweep.sampler_combo.setCurrentIndex(sweep.sampler_combo.findData("random"))
    sweep.trials_spin.setValue(trials)
    assert sweep.start()
    return sweep


def test_closing_during_a_sweep_keeps_the_finished_trials_in_sqlite(qtbot, window, tmp_path):
    _open(window, _function_lab(steps=10), tmp_path)
    sweep = _start_sweep(window)
    qtbot.waitUntil(lambda: sweep.last_progress is not None and sweep.last_progress.done >= 3,
                    timeout=10_000)
    name, url = sweep.sweep.name, sweep.sweep.storage
    _close_main_window(qtbot, window)
    assert not sweep.isVisible() and not sweep.controller.is_running()
    assert url.startswith("sqlite:///") and Path(url[len("sqlite:///"):]).parent == tmp_path
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 3 and len(trials) < 400
    assert all(t.value is not None for t in complete)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_a_failing_sweep_says_why_and_can_start_again(qtbot, window, tmp_path, monkeypatch):
    _open(window, _function_lab(steps=10), tmp_path)
    real = Sweep.run

    def failing(self, stop=None):
        for progress in real(self, stop):
            yield progress
            raise RuntimeError(BOOM)

    monkeypatch.setattr(Sweep, "run", failing)
    sweep = _start_sweep(window, trials=5)
    qtbot.waitUntil(lambda: not sweep.controller.is_running(), timeout=10_000)
    assert sweep.last_progress is not None  # a first progress arrived before the error
    assert sweep.error_label.isVisibleTo(sweep)
    assert f"RuntimeError: {BOOM}" in sweep.error_label.text()
    _assert_one_traceback_box()
    assert sweep.start_button.isEnabled()
    monkeypatch.setattr(Sweep, "run", real)
    with qtbot.waitSignal(sweep.sweep_finished, timeout=10_000):
        assert sweep.start()
    assert not sweep.error_label.isVisibleTo(sweep)
    assert sweep.last_progress.final and sweep.last_progress.complete == 5


def _start_lr_test(window, steps=10_000):
    finder = window.open_tool("lr_finder")
    finder.min_edit.setText("1e-6")
    finder.max_edit.setText("1e-4")  # never diverges: the ramp runs all its steps
    finder.steps_spin.setValue(steps)
    assert finder.start()
    return finder


def test_closing_during_an_lr_range_test(qtbot, window, tmp_path):
    _open(window, _function_lab(), tmp_path)
    finder = _start_lr_test(window)
    qtbot.waitUntil(lambda: finder.progress.value() > 10, timeout=10_000)
    lr_before = window.document.lab.runs[0].params["lr"]
    _close_main_window(qtbot, window)
    assert not finder.isVisible() and not finder.task.is_running()
    assert window.document.lab.runs[0].params["lr"] == lr_before


def test_a_failing_lr_range_test_says_why_and_can_start_again(qtbot, window, tmp_path,
                                                              monkeypatch):
    _open(window, _function_lab(), tmp_path)
    real = lr_finder_view.lr_range_test

    def failing(lab, run, lr_min, lr_max, steps, *, stop=None, on_step=None, **kwargs):
        on_step(0, lr_min, 1.0)
        raise RuntimeError(BOOM)

    monkeypatch.setattr(lr_finder_view, "lr_range_test", failing)
    finder = _start_lr_test(window, steps=50)
    qtbot.waitUntil(lambda: not finder.task.is_running(), timeout=10_000)
    assert finder.error_label.isVisibleTo(finder) and BOOM in finder.error_label.text()
    _assert_one_traceback_box()
    assert finder.start_button.isEnabled() and finder.result is None
    monkeypatch.setattr(lr_finder_view, "lr_range_test", real)
    with qtbot.waitSignal(finder.result_ready, timeout=10_000):
        assert finder.start()
    assert finder.result is not None and not finder.error_label.isVisibleTo(finder)


def _start_fair_race(fair, budget=50):
    fair.set_chosen(["sgd", "adam"])
    fair.trials_spin.setValue(budget)
    assert fair.start()
    return fair


def test_closing_during_a_fair_race_leaves_the_lab_alone(qtbot, window, tmp_path):
    _open(window, _function_lab(steps=300), tmp_path)
    fair = _start_fair_race(window.open_tool("fair_race"))
    qtbot.waitUntil(lambda: fair.progress.value() > 0, timeout=10_000)
    _close_main_window(qtbot, window)
    assert not fair.isVisible() and not fair.task.is_running()
    assert fair.tuned_lab is None
    assert [r.label for r in window.document.lab.runs] == ["SGD", "Adam"]  # not replaced


def test_a_failing_fair_race_says_why_and_can_start_again(qtbot, window, tmp_path,
                                                         monkeypatch):
    _open(window, _function_lab(steps=10), tmp_path)
    real = fair_race_window.fair_race

    def failing(lab, optimizers, budget, seeds=1, *, stop=None, on_progress=None, **kwargs):
        # A real first progress report (one trial of the first optimizer), then the error.
        first = []
        inner = threading.Event()

        def grab(name, progress):
            first.append((name, progress))
            inner.set()

        real(lab, optimizers[:1], 1, seeds, stop=inner, on_progress=grab, **kwargs)
        on_progress(*first[-1])
        raise RuntimeError(BOOM)

    monkeypatch.setattr(fair_race_window, "fair_race", failing)
    fair = window.open_tool("fair_race")
    received = []
    fair.task.progress.connect(received.append)
    _start_fair_race(fair, budget=2)
    qtbot.waitUntil(lambda: not fair.task.is_running(), timeout=10_000)
    assert [name for name, _progress in received] == ["sgd"]  # a progress, then the error
    assert fair.error_label.isVisibleTo(fair) and BOOM in fair.error_label.text()
    _assert_one_traceback_box()
    assert fair.start_button.isEnabled()
    assert [r.label for r in window.document.lab.runs] == ["SGD", "Adam"]
    monkeypatch.setattr(fair_race_window, "fair_race", real)
    with qtbot.waitSignal(fair.race_opened, timeout=15_000):
        assert fair.start()
    assert [r.label for r in window.document.lab.runs] == ["SGD (tuned)", "Adam (tuned)"]
    window.reset()  # the tuned race started playing in the main window


# -- export -------------------------------------------------------------------------------------------


def _export_dialog(window):
    window.export_action.trigger()
    return window.export_dialog


def _start_export(qtbot, window, path: Path, frames=200, **size):
    dialog = _export_dialog(window)
    animator = dialog.start_animation(AnimationOptions(
        path, fps=10, width=size.get("width", 160), height=size.get("height", 96),
        frames=frames, views=("loss",)))
    phases = []
    animator.progress.connect(lambda done, _total, phase: phases.append((phase, done)))
    # Really running: the race is done and frames are being encoded into the partial file.
    qtbot.waitUntil(lambda: any(p == "Drawing frames" and d >= 3 for p, d in phases),
                    timeout=10_000)
    assert animator.active
    return dialog, animator


@pytest.mark.parametrize("suffix", ["gif", "mp4"])
def test_closing_during_an_export_leaves_no_file_and_no_process(qtbot, window, tmp_path,
                                                               suffix):
    window.document.replace(_function_lab(steps=400), None)
    out = tmp_path / "out"
    out.mkdir()
    before = _child_pids()
    dialog, animator = _start_export(qtbot, window, out / f"race.{suffix}")
    if suffix == "mp4":  # the check below can see ffmpeg: it is running now
        assert any("ffmpeg" in _process_name(pid) for pid in _child_pids() - before)
    _close_main_window(qtbot, window)
    assert not animator.active and not dialog.isVisible()
    assert not animator.controller.is_running()
    qtbot.wait(50)
    assert list(out.iterdir()) == []  # neither the file nor its partial temp
    assert not _child_pids() - before  # ffmpeg ended and was reaped


def test_cancelling_an_mp4_export_mid_way_reaps_ffmpeg(qtbot, window, tmp_path):
    window.document.replace(_function_lab(steps=400), None)
    before = _child_pids()
    dialog, animator = _start_export(qtbot, window, tmp_path / "race.mp4")
    assert any("ffmpeg" in _process_name(pid) for pid in _child_pids() - before)
    dialog.cancel_button.click()
    assert not animator.active and dialog.status.text().startswith("Canceled")
    assert not _child_pids() - before
    assert not [p.name for p in tmp_path.iterdir() if "race" in p.name]  # nor a partial file


def test_a_failing_export_race_says_why_and_can_export_again(qtbot, window, tmp_path,
                                                            monkeypatch):
    window.document.replace(_function_lab(steps=40), None)
    real = FunctionRace.records

    def failing(self, stop=None):
        for i, record in enumerate(real(self, stop)):
            yield record
            if i == 5:
                raise RuntimeError(BOOM)

    monkeypatch.setattr(FunctionRace, "records", failing)
    dialog = _export_dialog(window)
    target = tmp_path / "race.gif"
    options = AnimationOptions(target, fps=10, width=120, height=80, frames=4, views=("loss",))
    animator = dialog.start_animation(options)
    with qtbot.waitSignal(animator.failed, timeout=10_000) as failed:
        pass
    assert BOOM in failed.args[0] and BOOM in dialog.status.text()
    assert any(BOOM in box.text() for box in _error_boxes())
    assert not [p.name for p in tmp_path.iterdir() if "race" in p.name]  # nor a partial file
    _close_boxes()
    monkeypatch.setattr(FunctionRace, "records", real)
    animator = dialog.start_animation(options)
    with qtbot.waitSignal(animator.finished, timeout=10_000):
        pass
    assert target.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
