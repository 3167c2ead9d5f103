"""The main window: problem and runs on the left, the landscape in the middle, curves on the right.

Data flow (DESIGN.md): panels emit edited labs → the document (undo stack) → ``lab_changed`` →
the window stops any race, resets the history and redraws. Play starts the shared core engine in
the controller's worker thread; each batch of records is appended to the history once and each
plot gets ``setData`` once per batch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QStyle,
    QToolBar,
)

from app.arena.function_map import LandscapePlot
from app.arena.internals_panel import InternalsPanel
from app.arena.problem_panel import ProblemPanel
from app.runs.runs_panel import RunsPanel
from app.shell.controller import RaceController
from app.shell.document import LabDocument
from app.shell.recovery import RecoveryStore
from app.shell.status import ElidedLabel
from app.shell.timeline_slider import Timeline
from app.shell.wheel_guard import install_wheel_guard
from app.widgets.curves import LossPlot, LrPlot
from core.engine.factory import make_race
from core.engine.history import NetworkHistory, RaceHistory
from core.engine.race_summary import race_summary
from core.errors import LabError
from core.lab.format import Lab, default_lab, default_network_lab
from core.problems.functions import get_function

APP_NAME = "Descent Lab"
MIN_REDRAW_INTERVAL = 1 / 30  # seconds
ARENA_TURNS = ("landscape", "loss", "landscape", "lr")
SETTINGS_ORG = "DescentLab"
MAX_RECENT = 8
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "labs"
# Steps per second offered in the speed box; 0 means as fast as the machine allows.
SPEEDS = (("10 steps/s", 10), ("30 steps/s", 30), ("100 steps/s", 100), ("300 steps/s", 300),
          ("1000 steps/s", 1000), ("Max", 0))
DEFAULT_SPEED_INDEX = 2


class MainWindow(QMainWindow):
    race_finished = Signal(bool)  # for tests and scripts: True when the race ran to its end

    def __init__(
        self,
        lab: Lab | None = None,
        settings: QSettings | None = None,
        recovery: RecoveryStore | None = None,
    ):
        super().__init__()
        # Before any panel exists: the wheel changes only a focused editor (app/shell/wheel_guard.py).
        install_wheel_guard(QApplication.instance())
        self.recovery = recovery if recovery is not None else RecoveryStore()
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else QSettings(SETTINGS_ORG, "descent-lab")
        self.document = LabDocument(lab if lab is not None else default_lab(), self)
        self.controller = RaceController(self)
        self.history: RaceHistory | NetworkHistory | None = None
        self.network_view = None  # built on the first network lab (keeps startup light)
        self.network_panel = None
        self._dataset_key = None
        self._dataset = None
        self._notices: list[str] = []
        self._first_show = True
        self._internals_step = 0
        self._diagram_step = -1
        self.lesson = None
        self.lesson_dock = None
        self.lesson_panel = None
        self._latest = None  # the newest record, for the throttled redraw
        self._last_draw_cost = 0.0
        self._last_draw_end = 0.0
        self._draw_started = 0.0
        self._paint_pending = False  # a redraw's paint is still to come (see `_redraw`)
        self._closed = False  # closeEvent accepted: no more redraws
        self._drawn_record = None
        self._turn = 0
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.timeout.connect(self._redraw)
        self._race_labels: tuple[str, ...] = ()
        self._race_indices: list[int] = []
        self._run_notes: dict[str, str] = {}  # run label → its divergence forensics
        self._objective_key = None
        self._finished = False

        self._build_plots()
        self._build_docks()
        self._build_actions()
        self._build_toolbar()
        # A long message (a divergence's forensics) is elided to fit, the whole of it in the tooltip.
        self.status_label = ElidedLabel()
        self.statusBar().addWidget(self.status_label, 1)
        self.step_label = QLabel(objectName="stepLabel")
        # A fixed width: a label that changes size re-lays out the status bar on every frame
        # (measured ~4 ms a frame while streaming).
        self.step_label.setFixedWidth(
            self.step_label.fontMetrics().horizontalAdvance("step 1000000 / 1000000") + 12
        )
        self.step_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.statusBar().addPermanentWidget(self.step_label)

        self.document.lab_changed.connect(self._on_lab_changed)
        self.document.lab_changed.connect(self._save_recovery)
        self.document.undo_stack.cleanChanged.connect(self._save_recovery)
        self.document.path_changed.connect(self._update_title)
        self.document.undo_stack.cleanChanged.connect(self._update_title)
        self.controller.batch.connect(self._on_batch)
        self.controller.finished.connect(self._on_finished)
        self.controller.failed.connect(self._on_failed)
        self.controller.state_changed.connect(self._on_state_changed)
        self.timeline.follow(self.controller)

        self.resize(1280, 800)
        self._on_lab_changed(self.document.lab)
        self._update_title()
        self._on_state_changed("idle")
        from app.export.dialog import install_export
        from app.shell.presenter import install_comfort

        install_export(self)  # File ▸ Export… (Ctrl+E)
        install_comfort(self)  # presenter mode, themes, layout memory, drops (restores layout)

    # -- construction ------------------------------------------------------------------------

    def _build_plots(self) -> None:
        self.landscape = LandscapePlot()
        self.landscape.start_moved.connect(self._on_start_moved)
        self.loss_plot = LossPlot()
        self.lr_plot = LrPlot()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_plot)
        right.addWidget(self.lr_plot)
        right.setSizes([480, 260])
        arena = QSplitter(Qt.Orientation.Horizontal, objectName="arenaView")
        arena.addWidget(self.landscape)
        arena.addWidget(right)
        arena.setStretchFactor(0, 3)
        arena.setStretchFactor(1, 2)
        arena.setSizes([560, 380])
        self.arena_view = arena
        self.center_stack = QStackedWidget(objectName="centerStack")
        self.center_stack.addWidget(arena)
        self.setCentralWidget(self.center_stack)

    def _build_docks(self) -> None:
        """Left dock: the problem editor (scrolls on its own) above the runs, in a splitter,
        so the runs stay in view even under the network builder's long form."""
        self.problem_panel = ProblemPanel()
        self.problem_panel.lab_edited.connect(self.document.edit)
        self.runs_panel = RunsPanel()
        self.runs_panel.lab_edited.connect(self.document.edit)
        self.problem_stack = QStackedWidget(objectName="problemStack")
        self.problem_stack.addWidget(self.problem_panel)
        scroll = QScrollArea(objectName="problemScroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.problem_stack)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.dock_splitter = QSplitter(Qt.Orientation.Vertical, objectName="dockSplitter")
        self.dock_splitter.setChildrenCollapsible(False)
        self.dock_splitter.addWidget(scroll)
        self.dock_splitter.addWidget(self.runs_panel)
        dock = QDockWidget("Lab", self, objectName="labDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(self.dock_splitter)
        dock.setMinimumWidth(370)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        # Optimizer internals (app/arena/internals_panel.py): hidden until asked for (Ctrl+I).
        self.internals_panel = InternalsPanel()
        self.internals_dock = QDockWidget("Optimizer internals", self, objectName="internalsDock")
        self.internals_dock.setWidget(self.internals_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.internals_dock)
        self.internals_dock.hide()
        for signal in (self.internals_panel.toggles_changed, self.internals_panel.selected_changed,
                       self.internals_dock.visibilityChanged):
            signal.connect(self._show_internals)
        # The run selected in the runs table is the one whose readout and update rule show.
        self.runs_panel.selected_run_changed.connect(self._select_internals_run)

    def _size_dock_for(self, network: bool) -> None:
        """The function editor is a few rows; the network builder wants about half the dock."""
        total = max(self.dock_splitter.height(), 600)
        top = int(total * 0.48) if network else self.problem_panel.sizeHint().height() + 8
        self.dock_splitter.setSizes([top, total - top])

    def _action(self, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.new_action = self._action(
            "&New 2-D race", self.new_lab, QKeySequence.StandardKey.New,
            "A new race of optimizers on a 2-D test function",
        )
        self.new_network_action = self._action(
            "New &network race", self.new_network_lab, QKeySequence("Ctrl+Shift+N"),
            "A new race of optimizers training a small network on a data set",
        )
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.save_as, QKeySequence("Ctrl+Shift+S"))
        self.quit_action = self._action("&Quit", self.close, QKeySequence("Ctrl+Q"))
        self.undo_action = self.document.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.document.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
        self.play_action = self._action(
            "&Play", self.toggle_play, Qt.Key.Key_Space, "Play / pause the race (Space)",
            sp.SP_MediaPlay,
        )
        self.step_action = self._action(
            "S&tep", self.step, Qt.Key.Key_Right, "Advance every run by one step (→)",
            sp.SP_MediaSeekForward,
        )
        self.reset_action = self._action(
            "&Reset", self.reset, Qt.Key.Key_R, "Back to step 0 (R)", sp.SP_MediaSkipBackward
        )
        self.timeline = Timeline(self)  # scrub, step back (←), branch (Ctrl+B): app/shell/timeline_slider.py

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.new_action, self.new_network_action, self.open_action):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.examples_menu = file_menu.addMenu("&Examples")
        for path in sorted(EXAMPLES_DIR.glob("*.lab.json")):
            act = self.examples_menu.addAction(path.name.removesuffix(".lab.json"))
            # Asks about unsaved edits first, like Open, Recent, New and Lessons.
            act.triggered.connect(lambda _=False, p=path: self.open_lab_after_asking(p))
        file_menu.addSeparator()
        for action in (self.save_action, self.save_as_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        race_menu = bar.addMenu("&Race")
        for action in (self.play_action, self.timeline.step_back_action, self.step_action,
                       self.reset_action, self.timeline.branch_action):
            race_menu.addAction(action)
        self.internals_action = self.internals_dock.toggleViewAction()
        self.internals_action.setShortcut(QKeySequence("Ctrl+I"))
        self.internals_action.setToolTip("Show the optimizers' gradient, momentum and step arrows")
        race_menu.addAction(self.internals_action)
        self.lessons_menu = bar.addMenu("&Lessons")
        self._fill_lessons_menu()
        tools_menu = bar.addMenu("&Tools")  # the windows: app/tools/tool_windows.py
        for text, kind, shortcut, tip in (
            ("&LR range test…", "lr_finder", "Ctrl+L", "Ramp the lr to find a good one"),
            ("&Sweep…", "sweep", None, "Search hyperparameters with Optuna"),
            ("&Fair race…", "fair_race", None, "Tune each optimizer equally, then race them"),
        ):
            tools_menu.addAction(self._action(text, lambda _=False, k=kind: self.open_tool(k),
                                              shortcut, tip))
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About", self._about))
        self._refresh_recent_menu()

    def _fill_lessons_menu(self) -> None:
        from core.teaching.lessons.loader import list_lessons

        try:
            lessons = list_lessons()
        except LabError as exc:  # a broken lesson file must not take the window down
            self.lessons_menu.addAction(f"(lessons unavailable: {exc})").setEnabled(False)
            return
        for lesson in lessons:
            action = self.lessons_menu.addAction(lesson.title)
            action.setToolTip(lesson.summary)
            action.triggered.connect(self._lesson_opener(lesson.name))

    def _lesson_opener(self, name: str):
        def open_it() -> None:
            if self._confirm_discard():
                self.open_lesson(name)

        return open_it

    # -- lessons -----------------------------------------------------------------------------

    def open_lesson(self, name: str, autoplay: bool = True) -> bool:
        """Load a lesson: its lab (unsaved, so Save asks where), its text, and play it."""
        from app.lessons.panel import LessonPanel
        from core.teaching.lessons.loader import load_lesson

        try:
            lesson = load_lesson(name)
        except LabError as exc:
            self._error(f"Could not open the lesson {name!r}", str(exc))
            return False
        if self.lesson_dock is None:
            self.lesson_panel = LessonPanel()
            self.lesson_panel.lab_chosen.connect(self._open_lesson_lab)
            self.lesson_panel.closed.connect(self.close_lesson)
            self.lesson_dock = QDockWidget("Lesson", self, objectName="lessonDock")
            self.lesson_dock.setWidget(self.lesson_panel)
            self.lesson_dock.setMinimumWidth(260)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.lesson_dock)
        self.lesson = lesson
        self.lesson_panel.set_lesson(lesson)
        self.lesson_dock.show()
        # The race stays the centre of attention: the text gets a narrow column.
        lab_dock = self.findChild(QDockWidget, "labDock")
        self.resizeDocks([lab_dock, self.lesson_dock], [370, 320], Qt.Orientation.Horizontal)
        self._apply_hidden_panels(lesson.hide_panels)
        self._open_lesson_lab(0, autoplay=autoplay)
        return True

    def _open_lesson_lab(self, index: int, autoplay: bool = True) -> None:
        lab = self.lesson.labs[index]
        self.document.replace(lab, None)
        self.status_label.setText(f"Lesson: {self.lesson.title}")
        if autoplay:
            self.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
            self.play()

    def _apply_hidden_panels(self, hidden) -> None:
        """Focus: a lesson may hide the editing panels it does not need."""
        self.dock_splitter.widget(0).setVisible("problem" not in hidden)
        self.runs_panel.setVisible("runs" not in hidden)
        self.arena_view.widget(1).setVisible("curves" not in hidden)

    def close_lesson(self) -> None:
        if self.lesson_dock is not None:
            self.lesson_dock.hide()
        self._apply_hidden_panels(())
        self.lesson = None

    def _build_toolbar(self) -> None:
        bar = QToolBar("Playback", self, objectName="playbackBar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.play_action, self.timeline.step_back_action, self.step_action,
                       self.reset_action):
            bar.addAction(action)
        bar.addWidget(self.timeline.slider)
        bar.addSeparator()
        bar.addWidget(QLabel(" Speed "))
        self.speed_combo = QComboBox(objectName="speedCombo")
        for text, value in SPEEDS:
            self.speed_combo.addItem(text, value)
        self.speed_combo.setToolTip("How many steps per second the race advances")
        self.speed_combo.currentIndexChanged.connect(self._on_speed)
        self.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
        self.controller.set_speed(SPEEDS[DEFAULT_SPEED_INDEX][1])
        bar.addWidget(self.speed_combo)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    # -- the lab -----------------------------------------------------------------------------

    @Slot(object)
    def _on_lab_changed(self, lab: Lab) -> None:
        """Any edit: stop the race, redraw what changed, back to step 0."""
        self.controller.stop()
        self.runs_panel.set_lab(lab)
        if lab.is_network:
            self._show_network_lab(lab)
            return
        if self.problem_stack.currentWidget() is not self.problem_panel or self._first_show:
            self.problem_stack.setCurrentWidget(self.problem_panel)
            self._size_dock_for(network=False)
            self._first_show = False
        self.center_stack.setCurrentWidget(self.arena_view)
        self.problem_panel.set_lab(lab)
        key = repr(lab.problem.function)
        if key != self._objective_key:
            objective = get_function(lab.problem.function)
            self.landscape.set_objective(objective)
            self.loss_plot.set_minimum(objective.min_value)
            self._objective_key = key
        start = ProblemPanel.start_point(lab)
        self.landscape.set_start(*start)
        self._reset_views(lab)

    def _ensure_network_widgets(self) -> None:
        if self.network_view is not None:
            return
        from app.network.problem_panel import NetworkProblemPanel
        from app.network.views import NetworkView

        self.network_panel = NetworkProblemPanel()
        self.network_panel.lab_edited.connect(self.document.edit)
        self.problem_stack.addWidget(self.network_panel)
        self.network_view = NetworkView()
        self.center_stack.addWidget(self.network_view)

    def _show_network_lab(self, lab: Lab) -> None:
        from core.problems.datasets import make_dataset

        self._ensure_network_widgets()
        if self.problem_stack.currentWidget() is not self.network_panel:
            self.problem_stack.setCurrentWidget(self.network_panel)
            self._size_dock_for(network=True)
        self.center_stack.setCurrentWidget(self.network_view)
        self.network_panel.set_lab(lab)
        key = (repr(lab.problem.dataset), lab.seed, lab.base_dir)
        if key != self._dataset_key:
            self._dataset = make_dataset(lab.problem.dataset, lab.seed, base_dir=lab.base_path)
            self._dataset_key = key
        self._reset_views(lab)

    def _reset_views(self, lab: Lab) -> None:
        self._race_indices = [i for i, r in enumerate(lab.runs) if r.enabled]
        self._race_labels = tuple(lab.runs[i].label for i in self._race_indices)
        colors = [lab.run_color(i) for i in self._race_indices]
        if lab.is_network:
            self.history = NetworkHistory(self._race_labels)
            self.network_view.set_runs(
                list(self._race_labels), colors, self._dataset, total_steps=lab.steps
            )
            self.network_view.surface_view.set_sharpness_every(lab.problem.sharpness_every)
        else:
            self.history = RaceHistory(self._race_labels)
            self.landscape.set_runs(colors)
            self.internals_panel.set_runs(lab, self._race_indices)
            self.loss_plot.set_runs(list(self._race_labels), colors, x_max=lab.steps)
            self.lr_plot.set_runs(list(self._race_labels), colors, x_max=lab.steps)
        self._finished = False
        self._latest = None
        self._diagram_step = -1
        self._run_notes = {}  # run label → its divergence forensics (runs table tooltip)
        self.runs_panel.show_run_notes({})
        self._redraw_timer.stop()
        self.timeline.reset()
        self._show_step(0)
        if not self._race_indices:
            self.status_label.setText("Add a run to start a race.")
        else:
            self.status_label.setText(f"Ready: {len(self._race_indices)} runs. Press Space to play.")

    def _on_start_moved(self, x: float, y: float) -> None:
        from dataclasses import replace

        lab = self.document.lab
        problem = replace(lab.problem, start=(round(x, 4), round(y, 4)))
        self.document.edit(replace(lab, problem=problem), "Move start point")

    # -- playback ----------------------------------------------------------------------------

    def _make_race(self):
        lab = self.document.lab
        if lab.is_network:
            from core.engine.devices import resolve_device
            from core.landscape.live import WeightTap

            # The same device decision the engine makes, said here on the main thread.
            _device, notices = resolve_device(lab.problem.device)
            self._notices = notices

            # The Surface tab reads the race's weights through this tap (core.landscape.live).
            tap = WeightTap()
            self.network_view.surface_view.set_tap(tap)

            def make(stop):
                return tap.records(make_race(lab), stop)

            return make

        def make(stop):
            return make_race(lab, internals=True).records(stop)

        return make

    def _can_race(self) -> bool:
        if not self._race_indices:
            self.status_label.setText("No enabled runs: add or enable a run first.")
            return False
        return self.timeline.branches_ok()

    def play(self) -> None:
        if not self._can_race() or self.timeline.play_from_cursor():
            return
        if self.controller.is_running():
            self.controller.play()
            return
        if self._finished or (self.history is not None and self.history.last_step >= 0):
            self._reset_views(self.document.lab)
        self.controller.start(self._make_race(), playing=True)

    def pause(self) -> None:
        self.controller.pause()

    def toggle_play(self) -> None:
        if self.controller.is_playing():
            self.pause()
        else:
            self.play()

    def step(self) -> None:
        if not self._can_race() or self.timeline.step_forward():
            return
        if not self.controller.is_running():
            if self._finished or (self.history is not None and self.history.last_step >= 0):
                self._reset_views(self.document.lab)
            self.controller.start(self._make_race(), playing=False)
            self.controller.step(2)  # step 0 (the start) and step 1
        else:
            self.controller.step(1)

    def reset(self) -> None:
        self.controller.stop()
        self._reset_views(self.document.lab)

    def _on_speed(self, index: int) -> None:
        self.controller.set_speed(self.speed_combo.itemData(index))

    @Slot(object)
    def _on_batch(self, records: list) -> None:
        """Append a batch to the history (cheap); drawing happens in `_redraw`, throttled."""
        history = self.history
        if history is None:
            return
        history.extend(records)
        self._latest = records[-1]
        for record in records:
            for event in record.diverged:
                # The forensics (lr, last finite values, the layer that blew up) go to the
                # status bar and, line by line, to the tooltip of the run's row in the table.
                details = event.describe()
                headline = event.reason.split(";")[0].split(" (")[0]  # the rest: tooltip
                self.status_label.setText(
                    f"{event.label} diverged at step {event.step}: {headline}"
                    + (f" — {details}" if details else "") + ". The other runs go on."
                )
                self._run_notes[event.label] = "\n".join(
                    [f"Diverged at step {event.step}: {event.reason}"] + details.split("; ")
                ).strip()
                self.runs_panel.show_run_notes(self._run_notes)
            for event in getattr(record, "stopped", ()):
                self.status_label.setText(
                    f"{event.label} stopped early at step {event.step}: no better validation "
                    f"loss since step {event.best_step} ({event.best_val_loss:.4g})."
                )
        if self._notices:
            self.status_label.setText(" ".join(self._notices))
            self._notices = []
        self._schedule_redraw()

    def _schedule_redraw(self) -> None:
        """Redraw at most ~30 times a second, and never sooner than 3x the last draw's cost
        after it: the main thread stays mostly idle, so the window answers at once."""
        if self._redraw_timer.isActive() or self._paint_pending:
            return  # a pending paint schedules the next redraw when it is done
        since = time.perf_counter() - self._last_draw_end
        wait = max(MIN_REDRAW_INTERVAL, 3 * self._last_draw_cost) - since
        self._redraw_timer.start(max(0, int(wait * 1000)))

    def _redraw(self) -> None:
        history, last = self.history, self._latest
        if history is None or last is None or self._paint_pending or self._closed:
            return
        self._draw_started = time.perf_counter()
        # The worker pauses between steps while we draw and until the paint is done: otherwise
        # every Qt call of the paint waits for the GIL behind it.
        self.controller.main_idle.clear()
        try:
            if isinstance(history, NetworkHistory):
                self._redraw_network(history)
            else:
                self._redraw_arena(history, last)
            self._show_step(last.step)
        except BaseException:
            self.controller.main_idle.set()
            raise
        # Paint in the event loop's next turns, not here: the scene hands its dirty regions to
        # the view in one turn and the view paints them (only them) in the next. A timer tick
        # or a click then waits for the draw or for the paint, never for both in one block
        # (measured: the network window's p99 event-loop gap ~24 -> ~16 ms).
        self._paint_pending = True
        self._drawn_record = last
        QTimer.singleShot(0, self, self._paint_handed_over)

    def _paint_handed_over(self) -> None:
        QTimer.singleShot(0, self, self._painted)

    def _painted(self) -> None:
        self._paint_pending = False
        self.controller.main_idle.set()
        self._last_draw_end = time.perf_counter()
        self._last_draw_cost = self._last_draw_end - self._draw_started
        if self._latest is not self._drawn_record:
            self._schedule_redraw()  # records arrived while the paint was pending

    def _redraw_arena(self, history: RaceHistory, last, parts: tuple[str, ...] | None = None):
        """Update the arena's plots. One plot per call by default, in turn: Qt then repaints
        one view per frame, so no single frame blocks the window for long. The landscape,
        where the race is watched, gets every other turn."""
        if parts is None:
            parts = (ARENA_TURNS[self._turn % len(ARENA_TURNS)],)
            self._turn += 1
        drawn = None
        if "landscape" in parts:
            paths = [(s.column("x"), s.column("y")) for s in history.runs]
            alive = [bool(a) for a in last.alive]
            self.landscape.update_paths(paths, alive)
            drawn = self.landscape
        if "loss" in parts:
            self.loss_plot.update_series([(s.column("step"), s.column("loss")) for s in history.runs])
            drawn = self.loss_plot
        if "lr" in parts:
            self.lr_plot.update_series([(s.column("step"), s.column("lr")) for s in history.runs])
            drawn = self.lr_plot
        return drawn

    def flush_redraw(self) -> None:
        """Draw everything now (tests, screenshots, the end of a race)."""
        self._redraw_timer.stop()
        history, last = self.history, self._latest
        if history is None or last is None:
            return
        if isinstance(history, NetworkHistory):
            self._redraw_network(history)
            self.network_view.flush()  # update_from draws one part per call; draw them all
        else:
            self._redraw_arena(history, last, parts=("landscape", "loss", "lr"))
        self._show_step(last.step)

    def _redraw_network(self, history: NetworkHistory) -> None:
        self.network_view.update_from(history)
        self.network_view.surface_view.race_step(history.last_step)  # "Follow training"
        evaluation = history.last_evaluation
        if history.last_evaluation_step == self._diagram_step:
            return  # the diagram's weights only change with an evaluation
        self._diagram_step = history.last_evaluation_step
        if evaluation is not None and evaluation.weights is not None:
            run = self._diagram_run()
            if run is not None:
                self.network_panel.diagram.set_weights(list(evaluation.weights[run]))

    def _diagram_run(self) -> int | None:
        """The race index whose weights the diagram shows: the selected run, else the first."""
        selected = self.runs_panel.selected_run()
        if selected in self._race_indices:
            return self._race_indices.index(selected)
        return 0 if self._race_indices else None

    def _show_step(self, step: int) -> None:
        self.step_label.setText(f"step {step} / {self.document.lab.steps}")
        self._show_internals(step=step)

    @Slot(int)
    def _select_internals_run(self, lab_index: int) -> None:
        if lab_index in self._race_indices:
            self.internals_panel.select_run(self._race_indices.index(lab_index))

    def _show_internals(self, *_signal_args, step: int | None = None) -> None:
        """The shown step's optimizer internals: overlay arrows and the panel's readout."""
        self._internals_step = self._internals_step if step is None else int(step)
        if step is not None and self.internals_dock.isHidden():
            # Every redraw lands here: with the dock closed nothing shows internals (the arrows
            # went when it closed); opening it draws the step remembered above.
            return
        found = (self.history.internals_at(self._internals_step)
                 if isinstance(self.history, RaceHistory) else None)
        self.internals_panel.set_internals(self._internals_step, found)
        shown = not self.internals_dock.isHidden() and found is not None
        self.landscape.internals.update(found if shown else None, self.internals_panel.shown(),
                                        self._race_labels)

    @Slot(bool)
    def _on_finished(self, completed: bool) -> None:
        self.flush_redraw()
        if completed:
            self._finished = True
            self.status_label.setText(self._summary_text())
            # A crash from here on must not cost the finished race (restored by offer_recovery).
            self.recovery.save_results(self.document.lab, self.history)
        self.race_finished.emit(completed)

    def _summary_text(self) -> str:
        # A winner only when there is one: ties and all-diverged races say so (core/engine/race_summary.py).
        return "" if self.history is None else race_summary(self.history)

    @Slot(str)
    def _on_failed(self, details: str) -> None:
        from app.shell.errors import show_failure

        self.status_label.setText("The race stopped on an error (details in the dialog).")
        show_failure(self, APP_NAME, "The race stopped on an error.", details,
                     "The lab is unchanged; you can edit it and press Play again.")

    @Slot(str)
    def _on_state_changed(self, state: str) -> None:
        playing = state == "playing"
        self.play_action.setText("&Pause" if playing else "&Play")
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_action.setIcon(self.style().standardIcon(icon))

    # -- files -------------------------------------------------------------------------------

    def _confirm_discard(self) -> bool:
        """Ask before throwing away unsaved edits. Tests replace this method."""
        if not self.document.is_dirty():
            return True
        answer = QMessageBox.question(
            self,
            APP_NAME,
            "The lab has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_lab(self) -> None:
        if self._confirm_discard():
            self.document.replace(default_lab(), None)

    def new_network_lab(self) -> None:
        if self._confirm_discard():
            self.document.replace(default_network_lab(), None)

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        start = self.settings.value("last_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open lab", start, "Lab files (*.lab.json *.json)")
        if path:
            self.open_lab(path)

    def open_lab(self, path: str | Path) -> bool:
        """Open a lab file; a bad file is refused with its message and nothing is lost."""
        try:
            self.document.open(path)
        except LabError as exc:
            self.status_label.setText(f"Could not open {Path(path).name}.")
            self._error(f"Could not open {Path(path).name}", str(exc))
            return False
        self._remember(path)
        self.status_label.setText(f"Opened {path}.")
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        start = self.settings.value("last_dir", str(Path.home()))
        name = self.document.lab.name.replace(" ", "_").lower() or "lab"
        path, _ = QFileDialog.getSaveFileName(
            self, "Save lab", str(Path(start) / f"{name}.lab.json"), "Lab files (*.lab.json)"
        )
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            self.document.save(path)
        except OSError as exc:
            self._error("Could not save", f"{path}: {exc.strerror or exc}")
            return False
        self._remember(path)
        self.status_label.setText(f"Saved {path}.")
        return True

    def _remember(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_files", [path, *recent][:MAX_RECENT])
        self.settings.setValue("last_dir", str(Path(path).parent))
        self._refresh_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for path in recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_lab_after_asking(p))
        self.recent_menu.setEnabled(bool(recent))

    def open_lab_after_asking(self, path: str | Path) -> bool:
        """Open a lab in place of this one (Recent, Examples, a drop): unsaved edits are asked
        about first, with the same question as New and Open; Cancel keeps the lab and its undo."""
        return self._confirm_discard() and self.open_lab(path)

    def _error(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, title, parent=self)
        box.setInformativeText(text)
        box.setModal(False)
        box.show()
        self.last_error = text

    def _update_title(self, *_args) -> None:
        path = self.document.path
        name = path.name if path else self.document.lab.name
        dirty = "*" if self.document.is_dirty() else ""
        self.setWindowTitle(f"{name}{dirty} — {APP_NAME}")

    def _about(self) -> None:
        QMessageBox.about(
            self,
            APP_NAME,
            "Descent Lab: watch real torch.optim optimizers race over loss landscapes.",
        )

    # -- crash recovery --------------------------------------------------------------------

    def _save_recovery(self, *_args) -> None:
        self.recovery.save(self.document.lab, self.document.path, self.document.is_dirty())

    def _ask_restore(self, source: Path | None, dirty: bool) -> bool:
        """Ask whether to restore the lab a crashed session left. Tests replace this."""
        name = source.name if source else "an unsaved lab"
        detail = " with unsaved changes" if dirty else ""
        answer = QMessageBox.question(
            self, APP_NAME,
            f"Descent Lab did not close cleanly last time. Restore {name}{detail}?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def offer_recovery(self) -> bool:
        """At startup: restore the lab left by a session that crashed, if the user wants it.
        Only a lab with something unsaved is offered (app/shell/recovery.py, `RecoveryStore.unsaved`)."""
        found = self.recovery.unsaved()
        if found is None:
            self._save_recovery()
            return False
        lab, source, dirty = found
        if not self._ask_restore(source, dirty):
            self._save_recovery()
            return False
        self.document.replace(lab, source)
        if dirty:
            # Restored edits are not on disk yet: mark them unsaved.
            self.document.undo_stack.resetClean()
            self._update_title()
        restored = f"Restored {source.name if source else 'the unsaved lab'}"
        if self._show_restored_results(lab):
            restored += " and its finished race"
        self.status_label.setText(restored + ".")
        return True

    def _show_restored_results(self, lab: Lab) -> bool:
        """Show the race that had finished before the crash, as it ended (no re-run)."""
        from types import SimpleNamespace

        history = self.recovery.load_results(lab)
        if history is None or history.labels != self._race_labels:
            return False
        self.history = history
        alive = np.array([i not in history.divergences for i in range(len(history.labels))])
        self._latest = SimpleNamespace(step=history.last_step, alive=alive)
        self.flush_redraw()
        self._finished = True
        return True

    def open_tool(self, kind: str):
        """Tools menu: the LR range test, sweep or fair race window for this lab."""
        from app.tools.tool_windows import open_tool_window
        return open_tool_window(self, kind)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        if not self._confirm_discard():
            event.ignore()
            return
        self._closed = True
        self._redraw_timer.stop()  # a redraw after this would start a "Follow training" task
        self.controller.shutdown()
        if self.network_view is not None:
            self.network_view.surface_view.shutdown()
        from app.tools.tool_windows import close_tool_windows
        close_tool_windows(self)  # their threads end with the window
        export_dialog = getattr(self, "export_dialog", None)
        if export_dialog is not None:  # an animation's thread, ffmpeg and partial file go
            export_dialog.cancel_animation()
            export_dialog.close()
        self.recovery.clear()  # a clean exit leaves nothing to recover
        super().closeEvent(event)


def launch(lab_path: str | None = None, lesson: str | None = None) -> int:
    """Start the GUI (``python main.py [LAB]`` or ``python main.py --lesson NAME``)."""
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(SETTINGS_ORG)
    apply_dark_theme(app)
    window = MainWindow()
    app.aboutToQuit.connect(window.controller.shutdown)
    window.show()
    from app.shell.warmup import start_warmup

    QTimer.singleShot(200, start_warmup)  # after the first paint: the first Play starts at once
    if lesson:
        QTimer.singleShot(0, lambda: window.open_lesson(lesson))
    elif lab_path:
        QTimer.singleShot(0, lambda: window.open_lab(lab_path))
    else:
        QTimer.singleShot(0, window.offer_recovery)
    return app.exec()
