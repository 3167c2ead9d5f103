"""A test that really paints: PySide6 6.12.0 on Python 3.11 drops a reference to None on every
void Qt call and aborts after a few dozen painted frames, while tests that never paint stay green.
"""

from __future__ import annotations

import sys

import numpy as np

from app.plots.curves import LossPlot
from app.plots.landscape import LandscapePlot
from core.functions import get_function


def test_painting_hundreds_of_frames_keeps_none_alive(qtbot):
    landscape = LandscapePlot()
    loss = LossPlot()
    for w in (landscape, loss):
        qtbot.addWidget(w)
        w.resize(400, 300)
    landscape.set_objective(get_function("rosenbrock"))
    landscape.set_runs(["#e69f00", "#56b4e9"])
    loss.set_runs(["a", "b"], ["#e69f00", "#56b4e9"])
    before = sys.getrefcount(None)
    x = np.linspace(-1.5, 1.0, 400)
    for frame in range(300):
        n = frame + 2
        landscape.update_paths([(x[:n], x[:n] ** 2), (x[:n], -x[:n])], [True, True])
        loss.update_series([(np.arange(n), np.exp(-x[:n])), (np.arange(n), 1 + x[:n] ** 2)])
        image = landscape.grab()  # a real paint of the whole widget tree
        loss.grab()
    assert not image.isNull() and image.width() == 400
    after = sys.getrefcount(None)
    # With the broken binding this falls by thousands; allow noise from unrelated objects.
    assert after >= before - 50, f"refcount of None fell from {before} to {after}"
