"""The rl race's central view: returns (left, top), gradient norm and moments (left, bottom), the
selected run's cart and pole (right). Fed an `RLHistory` (core/engine/rl_history.py) by the
window's redraw; holds no numbers of its own."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter

from app.rl.cartpole_view import CartPoleView
from app.rl.returns_plot import ReturnsPlot
from app.rl.updates_plot import UpdatesPlot
from core.engine.rl_history import RLHistory


class RLView(QSplitter):
    """Returns, updates and the cart; `select_run` picks whose moments and cart are shown."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent, objectName="rlView")
        left = QSplitter(Qt.Orientation.Vertical)
        left.setMinimumWidth(320)
        self.returns = ReturnsPlot()
        self.updates = UpdatesPlot()
        left.addWidget(self.returns)
        left.addWidget(self.updates)
        left.setSizes([420, 380])
        self.cartpole = CartPoleView()
        self.addWidget(left)
        self.addWidget(self.cartpole)
        self.setSizes([640, 360])
        self.setChildrenCollapsible(False)
        self.selected = 0
        self.history: RLHistory | None = None

    def set_runs(self, labels: list[str], colors: list[str]) -> None:
        self.returns.set_runs(labels, colors)
        self.updates.set_runs(labels, colors)
        self.cartpole.stop()
        self.cartpole.draw_state(None)
        self.history = None

    def select_run(self, index: int) -> None:
        self.selected = index
        if self.history is not None:
            self.update_from(self.history)

    def update_from(self, history: RLHistory) -> None:
        self.history = history
        self.returns.update_from(history)
        self.updates.update_from(history, self.selected)
        if 0 <= self.selected < len(history.cart):
            self.cartpole.play(history.cart[self.selected])
