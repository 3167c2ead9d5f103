"""The selected run's cart and pole, replaying the states of its first environment in the newest
round (core/engine/rl_history.py) at the simulation's own pace, tau = 0.02 s per frame.

The readout (x, θ, the frame) sits in its own row of the plot's layout under the x axis, outside
the view box, so it never covers the pole however narrow the pane or wherever the cart is (a text
item inside the view covered the pole at the track's left end; tests/app/test_cartpole_readout.py)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer

from core.problems.rl.cartpole import HALF_LENGTH, TAU, X_LIMIT

CART_W, CART_H = 0.5, 0.25
POLE = 2 * HALF_LENGTH  # drawn at its whole length
READOUT_ROW = 4  # of pyqtgraph's PlotItem layout: below the x axis's row (3)


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
        self.caption = pg.LabelItem("", color="#dddddd", justify="center")
        self.caption.setToolTip("Its first environment in the newest round, replayed at 0.02 s "
                                "a frame")
        # Row 4, under the bottom axis (rows 0-3: title, top axis, view box, bottom axis).
        self.plotItem.layout.addItem(self.caption, READOUT_ROW, 1)
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
        # Two short lines, so the readout fits the narrowest pane (160 px) without clipping.
        self.caption.setText(f"x = {x:+.2f} m, θ = {math.degrees(theta):+.1f}°<br>"
                             f"step {self.frame + 1} of {len(self.states)}")

    def caption_text(self) -> str:
        """The readout as plain text (lines joined by a space)."""
        return self.caption.item.toPlainText().replace("\n", " ").replace("\u2028", " ")
