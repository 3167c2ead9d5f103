"""The main window's panels and views, and the switch between the function lab and the network lab.

A function lab shows the problem editor and the arena (landscape, loss and lr curves); a network
lab shows the network builder and the network views (built on the first network lab, which keeps
startup light). Any edit of the lab stops the race and sends every view back to step 0
(app/shell/race_wiring.py, `RaceWiring.reset_views`).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QDockWidget, QScrollArea, QSplitter, QStackedWidget

from app.arena.function_map import LandscapePlot
from app.arena.internals_panel import InternalsPanel
from app.arena.problem_panel import ProblemPanel
from app.runs.runs_panel import RunsPanel
from app.widgets.curves import LossPlot, LrPlot
from core.lab.format import Lab
from core.problems.functions import get_function


class LabViews(QObject):
    """Builds the window's plots and docks and shows the panels and views the lab needs."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.dataset = None  # the network lab's data set, made once per (data set, seed, folder)
        self._dataset_key = None
        self._objective_key = None
        self._first_show = True

    def build(self) -> None:
        self._build_plots()
        self._build_docks()

    def _build_plots(self) -> None:
        window = self.window
        window.landscape = LandscapePlot()
        window.landscape.start_moved.connect(window._on_start_moved)
        window.loss_plot = LossPlot()
        window.lr_plot = LrPlot()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(window.loss_plot)
        right.addWidget(window.lr_plot)
        right.setSizes([480, 260])
        arena = QSplitter(Qt.Orientation.Horizontal, objectName="arenaView")
        arena.addWidget(window.landscape)
        arena.addWidget(right)
        arena.setStretchFactor(0, 3)
        arena.setStretchFactor(1, 2)
        arena.setSizes([560, 380])
        window.arena_view = arena
        window.center_stack = QStackedWidget(objectName="centerStack")
        window.center_stack.addWidget(arena)
        window.setCentralWidget(window.center_stack)

    def _build_docks(self) -> None:
        """Left dock: the problem editor (scrolls on its own) above the runs, in a splitter,
        so the runs stay in view even under the network builder's long form."""
        window = self.window
        window.problem_panel = ProblemPanel()
        window.problem_panel.lab_edited.connect(window.document.edit)
        window.runs_panel = RunsPanel()
        window.runs_panel.lab_edited.connect(window.document.edit)
        window.problem_stack = QStackedWidget(objectName="problemStack")
        window.problem_stack.addWidget(window.problem_panel)
        scroll = QScrollArea(objectName="problemScroll")
        scroll.setWidgetResizable(True)
        scroll.setWidget(window.problem_stack)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        window.dock_splitter = QSplitter(Qt.Orientation.Vertical, objectName="dockSplitter")
        window.dock_splitter.setChildrenCollapsible(False)
        window.dock_splitter.addWidget(scroll)
        window.dock_splitter.addWidget(window.runs_panel)
        dock = QDockWidget("Lab", window, objectName="labDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(window.dock_splitter)
        dock.setMinimumWidth(370)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        # Optimizer internals (app/arena/internals_panel.py): hidden until asked for (Ctrl+I).
        window.internals_panel = InternalsPanel()
        window.internals_dock = QDockWidget("Optimizer internals", window, objectName="internalsDock")
        window.internals_dock.setWidget(window.internals_panel)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.internals_dock)
        window.internals_dock.hide()
        race = window.race_wiring
        for signal in (window.internals_panel.toggles_changed, window.internals_panel.selected_changed,
                       window.internals_dock.visibilityChanged):
            signal.connect(race.show_internals)
        # The run selected in the runs table is the one whose readout and update rule show.
        window.runs_panel.selected_run_changed.connect(race.select_internals_run)

    def _size_dock_for(self, network: bool) -> None:
        """The function editor is a few rows; the network builder wants about half the dock."""
        window = self.window
        total = max(window.dock_splitter.height(), 600)
        top = int(total * 0.48) if network else window.problem_panel.sizeHint().height() + 8
        window.dock_splitter.setSizes([top, total - top])

    @Slot(object)
    def on_lab_changed(self, lab: Lab) -> None:
        """Any edit: stop the race, redraw what changed, back to step 0."""
        window = self.window
        window.controller.stop()
        window.runs_panel.set_lab(lab)
        if lab.is_network:
            self._show_network_lab(lab)
            return
        if window.problem_stack.currentWidget() is not window.problem_panel or self._first_show:
            window.problem_stack.setCurrentWidget(window.problem_panel)
            self._size_dock_for(network=False)
            self._first_show = False
        window.center_stack.setCurrentWidget(window.arena_view)
        window.problem_panel.set_lab(lab)
        key = repr(lab.problem.function)
        if key != self._objective_key:
            objective = get_function(lab.problem.function)
            window.landscape.set_objective(objective)
            window.loss_plot.set_minimum(objective.min_value)
            self._objective_key = key
        start = ProblemPanel.start_point(lab)
        window.landscape.set_start(*start)
        window.race_wiring.reset_views(lab)

    def _ensure_network_widgets(self) -> None:
        window = self.window
        if window.network_view is not None:
            return
        from app.network.problem_panel import NetworkProblemPanel
        from app.network.views import NetworkView

        window.network_panel = NetworkProblemPanel()
        window.network_panel.lab_edited.connect(window.document.edit)
        window.problem_stack.addWidget(window.network_panel)
        window.network_view = NetworkView()
        window.center_stack.addWidget(window.network_view)

    def _show_network_lab(self, lab: Lab) -> None:
        from core.problems.datasets.build import make_dataset

        window = self.window
        self._ensure_network_widgets()
        if window.document.undo_stack.count() == 0:
            # A new document (New, Open, a lesson), not an edit: its race has not run, so it
            # starts on the curves, not on the last tab looked at (an empty confusion matrix).
            from app.network.views import TAB_CURVES

            window.network_view.tabs.setCurrentIndex(TAB_CURVES)
        if window.problem_stack.currentWidget() is not window.network_panel:
            window.problem_stack.setCurrentWidget(window.network_panel)
            self._size_dock_for(network=True)
        window.center_stack.setCurrentWidget(window.network_view)
        window.network_panel.set_lab(lab)
        key = (repr(lab.problem.dataset), lab.seed, lab.base_dir)
        if key != self._dataset_key:
            self.dataset = make_dataset(lab.problem.dataset, lab.seed, base_dir=lab.base_path)
            self._dataset_key = key
        window.race_wiring.reset_views(lab)

    def on_start_moved(self, x: float, y: float) -> None:
        """The start point dragged on the landscape: one undoable edit."""
        lab = self.window.document.lab
        problem = replace(lab.problem, start=(round(x, 4), round(y, 4)))
        self.window.document.edit(replace(lab, problem=problem), "Move start point")
