"""The main window's race: play / pause / step / reset through the controller (app/shell/controller.py),
the history each batch of records is appended to, the throttled redraw of the arena or the network
views, the optimizer internals of the shown step, and the status line's race messages.

The state of the race shown (history, the newest record, the runs racing) lives here; the
`MainWindow` forwards the names tests and the timeline (app/shell/timeline_slider.py) read. What an
edit (a branch goes on from its step) or a theme switch does to it: app/shell/race_edits.py.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QStyle

from app.runs.run_text import stop_note
from app.shell.files import APP_NAME
from app.shell.run_palette import current_run_colors
from core.engine.continuation import changed_runs
from core.engine.factory import make_race
from core.engine.history import NetworkHistory, RaceHistory
from core.engine.race_summary import race_summary
from core.lab.format import Lab

MIN_REDRAW_INTERVAL = 1 / 30  # seconds
ARENA_TURNS = ("landscape", "loss", "landscape", "lr")
PAUSED = "Paused at step"


def paused_text(step: int) -> str:
    return f"{PAUSED} {step}. Space plays on, → steps once."


class RaceWiring(QObject):
    """Runs the window's race and draws it as records arrive. A child of the window made before
    its controller, so its connections go before the controller is deleted."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.history: RaceHistory | NetworkHistory | None = None
        self.notices: list[str] = []
        self.internals_step = 0
        self.diagram_step = -1
        self.latest = None  # the newest record, for the throttled redraw
        self.last_draw_cost = 0.0
        self.last_draw_end = 0.0
        self.draw_started = 0.0
        self.paint_pending = False  # a redraw's paint is still to come (see `redraw`)
        self.closed = False  # the window's closeEvent was accepted: no more redraws
        self.drawn_record = None
        self.turn = 0
        self.redraw_timer = QTimer(window)
        self.redraw_timer.setSingleShot(True)
        self.redraw_timer.timeout.connect(self.redraw)
        self.race_labels: tuple[str, ...] = ()
        self.race_indices: list[int] = []
        self.run_notes: dict[str, str] = {}  # run label → its divergence forensics
        self.finished = False
        self.race_lab: Lab | None = None  # the lab whose race `history` records

    @property
    def controller(self):
        return self.window.controller

    def connect(self) -> None:
        """Listen to the controller (before the timeline does, so the history is up to date)."""
        self.controller.batch.connect(self.on_batch)
        self.controller.finished.connect(self.on_finished)
        self.controller.failed.connect(self.on_failed)
        self.controller.state_changed.connect(self.on_state_changed)

    def reset_views(self, lab: Lab) -> None:
        """A fresh history for the lab's enabled runs, every view back to step 0."""
        window = self.window
        self.race_indices = [i for i, r in enumerate(lab.runs) if r.enabled]
        self.race_labels = tuple(lab.runs[i].label for i in self.race_indices)
        own = [lab.run_color(i) for i in self.race_indices]
        # Curves on the theme's plain plots: darker variants on the light theme
        # (app/shell/run_palette.py). The landscape keeps the lab's own colours: they are drawn
        # on its dark heatmap in either theme.
        colors = current_run_colors(own)
        previous = self.race_lab
        self.race_lab = lab
        if lab.problem.kind == "rl":  # app/rl/view.py draws an RLHistory
            from core.engine.rl_history import RLHistory

            self.history = RLHistory(list(self.race_labels))
            window.rl_view.set_runs(list(self.race_labels), colors)
        elif lab.is_network:
            self.history = NetworkHistory(self.race_labels)
            window.network_view.set_runs(
                list(self.race_labels), colors, window.lab_views.dataset, total_steps=lab.steps,
                model_spec=window.network_panel.diagram.model_spec,  # None while it is invalid
                # The loss surface depends on the problem and the seed, not on an optimizer's
                # settings: a picture survives an lr change of a run that does not span it.
                surface_key=(repr(lab.problem), lab.seed, lab.base_dir),
                changed_runs=changed_runs(previous, lab),
            )
            window.network_view.surface_view.set_sharpness_every(lab.problem.sharpness_every)
            # The confusion matrix and per-layer plot follow the run selected in the runs table.
            self.select_internals_run(window.runs_panel.selected_run())
        else:
            self.history = RaceHistory(self.race_labels)
            window.landscape.set_runs(own, list(self.race_labels))
            window.landscape_3d.set_runs(own)
            window.internals_panel.set_runs(lab, self.race_indices)
            # set_runs selects the first row: the run selected in the runs table is the one
            # whose update rule shows (an edit of run 3 must not show run 1's rule).
            self.select_internals_run(window.runs_panel.selected_run())
            window.loss_plot.set_runs(list(self.race_labels), colors, x_max=lab.steps)
            window.lr_plot.set_runs(list(self.race_labels), colors, x_max=lab.steps)
        self.finished = False
        self.latest = None
        self.diagram_step = -1
        self.run_notes = {}  # run label → its divergence forensics (runs table tooltip)
        window.runs_panel.show_run_notes({})
        self.redraw_timer.stop()
        window.timeline.reset()
        self.show_step(0)
        if not self.race_indices:
            window.status_label.setText("Add a run to start a race.")
        else:
            # Space plays from anywhere but a free-text field, where it types a space
            # (app/shell/shortcut_guard.py): the line promises no more than that.
            window.status_label.setText(f"Ready: {len(self.race_indices)} runs. Press Play, or "
                                        "Space when not typing in a text box.")

    # -- playback ----------------------------------------------------------------------------

    def _make_race(self):
        lab = self.window.document.lab
        if lab.is_network:
            from core.engine.devices import resolve_device
            from core.landscape.live import WeightTap

            # The same device decision the engine makes, said here on the main thread.
            _device, notices = resolve_device(lab.problem.device)
            self.notices = notices

            # The Surface tab reads the race's weights through this tap (core.landscape.live).
            tap = WeightTap()
            self.window.network_view.surface_view.set_tap(tap)

            def make(stop):
                return tap.records(make_race(lab), stop)

            return make

        if lab.problem.kind == "rl":
            return lambda stop: make_race(lab).records(stop)

        def make(stop):
            return make_race(lab, internals=True).records(stop)

        return make

    def _can_race(self) -> bool:
        if not self.race_indices:
            self.window.status_label.setText("No enabled runs: add or enable a run first.")
            return False
        return self.window.timeline.branches_ok()

    def _raced_before(self) -> bool:
        return self.finished or (self.history is not None and self.history.last_step >= 0)

    def play(self) -> None:
        if not self._can_race() or self.window.timeline.play_from_cursor():
            return
        if self.controller.is_running():
            self.controller.play()
            return
        if self._raced_before():
            self.reset_views(self.window.document.lab)
        self.controller.start(self._make_race(), playing=True)

    def step(self) -> None:
        if not self._can_race() or self.window.timeline.step_forward():
            return
        if not self.controller.is_running():
            if self._raced_before():
                self.reset_views(self.window.document.lab)
            self.controller.start(self._make_race(), playing=False)
            self.controller.step(2)  # step 0 (the start) and step 1
        else:
            self.controller.step(1)

    def reset(self) -> None:
        self.controller.stop()
        self.reset_views(self.window.document.lab)

    def on_speed(self, index: int) -> None:
        self.controller.set_speed(self.window.speed_combo.itemData(index))

    @Slot(object)
    def on_batch(self, records: list) -> None:
        """Append a batch to the history (cheap); drawing happens in `redraw`, throttled."""
        history = self.history
        if history is None:
            return
        history.extend(records)
        self.latest = records[-1]
        status = self.window.status_label
        for record in records:
            for event in record.diverged:
                if event.step < getattr(history, "keep_from", (0,) * (event.run + 1))[event.run]:
                    continue  # a kept run's recomputed step: said when it first happened
                # The forensics (lr, last finite values, the layer that blew up) go to the
                # status bar and, line by line, to the tooltip of the run's row in the table.
                details = event.describe()
                headline = event.reason.split(";")[0].split(" (")[0]  # the rest: tooltip
                if event.kind != "diverged":  # its optimizer failed: the error's own line
                    headline, details = event.reason, ""
                status.setText(
                    f"{event.label} {event.verb} at step {event.step}: {headline}"
                    + (f" — {details}" if details else "") + ". The other runs go on."
                )
                # A failed optimizer's traceback goes there too (core/engine/faults.py).
                self.run_notes[event.label] = stop_note(event)
                self.window.runs_panel.show_run_notes(self.run_notes)
            for event in getattr(record, "stopped", ()):
                status.setText(
                    f"{event.label} stopped early at step {event.step}: no better validation "
                    f"loss since step {event.best_step} ({event.best_val_loss:.4g})."
                )
        if self.notices:
            status.setText(" ".join(self.notices))
            self.notices = []
        self._schedule_redraw()

    # -- drawing -----------------------------------------------------------------------------

    def _schedule_redraw(self) -> None:
        """Redraw at most ~30 times a second, and never sooner than 3x the last draw's cost
        after it: the main thread stays mostly idle, so the window answers at once."""
        if self.redraw_timer.isActive() or self.paint_pending:
            return  # a pending paint schedules the next redraw when it is done
        since = time.perf_counter() - self.last_draw_end
        wait = max(MIN_REDRAW_INTERVAL, 3 * self.last_draw_cost) - since
        self.redraw_timer.start(max(0, int(wait * 1000)))

    def redraw(self) -> None:
        history, last = self.history, self.latest
        if history is None or last is None or self.paint_pending or self.closed:
            return
        self.draw_started = time.perf_counter()
        # The worker pauses between steps while we draw and until the paint is done: otherwise
        # every Qt call of the paint waits for the GIL behind it.
        self.controller.main_idle.clear()
        try:
            if isinstance(history, NetworkHistory):
                self._redraw_network(history)
            elif self.window.document.lab.problem.kind == "rl":
                self.window.rl_view.update_from(history)
            else:
                self._redraw_arena(history, last)
            self.show_step(last.step)
        except BaseException:
            self.controller.main_idle.set()
            raise
        # Paint in the event loop's next turns, not here: the scene hands its dirty regions to
        # the view in one turn and the view paints them (only them) in the next. A timer tick
        # or a click then waits for the draw or for the paint, never for both in one block
        # (measured: the network window's p99 event-loop gap ~24 -> ~16 ms).
        self.paint_pending = True
        self.drawn_record = last
        QTimer.singleShot(0, self.window, self._paint_handed_over)

    def _paint_handed_over(self) -> None:
        QTimer.singleShot(0, self.window, self._painted)

    def _painted(self) -> None:
        self.paint_pending = False
        self.controller.main_idle.set()
        self.last_draw_end = time.perf_counter()
        self.last_draw_cost = self.last_draw_end - self.draw_started
        if self.latest is not self.drawn_record:
            self._schedule_redraw()  # records arrived while the paint was pending

    def _redraw_arena(self, history: RaceHistory, last, parts: tuple[str, ...] | None = None):
        """Update the arena's plots. One plot per call by default, in turn: Qt then repaints
        one view per frame, so no single frame blocks the window for long. The landscape,
        where the race is watched, gets every other turn."""
        window = self.window
        if parts is None:
            parts = (ARENA_TURNS[self.turn % len(ARENA_TURNS)],)
            self.turn += 1
        drawn = None
        if "landscape" in parts:
            paths = [(s.column("x"), s.column("y")) for s in history.runs]
            alive = [bool(a) for a in last.alive]
            window.landscape.update_paths(paths, alive)
            drawn = window.landscape
            # The 3-D tab keeps the arrays and draws them only while it shows.
            window.landscape_3d.update_paths(
                [(s.column("x"), s.column("y"), s.column("loss")) for s in history.runs], alive)
        if "loss" in parts:
            window.loss_plot.update_series([(s.column("step"), s.column("loss")) for s in history.runs])
            drawn = window.loss_plot
        if "lr" in parts:
            window.lr_plot.update_series([(s.column("step"), s.column("lr")) for s in history.runs])
            drawn = window.lr_plot
        return drawn

    def flush_redraw(self) -> None:
        """Draw everything now (tests, screenshots, the end of a race)."""
        self.redraw_timer.stop()
        history, last = self.history, self.latest
        if history is None or last is None:
            return
        if isinstance(history, NetworkHistory):
            self._redraw_network(history)
            self.window.network_view.flush()  # update_from draws one part per call; draw them all
        elif self.window.document.lab.problem.kind == "rl":
            self.window.rl_view.update_from(history)
        else:
            self._redraw_arena(history, last, parts=("landscape", "loss", "lr"))
        self.show_step(last.step)

    def _redraw_network(self, history: NetworkHistory) -> None:
        network_view = self.window.network_view
        network_view.update_from(history)
        network_view.surface_view.race_step(history.last_step)  # "Follow training"
        evaluation = history.last_evaluation
        if history.last_evaluation_step == self.diagram_step:
            return  # the diagram's weights only change with an evaluation
        self.diagram_step = history.last_evaluation_step
        if evaluation is not None and evaluation.weights is not None:
            run = self._diagram_run()
            if run is not None:
                self.window.network_panel.diagram.set_weights(list(evaluation.weights[run]))

    def _diagram_run(self) -> int | None:
        """The race index whose weights the diagram shows: the selected run, else the first."""
        selected = self.window.runs_panel.selected_run()
        if selected in self.race_indices:
            return self.race_indices.index(selected)
        return 0 if self.race_indices else None

    def show_step(self, step: int) -> None:
        lab = self.window.document.lab
        if lab.problem.kind == "rl":  # no fixed number of steps: rounds of episodes
            self.window.step_label.setText(f"round {step}")
        else:
            self.window.step_label.setText(f"step {step} / {lab.steps}")
        status = self.window.status_label
        if status.text().startswith(PAUSED) and self.controller.state() == "paused":
            status.setText(paused_text(step))  # a step (→) while paused: say the new step
        self.show_internals(step=step)

    @Slot(int)
    def select_internals_run(self, lab_index: int) -> None:
        """The run selected in the runs table is the one the internals panel (function labs),
        the confusion matrix and the per-layer plot (network labs) show."""
        if lab_index not in self.race_indices:
            return
        race_index = self.race_indices.index(lab_index)
        if isinstance(self.history, NetworkHistory):
            self.window.network_view.select_run(race_index)
        elif self.window.document.lab.problem.kind == "rl":
            self.window.rl_view.select_run(race_index)
        else:
            self.window.internals_panel.select_run(race_index)

    def show_internals(self, *_signal_args, step: int | None = None) -> None:
        """The shown step's optimizer internals: overlay arrows and the panel's readout."""
        window = self.window
        self.internals_step = self.internals_step if step is None else int(step)
        if step is not None and window.internals_dock.isHidden():
            # Every redraw lands here: with the dock closed nothing shows internals (the arrows
            # went when it closed); opening it draws the step remembered above.
            return
        found = (self.history.internals_at(self.internals_step)
                 if isinstance(self.history, RaceHistory) else None)
        window.internals_panel.set_internals(self.internals_step, found)
        shown = not window.internals_dock.isHidden() and found is not None
        window.landscape.internals.update(found if shown else None, window.internals_panel.shown(),
                                          self.race_labels)

    # -- the race's end and state ------------------------------------------------------------

    @Slot(bool)
    def on_finished(self, completed: bool) -> None:
        self.flush_redraw()
        if completed and self.window.document.lab.problem.kind == "rl":
            self.finished = True  # its summary line: core/engine/rl_history.py
            self.window.status_label.setText(self.history.summary() if self.history else "")
        elif completed:
            self.finished = True
            # A winner only when there is one: ties and all-diverged races say so
            # (core/engine/race_summary.py).
            summary = "" if self.history is None else race_summary(self.history)
            self.window.status_label.setText(summary)
            # A crash from here on must not cost the finished race (restored by offer_recovery).
            self.window.recovery.save_results(self.window.document.lab, self.history)
        self.window.race_finished.emit(completed)

    @Slot(str)
    def on_failed(self, details: str) -> None:
        from app.shell.errors import show_failure

        self.window.status_label.setText("The race stopped on an error (details in the dialog).")
        show_failure(self.window, APP_NAME, "The race stopped on an error.", details,
                     "The lab is unchanged; you can edit it and press Play again.")

    @Slot(str)
    def on_state_changed(self, state: str) -> None:
        playing = state == "playing"
        play_action = self.window.play_action
        play_action.setText("&Pause" if playing else "&Play")
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        play_action.setIcon(self.window.style().standardIcon(icon))
        # The status line says what is true now (a divergence or the winner's line stays
        # until the next change of state).
        status = self.window.status_label
        if playing:
            status.setText(f"Playing: {len(self.race_indices)} runs. Space pauses.")
        elif state == "paused":
            step = self.history.last_step if self.history is not None else 0
            status.setText(paused_text(max(step, 0)))
