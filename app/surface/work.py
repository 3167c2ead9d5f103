"""The Surface tab's background computations and the worker thread they run on.

Weights come from a `core.landscape.live.WeightTap` that the main window wraps around the race's
records: the trajectories it kept, plus every run's current weights, copied consistently even
while the race runs (the copy is taken on the surface worker's thread, never the window's). Or
from any other provider (scripts, tests). `SurfaceWork` starts each computation — a surface
(`surface_updates`), 1-D slices (`slice_updates`), an on-demand sharpness measurement
(`sharpness_updates`), a "Follow training" recomputation (`TrainingFollower`) — in one second
`RaceController` (a QThread + GeneratorWorker over the core generators), so the window never
freezes; a new computation stops the previous one. A user-level error inside a task reaches the
window as a `TaskError` record. The records themselves are drawn by `app.surface.view.SurfaceView`.

"Follow training" recomputes a coarse random-direction surface around run A every N race steps
(one engine reused), in a worker thread of lowered priority (`background_priority`), skipping a
follow-up while the previous computation still runs (``BENCH surface-follow-gui``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from app.shell.controller import RaceController
from app.surface.panel import SurfaceControls
from core.errors import LabError
from core.landscape.live import (
    FOLLOW_GRID,
    RaceWeights,
    SurfaceRequest,
    TrainingFollower,
    WeightTap,
    sharpness_updates,
    slice_updates,
    surface_updates,
)

FOLLOW_NICE = 10  # how much lower a follow-up's thread runs than the race (Linux nice)


def background_priority(nice: int = FOLLOW_NICE) -> None:
    """Lower the *calling thread's* CPU priority (Linux: nice is per thread).

    A follow-up is background work: on a machine with fewer free cores than threads, the
    scheduler should run the race and the window first. The thread is a fresh worker thread that
    ends with its task, so the lowered priority goes with it. Elsewhere (no per-thread nice)
    this does nothing."""
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        pass  # not allowed here: the follow-up simply runs at normal priority


class TaskError:
    """A user-level error raised inside a surface task, carried to the window as a record."""

    def __init__(self, message: str):
        self.message = message


class SurfaceWork:
    """The weights' source, the worker, and the computations started on it.

    ``say(text, error)`` shows a message in the view's info line (a task that cannot start says
    why there); the controls give the request, "Follow training" and the progress bar."""

    def __init__(self, controls: SurfaceControls, say: Callable[..., None], parent: QWidget):
        self.controls = controls
        self._say = say
        self.controller = RaceController(parent)
        self.tap: WeightTap | None = None
        self._provider: Callable[[], RaceWeights | None] | None = None
        self.task = ""  # the computation started last: surface, slices, sharpness or follow
        self._last_follow_step: int | None = None
        self.follow_count = 0  # recomputations started by "Follow training"
        self._shut_down = False  # `shutdown` was called: the window is closing
        self._follower: TrainingFollower | None = None  # built for one race and one setting

    # -- the weights ---------------------------------------------------------------------------

    def set_tap(self, tap: WeightTap | None) -> None:
        """The weights of the race about to run (the main window wraps its records with it)."""
        self.tap = tap
        self._provider = None
        self.forget_follow()  # its model copy and engine belong to the previous race

    def set_weights_provider(self, provider: Callable[[], RaceWeights | None]) -> None:
        """Any other source of weights (scripts, tests): called on the worker thread."""
        self._provider = provider
        self.tap = None

    def forget_follow(self) -> None:
        """A new race (or settings): the next follow-up starts afresh."""
        self._last_follow_step = None
        self._follower = None

    def _source(self) -> RaceWeights | None:
        if self._provider is not None:
            return self._provider()
        return self.tap.snapshot() if self.tap is not None else None

    def has_weights(self) -> bool:
        return self._provider is not None or (self.tap is not None and self.tap.started)

    def shutdown(self) -> None:
        """End the computation for good (the window closes): nothing starts after this, not
        even a "Follow training" recomputation asked by a redraw that was already queued."""
        self._shut_down = True
        self.controller.shutdown()

    # -- computations --------------------------------------------------------------------------

    def start(self, task: str, work: Callable[[RaceWeights, threading.Event], object]) -> bool:
        """Run ``work(weights, stop)`` (a generator of records) on the worker, after stopping
        the previous computation; False (with a message) when it cannot start."""
        if self._shut_down:
            return False
        if not self.has_weights():
            self._say("No weights yet: play (or step) the race first; the surface is computed "
                      "around its current weights.", error=True)
            return False
        self.controller.stop()
        self.task = task
        source_of = self._source

        def make(stop: threading.Event):
            try:
                source = source_of()  # on the worker thread: never blocks the window
                if source is None:
                    yield TaskError("no weights yet: play the race first")
                    return
                yield from work(source, stop)
            except LabError as exc:
                yield TaskError(exc.message if not exc.field else f"{exc.field}: {exc.message}")

        self.controls.set_progress(0.0, "starting…")
        self.controller.start(make)
        return True

    def surface(self, request: SurfaceRequest) -> bool:
        """The surface of a (validated) request, coarse grid first."""
        return self.start("surface", lambda source, stop: surface_updates(source, request, stop))

    def slices(self, kind: str, request: SurfaceRequest) -> bool:
        """The 1-D slices of ``kind`` (`app.surface.slice_page.SLICE_CHOICES`)."""
        span = request.span or 1.0
        return self.start("slices", lambda source, stop: slice_updates(
            source, kind, request.run_a, request.run_b, span=span,
            include_bias_bn=request.include_bias_bn, stop=stop))

    def sharpness(self) -> bool:
        """An on-demand sharpness measurement along each run's kept steps."""
        return self.start("sharpness",
                          lambda source, stop: sharpness_updates(source, stop=stop))

    def race_step(self, step: int) -> None:
        """The race reached ``step``: with "Follow training" on, recompute every N steps.

        A follow-up is a coarse random-direction surface around run A (`TrainingFollower`,
        reused from one follow-up to the next), computed in the worker thread from a snapshot
        of the weights; it is skipped while the previous computation still runs, so the race
        never waits for surfaces it cannot show."""
        if not self.controls.following or self.tap is None or not self.tap.started:
            return
        if self._last_follow_step is not None and step - self._last_follow_step < \
                self.controls.follow_every:
            return
        if self.controller.is_running():
            return  # the previous one is still computing: skip this one
        request = self.controls.request()
        wanted = (FOLLOW_GRID, request.span, request.include_bias_bn, request.run_a)
        if self._follower is None or self._follower.settings != wanted:
            self._follower = TrainingFollower(request.run_a, request.span,
                                              request.include_bias_bn, FOLLOW_GRID)
        follower = self._follower

        def follow(source: RaceWeights, stop: threading.Event):
            background_priority()  # this worker thread only: the race and the window go first
            return follower.updates(source, stop)

        if self.start("follow", follow):
            self._last_follow_step = step
            self.follow_count += 1
