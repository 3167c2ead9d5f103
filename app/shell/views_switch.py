"""The main window's panels and views, and the switch between the function lab and the network lab.

A function lab shows the problem editor and the arena (landscape, loss and lr curves); a network
lab shows the network builder and the network views (built on the first network lab, which keeps
startup light). Any edit of the lab stops the race and sends every view back to step 0
(app/shell/race_wiring.py, `RaceWiring.reset_views`), except where a 2-D race can go on from a
later step (a branch: app/shell/race_edits.py, core/engine/continuation.py).
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtWidgets import (
    QDockWidget,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.arena.function_3d import Function3DView
from app.arena.function_map import LandscapePlot
from app.arena.internals_panel import InternalsPanel
from app.arena.problem_panel import ProblemPanel
from app.runs.runs_panel import RunsPanel
from app.shell.race_edits import go_on_after_edit
from app.widgets.curves import LossPlot, LrPlot
from app.widgets.layouts import ColumnScrollArea
from core.lab.format import Lab
from core.problems.functions import get_function

LAB_DOCK_WIDTH = 370  # the left dock's width in a new window (the panels are made for it)


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
        # The map and the same function in 3-D (app/arena/function_3d.py), as tabs: the 3-D
        # view builds its GL widget the first time its tab shows.
        window.landscape_3d = Function3DView()
        window.map_tabs = QTabWidget(objectName="mapTabs")
        window.map_tabs.setDocumentMode(True)
        window.map_tabs.addTab(window.landscape, "Map")
        window.map_tabs.addTab(window.landscape_3d, "3-D")
        window.map_tabs.setTabToolTip(0, "The function as a heatmap with contours, drawn to scale")
        window.map_tabs.setTabToolTip(1, "The function as a surface in 3-D with the runs' paths "
                                         "on it (drag to turn)")
        arena = QSplitter(Qt.Orientation.Horizontal, objectName="arenaView")
        arena.addWidget(window.map_tabs)
        arena.addWidget(right)
        arena.setStretchFactor(0, 3)
        arena.setStretchFactor(1, 2)
        arena.setSizes([560, 380])
        window.arena_view = arena
        window.center_stack = QStackedWidget(objectName="centerStack")
        window.center_stack.addWidget(arena)
        window.setCentralWidget(window.center_stack)

    def _build_docks(self) -> None:
        """Left dock, one page per part so each gets the dock's height (at 1280×800 three
        stacked scroll areas left each a sliver): a function lab shows one page, the function
        form at its own height above the runs table and the run editor; a network lab shows
        tabs, Data / Network (its diagram in view) / Training / Runs."""
        window = self.window
        window.problem_panel = ProblemPanel()
        window.problem_panel.lab_edited.connect(window.document.edit)
        window.problem_panel.installEventFilter(self)  # its height: `eventFilter`
        window.runs_panel = RunsPanel()
        window.runs_panel.lab_edited.connect(window.document.edit)
        window.problem_stack = QStackedWidget(objectName="problemStack")
        window.problem_stack.addWidget(window.problem_panel)
        scroll = ColumnScrollArea(object_name="problemScroll")
        scroll.setWidget(window.problem_stack)
        window.dock_splitter = QSplitter(Qt.Orientation.Vertical, objectName="dockSplitter")
        window.dock_splitter.setChildrenCollapsible(False)
        window.dock_splitter.addWidget(scroll)
        window.dock_splitter.addWidget(window.runs_panel)
        dock = QDockWidget("Lab", window, objectName="labDock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        # Height the dock gains or loses goes to the runs; the form keeps its own height.
        window.dock_splitter.setStretchFactor(0, 0)
        window.dock_splitter.setStretchFactor(1, 1)
        window.lab_tabs = QTabWidget(objectName="labTabs")
        window.lab_tabs.setDocumentMode(True)
        window.lab_tabs.setTabBarAutoHide(True)  # a function lab: one page, no tab bar
        window.lab_tabs.addTab(window.dock_splitter, "Runs")
        window.lab_tabs.setTabToolTip(0, "The runs of the race and the editor of the selected run")
        self._network_pages: list[tuple[ColumnScrollArea, str]] = []
        self.problem_hidden = False  # a lesson may hide the problem editor
        dock.setWidget(window.lab_tabs)
        # No fixed minimum: an explicit one hid what the forms need, and a form wider than
        # the dock lost its right edge. The dock is as wide as its widest form, at least
        # LAB_DOCK_WIDTH when the window is made (`window.resizeDocks` below).
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        window.resizeDocks([dock], [LAB_DOCK_WIDTH], Qt.Orientation.Horizontal)
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
        """The function editor is a few rows: it gets its own height, never a scroll bar (it
        grows with an expression's error line); a network lab's editors are tabs of their own."""
        window = self.window
        splitter = window.dock_splitter
        total = max(splitter.height(), 600)
        top = 0 if network else window.problem_panel.sizeHint().height() + 8
        splitter.widget(0).setMaximumHeight(max(top, 1))  # no blank band under the form
        if splitter.sizes()[0] != top:
            splitter.setSizes([top, total - top])

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        """The function form grew or shrank (an error line under the expression): its
        part of the dock follows, so it never needs a scroll bar."""
        if event.type() == QEvent.Type.LayoutRequest and not self.window.document.lab.is_network:
            self._size_dock_for(network=False)
        return False

    def set_problem_hidden(self, hidden: bool) -> None:
        """Hide or show the problem editors (a lesson's "problem" panel): the function form,
        or a network lab's Data / Network / Training tabs."""
        self.problem_hidden = hidden
        self._show_problem_pages(self.window.document.lab.is_network)

    def _show_problem_pages(self, network: bool) -> None:
        """The function form above the runs, or the network editors' tabs before Runs."""
        window = self.window
        window.dock_splitter.widget(0).setVisible(not network and not self.problem_hidden)
        tabs = window.lab_tabs
        wanted = network and not self.problem_hidden
        for index, (page, title) in enumerate(self._network_pages):
            shown = tabs.indexOf(page) >= 0
            if wanted and not shown:
                tabs.insertTab(index, page, title)
            elif not wanted and shown:
                tabs.removeTab(tabs.indexOf(page))
        tabs.setTabText(tabs.indexOf(window.dock_splitter), "Runs")

    @Slot(object)
    def on_lab_changed(self, lab: Lab) -> None:
        """Any edit: stop the race, redraw what changed, back to step 0."""
        window = self.window
        window.controller.stop()
        window.runs_panel.set_lab(lab)
        if lab.problem.kind == "rl":
            self._show_rl_lab(lab)
            return
        if lab.is_network:
            self._show_network_lab(lab)
            return
        if window.problem_stack.currentWidget() is not window.problem_panel or self._first_show:
            window.problem_stack.setCurrentWidget(window.problem_panel)
            self._show_problem_pages(network=False)
            self._size_dock_for(network=False)
            self._first_show = False
        window.center_stack.setCurrentWidget(window.arena_view)
        window.problem_panel.set_lab(lab)
        self._size_dock_for(network=False)  # an error line under the expression: room for it
        key = repr(lab.problem.function)
        if key != self._objective_key:
            objective = get_function(lab.problem.function)
            window.landscape.set_objective(objective)
            window.landscape_3d.set_objective(objective)
            window.loss_plot.set_minimum(objective.min_value)
            self._objective_key = key
        start = ProblemPanel.start_point(lab)
        window.landscape.set_start(*start)
        # Back to step 0, unless the edited lab's race reproduces the recorded steps up to some
        # step (a branch): then it goes on from there (app/shell/race_edits.py).
        go_on_after_edit(window.race_wiring, lab)

    def _ensure_network_widgets(self) -> None:
        window = self.window
        if window.network_view is not None:
            return
        from app.network.problem_panel import NetworkProblemPanel
        from app.network.views import NetworkView

        window.network_panel = NetworkProblemPanel()
        window.network_panel.lab_edited.connect(window.document.edit)
        window.problem_stack.addWidget(window.network_panel)
        # Its sections become the left dock's tabs, each scrolling on its own if it must.
        for title, section in window.network_panel.pages():
            scroll = ColumnScrollArea(object_name=f"networkPage{title}")
            if title == "Network":
                scroll.setWidget(section)  # its diagram takes the height to spare
            else:  # the form keeps its rows together; the room to spare goes below it
                page = QWidget()
                column = QVBoxLayout(page)
                column.setContentsMargins(0, 0, 0, 0)
                column.addWidget(section)
                column.addStretch(1)
                scroll.setWidget(page)
            self._network_pages.append((scroll, title))
        window.network_view = NetworkView()
        window.center_stack.addWidget(window.network_view)

    def _show_network_lab(self, lab: Lab) -> None:
        from core.problems.datasets.build import make_dataset

        window = self.window
        self._ensure_network_widgets()
        if window.document.undo_stack.count() == 0:
            # A new document (New, Open, a lesson), not an edit: it starts on the overview
            # (data → network → output), not on the last tab looked at (an empty confusion
            # matrix).
            from app.network.views import TAB_OVERVIEW

            window.network_view.tabs.setCurrentIndex(TAB_OVERVIEW)
        if window.problem_stack.currentWidget() is not window.network_panel:
            window.problem_stack.setCurrentWidget(window.network_panel)
            self._show_problem_pages(network=True)
            self._size_dock_for(network=True)
            window.lab_tabs.setCurrentIndex(0)  # the data first: data → network → training
        window.center_stack.setCurrentWidget(window.network_view)
        window.network_panel.set_lab(lab)
        key = (repr(lab.problem.dataset), lab.seed, lab.base_dir)
        if key != self._dataset_key:
            self.dataset = make_dataset(lab.problem.dataset, lab.seed, base_dir=lab.base_path)
            self._dataset_key = key
        window.race_wiring.reset_views(lab)

    def _show_rl_lab(self, lab: Lab) -> None:
        """An rl lab: its views (app/rl/, built on the first one); its problem is edited in
        the lab file for now, so the dock shows the runs alone."""
        window = self.window
        if getattr(window, "rl_view", None) is None:
            from app.rl.view import RLView

            window.rl_view = RLView()
            window.center_stack.addWidget(window.rl_view)
        self._show_problem_pages(network=False)
        window.dock_splitter.widget(0).setVisible(False)
        window.center_stack.setCurrentWidget(window.rl_view)
        window.race_wiring.reset_views(lab)

    def on_start_moved(self, x: float, y: float) -> None:
        """The start point dragged on the landscape: one undoable edit."""
        lab = self.window.document.lab
        problem = replace(lab.problem, start=(round(x, 4), round(y, 4)))
        self.window.document.edit(replace(lab, problem=problem), "Move start point")
