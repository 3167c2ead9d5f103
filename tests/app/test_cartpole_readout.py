"""The cart view's readout (step, x, θ) never covers the pole (app/rl/cartpole_view.py): at the
track's ends, with the pole at the angles where an episode ends, in a narrow and a wide pane."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.rl.cartpole_view import CartPoleView
from core.problems.rl.cartpole import X_LIMIT

# CartPole ends an episode past 12°; the last state drawn may be a little beyond it.
EXTREMES = [(x, math.radians(deg)) for x in (-X_LIMIT, 0.0, X_LIMIT) for deg in (-15, 0, 15)]


@pytest.mark.parametrize("size", [(160, 220), (360, 300), (700, 500)])
def test_the_readout_never_overlaps_the_pole(qtbot, size):
    view = CartPoleView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)  # the layout and the view box's range settle
    for x, theta in EXTREMES:
        view.states = np.array([[x, 0.0, theta, 0.0]] * 3)
        view.draw_state(view.states[2])
        qtbot.wait(10)
        text = view.caption.sceneBoundingRect()
        pole = view.pole.curve.sceneBoundingRect()
        assert "θ" in view.caption_text() and f"{x:+.2f}" in view.caption_text()
        assert not text.isEmpty() and not pole.isEmpty()
        assert not text.intersects(pole), (size, x, math.degrees(theta), text, pole)
