"""A test that really paints: PySide6 6.12.0 on Python 3.11 drops a reference to None on every
void Qt call and aborts after a few dozen painted frames, while tests that never paint stay green.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
import pyqtgraph as pg

from app.arena.function_map import LandscapePlot
from app.widgets.curves import LossPlot
from core.problems.functions import get_function


def test_painting_hundreds_of_frames_keeps_none_alive(qtbot):
    landscape = LandscapePlot()
    loss = LossPlot()
    for w in (landscape, loss):
        qtbot.addWidget(w)
        w.resize(400, 300)
    landscape.set_objective(get_function("rosenbrock"))
    landscape.set_runs(["#e69f00", "#56b4e9"])
    loss.set_runs(["a", "b"], ["#e69f00", "#56b4e9"])
    x = np.linspace(-1.5, 1.0, 400)
    # Garbage of earlier tests, collected mid-loop, would release references to None too: collect
    # it first and keep the collector out of the loop, so only the paint calls count.
    gc.collect()
    gc.disable()
    try:
        before = sys.getrefcount(None)
        for frame in range(300):
            n = frame + 2
            landscape.update_paths([(x[:n], x[:n] ** 2), (x[:n], -x[:n])], [True, True])
            loss.update_series([(np.arange(n), np.exp(-x[:n])), (np.arange(n), 1 + x[:n] ** 2)])
            image = landscape.grab()  # a real paint of the whole widget tree
            loss.grab()
        after = sys.getrefcount(None)
    finally:
        gc.enable()
    assert not image.isNull() and image.width() == 400
    # With the broken binding this falls by thousands; allow noise from unrelated objects.
    assert after >= before - 50, f"refcount of None fell from {before} to {after}"


def test_thinning_keeps_every_move_of_a_pixel_and_the_ends():
    from app.arena.function_map import thin_to_pixels

    # A zig-zag with an amplitude of 3 pixels must survive whole; a crawl within one pixel
    # collapses to its ends.
    x = np.linspace(0, 1, 200)
    y = np.where(np.arange(200) % 2, 0.03, -0.03)
    tx, ty, connect = thin_to_pixels(x, y, (0.01, 0.01))
    assert len(tx) >= 190 and tx[0] == x[0] and tx[-1] == x[-1]
    assert connect.all()  # no segment repeats: one unbroken line
    cx, cy, _ = thin_to_pixels(np.full(500, 0.5) + np.linspace(0, 0.004, 500), np.zeros(500),
                            (0.01, 0.01))
    assert len(cx) == 1  # the start; the run's marker shows where it crawled to


def test_a_run_bouncing_between_the_same_pixels_is_drawn_once():
    """Rprop or a too-large lr in a valley: thousands of bounces over the same two pixels paint
    the same segment; the drawn path stays a few points long, its picture unchanged."""
    from app.arena.function_map import ThinnedPath

    approach = np.column_stack([np.linspace(-1, 0, 50), np.linspace(1, 0.05, 50)])
    bounce = np.tile([[0.0, 0.05], [0.1, -0.05]], (2000, 1))
    x, y = np.concatenate([approach, bounce]).T.copy()
    path = ThinnedPath()
    for n in range(10, len(x) + 1, 37):  # frame by frame, as a race streams
        path.update(x[:n], y[:n], (0.01, 0.01))
    got_x, got_y, connect = path.update(x, y, (0.01, 0.01))
    assert len(got_x) < 60
    # Every drawn segment is one of the path's own, and the bounce is among them.
    pairs = {(a, b, c, d) for a, b, c, d, joined
             in zip(got_x[:-1], got_y[:-1], got_x[1:], got_y[1:], connect[:-1]) if joined}
    steps = {(a, b, c, d) for a, b, c, d in zip(x[:-1], y[:-1], x[1:], y[1:])}
    assert pairs <= steps
    assert (0.0, 0.05, 0.1, -0.05) in pairs or (0.1, -0.05, 0.0, 0.05) in pairs


def test_the_incremental_thinning_equals_thinning_the_whole_path_at_once():
    """Frame by frame (a few new points each), the kept path is the one-shot thinning's."""
    from app.arena.function_map import ThinnedPath, thin_to_pixels

    rng = np.random.default_rng(1)
    steps = np.cumsum(rng.standard_normal((3000, 2)) * np.geomspace(0.05, 1e-4, 3000)[:, None],
                      axis=0)
    x, y = steps[:, 0].copy(), steps[:, 1].copy()
    pixel = (0.002, 0.003)
    path = ThinnedPath()
    n = 3
    while n < len(x):
        n = min(len(x), n + int(rng.integers(1, 40)))
        got = path.update(x[:n], y[:n], pixel)
        want = thin_to_pixels(x[:n], y[:n], pixel)
        for got_part, want_part in zip(got, want):
            np.testing.assert_array_equal(got_part, want_part)
    # A new start (a reset, or the history thinning its old half) starts the cache over.
    got_x, _, _ = path.update(x[500:900], y[500:900], pixel)
    np.testing.assert_array_equal(got_x, thin_to_pixels(x[500:900], y[500:900], pixel)[0])


def test_a_run_path_is_painted_two_pixels_wide_in_every_direction(qtbot):
    """Paths are 2 px lines (drawn as offset 1-px lines for speed): a horizontal and a vertical
    path are both at least two pixels thick on screen, in the run's colour."""
    landscape = LandscapePlot()
    qtbot.addWidget(landscape)
    landscape.resize(500, 400)
    landscape.set_objective(get_function("rosenbrock"))
    landscape.set_runs(["#ff0000", "#00ff00"])
    t = np.linspace(-1.0, 1.0, 50)
    landscape.update_paths([(t, np.full(50, 2.0)), (np.full(50, 0.5), t + 0.5)], [True, True])
    image = landscape.grab().toImage()
    vb = landscape.plotItem.vb

    def thickness(x: float, y: float, across: str, channel: str) -> int:
        scene = vb.mapViewToScene(pg.Point(x, y))
        pos = landscape.mapFromScene(scene)
        count = 0
        for k in range(-6, 7):
            px, py = (pos.x(), pos.y() + k) if across == "y" else (pos.x() + k, pos.y())
            color = image.pixelColor(int(px), int(py))
            red, green = color.red(), color.green()
            if (channel == "red" and red > 200 and green < 80) or (
                    channel == "green" and green > 200 and red < 80):
                count += 1
        return count

    assert thickness(0.0, 2.0, "y", "red") >= 2  # across the horizontal path
    assert thickness(0.5, 1.0, "x", "green") >= 2  # across the vertical path


def test_a_narrow_landscape_elides_its_title_and_keeps_it_whole_in_the_tooltip(qtbot):
    landscape = LandscapePlot()
    qtbot.addWidget(landscape)
    landscape.resize(230, 300)
    landscape.show()
    objective = get_function("ravine")
    landscape.set_objective(objective)
    qtbot.wait(20)
    label = landscape.plotItem.titleLabel
    assert label.item.boundingRect().width() <= landscape.width()
    assert "…" in label.text
    assert objective.title in label.toolTip() and objective.formula in label.toolTip()
    landscape.resize(900, 600)  # room again: the whole title comes back
    qtbot.wait(20)
    assert objective.title in label.text and "…" not in label.text
