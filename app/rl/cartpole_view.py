"""The selected run's cart and pole, replaying the states of its first environment in the newest
round (core/engine/rl_history.py) at the simulation's own pace, tau = 0.02 s per frame."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer

from core.problems.rl.cartpole import HALF_LENGTH, TAU, X_LIMIT

CART_W, CART_H = 0.5, 0.25
POLE = 2 * HALF_LENGTH  # drawn at its whole length


class CartPoleView(pg.PlotWidget):
    """A track from −2.4 to 2.4, the cart as a box, the pole as a line from the cart's top."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Cart and pole")
        self.setMinimumWidth(160)  # the plots beside it get the room; the track scales down
        self.setAspectLocked(True)
        self.hideAxis("left")
        self.setLabel("bottom", "x (m)")
        # One call for both: with the aspect locked the view widens one of them to fit, so the
        # whole track stays in sight however narrow the pane is.
        self.setRange(xRange=(-X_LIMIT - 0.3, X_LIMIT + 0.3), yRange=(-0.4, POLE + 0.5),
                      padding=0)
        self.setMouseEnabled(False, False)
        self.plot([-X_LIMIT, X_LIMIT], [0, 0], pen=pg.mkPen("#888888", width=2))
        for edge in (-X_LIMIT, X_LIMIT):
            self.plot([edge, edge], [-0.15, 0.15], pen=pg.mkPen("#ee6677", width=2))
        self.cart = self.plot([], [], pen=pg.mkPen("#88ccee", width=3), fillLevel=None)
        self.pole = self.plot([], [], pen=pg.mkPen("#ccbb44", width=5))
        self.caption = pg.TextItem("", color="#dddddd", anchor=(0, 0))
        self.caption.setPos(-X_LIMIT - 0.25, POLE + 0.45)
        self.caption.setToolTip("Its first environment in the newest round, replayed at 0.02 s "
                                "a frame")
        self.addItem(self.caption)
        self.states = np.zeros((0, 4))
        self.frame = 0
        self.timer = QTimer(self)
        self.timer.setInterval(int(TAU * 1000))
        self.timer.timeout.connect(self._advance)

    def play(self, states: np.ndarray) -> None:
        """Replay ``states`` (k, 4) from the first frame, looping while new rounds arrive."""
        if states is self.states:
            return
        self.states = states
        self.frame = 0
        self.draw_state(states[0] if len(states) else None)
        if len(states) > 1 and not self.timer.isActive():
            self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _advance(self) -> None:
        if not len(self.states):
            return
        self.frame = (self.frame + 1) % len(self.states)
        self.draw_state(self.states[self.frame])

    def draw_state(self, state) -> None:
        if state is None:
            self.cart.setData([], [])
            self.pole.setData([], [])
            self.caption.setText("")
            return
        x, _, theta, _ = (float(v) for v in state)
        left, right = x - CART_W / 2, x + CART_W / 2
        self.cart.setData([left, right, right, left, left], [0, 0, CART_H, CART_H, 0])
        top = (x, CART_H)
        tip = (x + POLE * math.sin(theta), CART_H + POLE * math.cos(theta))
        self.pole.setData([top[0], tip[0]], [top[1], tip[1]])
        self.caption.setText(f"step {self.frame + 1} of {len(self.states)}   "
                             f"x = {x:+.2f} m   θ = {math.degrees(theta):+.1f}°")
