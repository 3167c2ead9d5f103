"""The race's timeline: scrub back through a paused or finished 2-D race, step back, branch.

A slider in the playback toolbar spans the recorded steps 0 … last. Moving it (or ←, →) shows
every view at step t: the landscape's paths end at t with each run's marker on its point at t,
the loss and lr plots get a vertical cursor at t, and the status bar says "step t / N". The race
itself is not touched: the engine stays paused where it was.

* ← (Step back) pauses a playing race and moves the cursor one step back.
* → at a scrubbed step moves forward through the recorded history; at the newest step it
  advances the engine as before.
* Play at a scrubbed step replays the recorded steps from there at the chosen speed, like a
  video, then the race goes on from its newest step (a finished race stops at its end).
* Branch at this step… (Ctrl+B, or right-click a run) adds a run that replays the selected run
  up to the shown step and then continues with whatever optimizer, hyperparameters or schedule
  the user gives it (core.lab.branches; an undoable edit that opens the run editor on the branch).
  Every run keeps its recorded steps before the branch step and the race goes on from there
  (app/shell/race_edits.py, core/engine/continuation.py).

Network races keep their own views: the timeline is disabled there (and branching refused).
The history may thin long races (core.engine.history keeps the newest 32 768 steps per run at full
resolution); on a thinned stretch the view shows the nearest kept step and the status bar says so.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QSlider, QStyle

from core.engine.history import RaceHistory
from core.errors import LabError
from core.lab.branches import branch_run
from core.lab.format import check_branches

REPLAY_INTERVAL_MS = 33  # ~30 frames a second when Play replays recorded steps
SLIDER_TIP = "Timeline: drag to see every view at an earlier step of a paused or finished race"
OTHER_RACE_TIP = ("The timeline scrubs 2-D races; this race's curves over the steps are in its "
                  "Curves tab")
SLIDER_SYNC_S = 0.2  # while a race plays, move the (disabled) slider at most 5 times a second


class Timeline(QObject):
    """Owns the slider, the step-back and branch actions, and the scrubbed position."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.position: int | None = None  # the scrubbed step; None: the views show the newest
        self._last_sync = 0.0
        sp = QStyle.StandardPixmap
        self.step_back_action = window._action(
            "Step &back", self.step_back, Qt.Key.Key_Left,
            "Show the previous step (←); pauses a playing race", sp.SP_MediaSeekBackward,
        )
        self.branch_action = window._action(
            "&Branch at this step…", self.branch_selected, QKeySequence("Ctrl+B"),
            "Add a run that replays the selected run up to the step shown, then continues "
            "with settings you choose (Ctrl+B)",
        )
        slider = QSlider(Qt.Orientation.Horizontal, objectName="timelineSlider")
        slider.setMinimumWidth(180)
        slider.setMaximumWidth(480)
        slider.setRange(0, 0)
        slider.setEnabled(False)
        slider.setToolTip(SLIDER_TIP)
        slider.valueChanged.connect(self._on_slider)
        self.slider = slider
        self._replay = QTimer(self)
        self._replay.setInterval(REPLAY_INTERVAL_MS)
        self._replay.timeout.connect(self._replay_tick)
        window.runs_panel.branch_requested.connect(self.branch)

    def follow(self, controller) -> None:
        """Connect to the race (after the window's own slots, so the history is up to date)."""
        controller.batch.connect(self._on_batch)
        controller.state_changed.connect(self._on_state_changed)
        controller.finished.connect(self._on_finished)

    # -- state -------------------------------------------------------------------------------

    def _history(self) -> RaceHistory | None:
        history = self.window.history
        return history if isinstance(history, RaceHistory) else None

    def replaying(self) -> bool:
        return self._replay.isActive()

    def reset(self) -> None:
        """A new or edited lab: back to live, nothing to scrub."""
        self._replay.stop()
        self.position = None
        self.window.loss_plot.set_cursor(None)
        self.window.lr_plot.set_cursor(None)
        self._sync_slider()

    def _sync_slider(self) -> None:
        history = self._history()
        last = history.last_step if history is not None else -1
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, last))
        self.slider.setValue(self.position if self.position is not None else max(0, last))
        self.slider.blockSignals(False)
        self.slider.setEnabled(last >= 1 and not self.window.controller.is_playing())
        other = history is None and self.window.history is not None  # a network or rl race
        self.slider.setToolTip(OTHER_RACE_TIP if other else SLIDER_TIP)

    @Slot(object)
    def _on_batch(self, _records) -> None:
        if self.position is not None:
            # The engine moved on (a batch in flight when the user stepped back): keep the
            # scrubbed view rather than the window's live redraw.
            self.window._redraw_timer.stop()
        now = time.perf_counter()
        if self.position is not None or now - self._last_sync >= SLIDER_SYNC_S:
            self._last_sync = now
            self._sync_slider()

    @Slot(str)
    def _on_state_changed(self, _state: str) -> None:
        self._sync_slider()

    @Slot(bool)
    def _on_finished(self, _completed: bool) -> None:
        self._sync_slider()
        if self.position is not None:
            self.show_step(self.position)  # the window's final redraw drew the newest step

    # -- scrubbing ---------------------------------------------------------------------------

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        self._replay.stop()
        self.scrub_to(value)

    def current_step(self) -> int:
        """The step the views show."""
        if self.position is not None:
            return self.position
        history = self._history()
        return max(0, history.last_step) if history is not None else 0

    def scrub_to(self, step: int) -> None:
        """Show every view at ``step`` (clamped to the recorded steps); the newest is live."""
        history = self._history()
        if history is None or history.last_step < 0:
            return
        step = int(min(max(step, 0), history.last_step))
        if step == history.last_step:
            self.go_live()
            return
        self.position = step
        self.window._redraw_timer.stop()
        if not self.show_step(step):
            self.window.status_label.setText(
                f"Showing step {step} of {history.last_step}: ← / → step, Play replays from "
                "here, Ctrl+B branches the selected run at this step."
            )
        self._sync_slider()

    def go_live(self) -> None:
        """Back to the newest step: the window draws the race as it stands."""
        self.position = None
        self.window.loss_plot.set_cursor(None)
        self.window.lr_plot.set_cursor(None)
        self._sync_slider()
        self.window.flush_redraw()

    def show_step(self, step: int) -> bool:
        """Landscape paths up to ``step`` with the markers there, curve cursors, step label.
        True when the step was thinned out of the history (the status bar says so)."""
        window, history = self.window, self._history()
        paths, alive, thinned = [], [], None
        for i, series in enumerate(history.runs):
            steps = series.column("step")
            # Up to the newest kept step at or before ``step`` (at least the first kept one:
            # the history may have thinned away a long race's earliest steps).
            kept = max(int(np.searchsorted(steps, step, side="right")), min(1, len(steps)))
            paths.append((series.column("x")[:kept], series.column("y")[:kept],
                          series.column("loss")[:kept]))
            event = history.divergences.get(i)
            alive.append(event is None or event.step > step)
            # A kept step before ``step`` while later ones exist: this stretch was thinned.
            if 0 < kept < len(steps) and steps[kept - 1] != step:
                thinned = int(steps[kept - 1]) if thinned is None else min(thinned, int(steps[kept - 1]))
        window.landscape.update_paths([p[:2] for p in paths], alive)
        window.landscape_3d.update_paths(paths, alive)
        window.loss_plot.set_cursor(step)
        window.lr_plot.set_cursor(step)
        window._show_step(step)
        if thinned is not None:
            window.status_label.setText(
                f"Step {step} was thinned out of this long race's history: the landscape shows "
                f"the nearest kept step, {thinned}."
            )
        return thinned is not None

    def step_back(self) -> None:
        """← : pause, then show the step before the one shown."""
        history = self._history()
        if history is None or history.last_step < 1:
            return
        self._replay.stop()
        if self.window.controller.is_playing():
            self.window.pause()
        self.scrub_to(self.current_step() - 1)

    def step_forward(self) -> bool:
        """→ at a scrubbed step: one step forward through the history. False: not scrubbed
        (the window advances the engine instead)."""
        if self.position is None:
            return False
        self._replay.stop()
        self._show_play_icon(False)
        self.scrub_to(self.position + 1)
        return True

    # -- replay ------------------------------------------------------------------------------

    def play_from_cursor(self) -> bool:
        """Play at a scrubbed step: replay the recorded steps from there (Play again pauses
        the replay). False when not scrubbed: the window plays the race as usual."""
        if self.replaying():
            self._replay.stop()
            self._show_play_icon(False)
            return True
        if self.position is None:
            return False
        self.slider.setEnabled(False)
        self._show_play_icon(True)
        self._replay.start()
        return True

    def _replay_tick(self) -> None:
        history = self._history()
        if history is None or self.position is None:
            self._replay.stop()
            return
        speed = self.window.speed_combo.currentData() or 0
        # "Max" replays whatever is left in about a second.
        stride = (max(1, round(speed * REPLAY_INTERVAL_MS / 1000)) if speed
                  else max(1, (history.last_step - self.position) // 30))
        target = self.position + stride
        if target < history.last_step:
            self.position = target
            self.show_step(target)
            self.slider.blockSignals(True)
            self.slider.setValue(target)
            self.slider.blockSignals(False)
            return
        self._replay.stop()
        self.go_live()
        if self.window.controller.is_running():
            self.window.controller.play()  # the race goes on from its newest step
        else:
            self._show_play_icon(False)

    def _show_play_icon(self, playing: bool) -> None:
        self.window._on_state_changed("playing" if playing else self.window.controller.state())

    # -- branching ---------------------------------------------------------------------------

    def branches_ok(self) -> bool:
        """Before a race starts: a branch the GUI's edits left unreplayable (its parent removed
        or disabled…) is reported in the status bar instead of failing in the worker."""
        try:
            check_branches(self.window.document.lab)
        except LabError as exc:
            self.window.status_label.setText(f"Cannot race: {exc}")
            return False
        return True

    def branch_selected(self) -> None:
        """Ctrl+B: branch the selected run (else the first one racing) at the step shown."""
        window = self.window
        index = window.runs_panel.selected_run()
        if index < 0 and window._race_indices:
            index = window._race_indices[0]
        if index < 0:
            window.status_label.setText("Select a run to branch from.")
            return
        self.branch(index)

    @Slot(int)
    def branch(self, index: int) -> None:
        """Add a branch of run ``index`` at the step shown and open the run editor on it."""
        from app.runs.run_text import next_color

        window = self.window
        lab = window.document.lab
        step = self.current_step()
        parent = lab.runs[index]
        try:
            new = branch_run(lab, parent.label, step, {"color": next_color(lab)})
        except LabError as exc:
            window.status_label.setText(f"Cannot branch: {exc}")
            return
        label = new.runs[-1].label
        window.document.edit(new, f"Branch '{parent.label}' at step {step}")
        window.runs_panel.select_run(len(new.runs) - 1)
        window.status_label.setText(
            f"Added '{label}': it replays '{parent.label}' up to step {step}. Change its optimizer, "
            f"hyperparameters or schedule in the editor, then press Play: every run goes on from "
            f"step {window.history.last_step + 1 if window.history is not None else 0}."
        )
