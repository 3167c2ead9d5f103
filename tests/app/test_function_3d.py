"""The arena's 3-D tab (app/arena/function_3d.py): the surface is the function, a typed formula's
undefined region is a hole, the paths are the runs' recorded points at their losses, and where
there is no OpenGL the tab says so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.arena.function_3d import function_mesh, path_vertices
from core.problems.functions import get_function

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"


def test_the_mesh_heights_are_the_function_on_the_grid():
    objective = get_function("monkey_saddle")  # a linear colour scale: heights are f itself
    assert not objective.log_scale
    mesh = function_mesh(objective, resolution=41)
    x, y, z = mesh.vertices.T
    # Independently, in float64: the monkey saddle's formula.
    np.testing.assert_allclose(z, x**3 - 3 * x * y**2, rtol=1e-12, atol=1e-12)
    (x0, x1), (y0, y1) = objective.domain
    assert (x.min(), x.max(), y.min(), y.max()) == (x0, x1, y0, y1)
    assert len(mesh.faces) == 2 * 40 * 40  # defined everywhere: two triangles per cell


def test_a_log_scaled_function_is_as_high_as_the_map_is_bright():
    objective = get_function("rosenbrock")
    assert objective.log_scale
    mesh = function_mesh(objective, resolution=31)
    x, y, z = mesh.vertices.T
    f = (1 - x) ** 2 + 100 * (y - x**2) ** 2
    eps = max((f.max() - f.min()) * 1e-7, 1e-12)
    np.testing.assert_allclose(z, np.log10(f - f.min() + eps), rtol=1e-9, atol=1e-9)


def test_where_a_typed_formula_is_undefined_the_surface_has_a_hole_not_a_peak():
    objective = get_function({"expression": "log(x) + y^2", "domain": [[-1, 2], [-1, 1]]})
    mesh = function_mesh(objective, resolution=31)
    x = mesh.vertices[:, 0]
    used = np.unique(mesh.faces)
    with np.errstate(invalid="ignore", divide="ignore"):
        defined = ~np.isnan(np.log(np.linspace(-1, 2, 31)))  # log x is NaN for x < 0
    assert len(used) and (x[used] >= np.linspace(-1, 2, 31)[defined].min()).all()  # no triangle over x < 0
    # All the rest is drawn: every cell whose corners are all defined has its two triangles.
    defined_columns = int(defined.sum())
    assert len(mesh.faces) == 2 * (defined_columns - 1) * 30
    # The heights drawn span the defined values only (NaN did not become the top).
    z = mesh.vertices[used, 2]
    assert mesh.hi == pytest.approx(z.max()) and mesh.lo == pytest.approx(z.min())


def test_each_path_lies_on_the_surface_at_the_runs_points_and_losses(qtbot, window):
    assert window.open_lab(RAVINE)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    window.map_tabs.setCurrentWidget(window.landscape_3d)  # the 3-D tab, visible while racing
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    window.flush_redraw()
    view = window.landscape_3d
    assert not get_function("ravine").log_scale
    positions = view.path_positions()
    assert len(positions) == len(window.history.runs) >= 2
    for drawn, series in zip(positions, window.history.runs):
        x, y, loss = series.column("x"), series.column("y"), series.column("loss")
        np.testing.assert_array_equal(drawn[:, :2], np.column_stack([x, y]))
        # The height is the run's loss, which is f at its point (the ravine's formula, here).
        np.testing.assert_allclose(loss, 0.5 * (x**2 + 100 * y**2), rtol=1e-5, atol=1e-9)
        np.testing.assert_array_equal(drawn[:, 2], np.clip(loss, view.mesh.lo, view.mesh.hi))


def test_a_path_leaves_out_points_without_a_finite_loss():
    mesh = function_mesh(get_function("quadratic"), resolution=11)
    drawn = path_vertices(mesh, np.array([0.5, 0.2, 0.1]), np.array([0.5, 0.1, 0.0]),
                          np.array([0.5, np.nan, 0.01]))
    assert drawn[:, :2].tolist() == [[0.5, 0.5], [0.1, 0.0]]


def test_without_opengl_the_3d_tab_says_why(qtbot, window):
    assert window.map_tabs.tabText(1) == "3-D"
    window.show()
    qtbot.waitExposed(window)
    window.map_tabs.setCurrentWidget(window.landscape_3d)
    view = window.landscape_3d
    assert not view.available  # Qt's offscreen platform has no OpenGL
    assert view.fallback.isVisible()
    text = view.fallback.text()
    assert "needs OpenGL" in text and "offscreen" in text and "Map tab" in text


GL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from PySide6.QtWidgets import QApplication
    from app.shell.theme import configure_pyqtgraph
    from app.arena.function_3d import Function3DView
    from core.problems.functions import get_function

    app = QApplication(sys.argv)
    configure_pyqtgraph()
    view = Function3DView()
    view.resize(480, 360)
    view.show()
    view.set_objective(get_function({"expression": "log(x) + y^2", "domain": [[-1, 2], [-1, 1]]}))
    view.set_runs(["#e69f00"])
    x = np.linspace(1.5, 1.0, 20); y = np.linspace(0.8, 0.0, 20)
    view.update_paths([(x, y, np.log(x) + y ** 2)], [True])
    for _ in range(20):
        app.processEvents()
    assert view.available, view.fallback.text()
    image = view.grab_image()
    pixels = np.array([[image.pixel(i, j) & 0xFFFFFF for i in range(0, image.width(), 4)]
                       for j in range(0, image.height(), 4)])
    print("COLOURS", len(np.unique(pixels)))
""")


@pytest.mark.opengl
def test_the_function_renders_in_real_opengl_under_xvfb(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed: no X server for a real OpenGL context")
    script = tmp_path / "gl.py"
    script.write_text(GL_SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 800x600x24", sys.executable,
                           str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    if "Could not load the Qt platform plugin" in done.stderr:
        pytest.skip("Qt's xcb platform plugin cannot load here")
    assert done.returncode == 0, done.stderr[-2000:]
    colours = int(done.stdout.split("COLOURS")[1])
    assert colours > 20  # a shaded surface, not a blank frame
