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


def test_thinning_keeps_every_move_of_a_pixel_and_the_ends():
    from app.plots.landscape import thin_to_pixels

    # A zig-zag with an amplitude of 3 pixels must survive whole; a crawl within one pixel
    # collapses to its ends.
    x = np.linspace(0, 1, 200)
    y = np.where(np.arange(200) % 2, 0.03, -0.03)
    tx, ty = thin_to_pixels(x, y, (0.01, 0.01))
    assert len(tx) >= 190 and tx[0] == x[0] and tx[-1] == x[-1]
    cx, cy = thin_to_pixels(np.full(500, 0.5) + np.linspace(0, 0.004, 500), np.zeros(500),
                            (0.01, 0.01))
    assert len(cx) == 2
