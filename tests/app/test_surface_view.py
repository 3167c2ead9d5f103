"""The Surface tab against a real (tiny) trained network race, computed on a real QThread."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.surface.sharpness_page import EDGE_LEGEND
from app.surface.view import PAGE_3D, PAGE_SHARPNESS, SurfaceView
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.landscape.live import WeightTap

ROOT = Path(__file__).resolve().parents[2]
COLORS = ["#e69f00", "#56b4e9"]


def _lab(steps=30):
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 128, "noise": 0.2, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                          {"linear": 2}]},
        loss="cross_entropy", batch_size=32, eval_every=10, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.02}))
    return validate_lab(Lab(name="t", seed=2, steps=steps, problem=problem, runs=runs))


@pytest.fixture(scope="module")
def trained_tap():
    tap = WeightTap(every=5)
    list(tap.records(NetworkRace(_lab())))
    return tap


@pytest.fixture
def view(qtbot, trained_tap):
    widget = SurfaceView()
    qtbot.addWidget(widget)
    widget.resize(900, 640)
    widget.set_runs(["SGD", "Adam"], COLORS)
    widget.set_tap(trained_tap)
    yield widget
    widget.shutdown()


def _compute(qtbot, view, grid=21, directions="random"):
    view.controls.set_directions(directions)
    view.controls.grid_spin.setValue(grid)
    assert view.compute()
    qtbot.waitUntil(lambda: view.final is not None and not view.controller.is_running(),
                    timeout=15_000)
    return view.final


def test_the_map_shows_a_finite_surface_and_every_runs_projected_path(qtbot, view, trained_tap):
    final = _compute(qtbot, view, grid=21, directions="pca")
    image = view.plot.image.image
    assert image.shape == (21, 21) and np.isfinite(image).all()
    assert image.max() > image.min()  # a real landscape, not a flat colour
    source = trained_tap.snapshot()
    for (alpha, beta), steps in zip(view.plot.projected_paths(), source.steps):
        assert len(alpha) == len(beta) == len(steps) == 7  # steps 0, 5, …, 30
    assert len(view.plot.contours.getData()[0]) > 0
    assert "explained variance" in view.info.text()
    assert view.controls.export_npz.isEnabled()
    assert final.progress == 1.0 and view.controls.progress.value() == 1000


def test_without_a_c_compiler_the_page_says_the_surface_ran_on_the_torch_engine(
        qtbot, view, monkeypatch, tmp_path):
    from core.landscape import native

    monkeypatch.setenv("DESCENT_LAB_NATIVE_CACHE", str(tmp_path / "native"))
    monkeypatch.delenv("DESCENT_LAB_NATIVE", raising=False)  # else the switch is the reason
    monkeypatch.setattr(native, "compiler", lambda: None)
    native.forget()
    try:
        final = _compute(qtbot, view, grid=9)
    finally:
        native.forget()
    assert np.isfinite(final.loss).all()
    assert "torch engine, no native kernel (no C compiler found" in view.info.text()


def test_hover_shows_step_off_plane_distance_true_and_surface_loss(qtbot, view):
    final = _compute(qtbot, view, grid=11)
    view.show()
    qtbot.waitExposed(view)
    path = final.paths[1]
    k = len(path["alpha"]) - 2
    vb = view.plot.plotItem.vb
    from PySide6.QtCore import QPointF

    scene = vb.mapViewToScene(QPointF(float(path["alpha"][k]), float(path["beta"][k])))
    view.plot.on_mouse_moved(scene)
    text = view.plot.hover_text
    assert f"step {int(path['step'][k])}" in text and "Adam" in text
    assert f"{path['off_plane'][k]:.4g}" in text
    assert f"true loss {path['true_loss'][k]:.5g}" in text
    assert f"surface loss here {path['surface_loss'][k]:.5g}" in text
    assert view.plot.hover_label.isVisible()
    view.plot.on_mouse_moved(vb.mapViewToScene(QPointF(1e6, 1e6)))  # far from every point
    assert view.plot.hover_text == "" and not view.plot.hover_label.isVisible()


def test_cancel_stops_the_worker_cleanly_and_keeps_the_window_usable(qtbot, view):
    view.controls.grid_spin.setValue(101)
    assert view.compute()
    view.controls.cancel_button.click()
    assert not view.controller.is_running()
    assert view.final is None and "Cancelled" in view.info.text()
    # It can compute again after a cancel.
    assert _compute(qtbot, view, grid=9).loss.shape == (9, 9)


def test_export_writes_a_loadable_npz_and_a_png(qtbot, view, tmp_path):
    _compute(qtbot, view, grid=9)
    view.save_dialog = lambda *args: (str(tmp_path / "surf"), "")
    view.controls.export_npz.click()
    data = np.load(tmp_path / "surf.npz")
    assert data["loss"].shape == (9, 9) and list(data["labels"]) == ["SGD", "Adam"]
    assert "run1_surface_loss" in data.files and str(data["directions"]) == "random"
    view.save_dialog = lambda *args: (str(tmp_path / "surf.png"), "")
    view.controls.export_png.click()
    assert (tmp_path / "surf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slices_and_sharpness_fill_their_plots(qtbot, view):
    assert view.compute_slices()
    qtbot.waitUntil(lambda: not view.controller.is_running() and len(view.slice_plot.curves) == 2,
                    timeout=10_000)
    x, y = view.slice_plot.curves[0].getData()
    assert len(x) == 41 and np.isfinite(y).all()
    assert view.compute_sharpness()
    qtbot.waitUntil(lambda: not view.controller.is_running() and
                    len(view.sharpness_plot.series) == 2, timeout=15_000)
    steps, sharp, lr = view.sharpness_plot.series[0]
    assert steps[0] == 0 and steps[-1] == 30 and (sharp > 0).all() and np.allclose(lr[1:], 0.1)


def test_the_3d_page_says_why_there_is_no_opengl_offscreen(qtbot, view):
    _compute(qtbot, view, grid=9)
    view.show()
    view.pages.setCurrentIndex(PAGE_3D)
    qtbot.waitUntil(lambda: "OpenGL" in view.view3d.fallback.text(), timeout=2000)
    assert "offscreen" in view.view3d.fallback.text()
    assert view.view3d.fallback.isVisible() and not view.view3d.available


def test_follow_training_recomputes_every_n_steps_in_the_window(qtbot, window, tmp_path):
    lab = replace(_lab(steps=100), name="follow")
    path = tmp_path / "follow.lab.json"
    save_lab(lab, path)
    assert window.open_lab(path)
    surface = window.network_view.surface_view
    window.network_view.tabs.setCurrentWidget(surface)
    surface.controls.grid_spin.setValue(9)
    surface.controls.follow_spin.setValue(30)
    surface.controls.follow_check.setChecked(True)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    try:
        with qtbot.waitSignal(window.race_finished, timeout=60_000):
            window.play()
        qtbot.waitUntil(lambda: not surface.controller.is_running(), timeout=15_000)
        assert surface.follow_count >= 1
        assert surface.result is not None and surface.result.race_step >= 0
        # After the race: a PCA plane of the finished trajectories from the window's own tap.
        final = _compute(qtbot, surface, grid=9, directions="pca")
        assert final.race_step == 100 and final.paths[0]["step"][-1] == 100
    finally:
        surface.shutdown()


OPENGL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from PySide6.QtWidgets import QApplication
    from app.shell.theme import configure_pyqtgraph
    from app.surface.view_3d import Surface3DView

    app = QApplication(sys.argv)
    configure_pyqtgraph()
    view = Surface3DView()
    view.resize(480, 360)
    view.show()
    a = np.linspace(-1, 1, 31)
    z = np.log10(1 + 3 * (a[None, :] ** 2 + 2 * a[:, None] ** 2))
    path = (np.linspace(-0.8, 0, 10), np.linspace(0.6, 0, 10), np.linspace(0.6, 0, 10))
    view.set_surface(a, a, z, [path], ["#e69f00"])
    for _ in range(20):
        app.processEvents()
    assert view.available, view.fallback.text()
    image = view.grab_image()
    pixels = np.array([[image.pixel(x, y) & 0xFFFFFF for x in range(0, image.width(), 4)]
                       for y in range(0, image.height(), 4)])
    print("SIZE", image.width(), image.height(), "COLOURS", len(np.unique(pixels)))
""")


@pytest.mark.opengl
def test_the_3d_view_renders_a_real_surface_under_xvfb(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed: no X server for a real OpenGL context")
    script = tmp_path / "gl.py"
    script.write_text(OPENGL_SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 800x600x24", sys.executable, str(script)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    if "Could not load the Qt platform plugin" in result.stderr:
        pytest.skip("Qt's xcb platform plugin cannot load here (system X libraries missing, "
                    "e.g. libxcb-icccm4, libxcb-keysyms1)")
    assert result.returncode == 0, result.stderr[-2000:]
    line = [s for s in result.stdout.splitlines() if s.startswith("SIZE")][-1]
    colours = int(line.split()[-1])
    # A blank frame is one colour (the background); the coloured surface has many.
    assert colours > 20, line


# -- sharpness: tracked by the race, in the Sharpness page and the comparison table ------------


def _tracked_lab(steps=20):
    lab = _lab(steps=steps)
    problem = replace(lab.problem, batch_size=None, sharpness_every=5)
    runs = (RunSpec("SGD 0.05", "sgd", {"lr": 0.05}), RunSpec("SGD 0.5", "sgd", {"lr": 0.5}))
    return validate_lab(replace(lab, problem=problem, runs=runs))


@pytest.fixture(scope="module")
def tracked_race():
    lab = _tracked_lab()
    race = NetworkRace(lab)
    return lab, race, list(race.records())


def _network_view(qtbot, race, history):
    from app.network.views import NetworkView

    view = NetworkView()
    qtbot.addWidget(view)
    view.resize(1000, 650)
    view.set_runs(list(race.labels), COLORS, race.data, total_steps=race.lab.steps)
    view.surface_view.set_sharpness_every(race.lab.problem.sharpness_every)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_the_sharpness_page_draws_the_races_tracked_sharpness_against_2_over_lr(
        qtbot, tracked_race):
    from core.engine.history import NetworkHistory

    lab, race, records = tracked_race
    history = NetworkHistory(race.labels)
    view = _network_view(qtbot, race, history)
    surface = view.surface_view
    view.tabs.setCurrentWidget(surface)
    surface.pages.setCurrentIndex(PAGE_SHARPNESS)
    assert "tracks sharpness every 5 steps" in surface.sharpness_source.text()
    assert not surface.sharpness_button.isEnabled()  # on demand only where nothing is tracked
    plot = surface.sharpness_plot

    history.extend(records[:11])  # streaming: steps 0 … 10, sharpness at 0, 5, 10
    view.update_from(history)
    assert len(plot.items) == 2
    assert list(plot.items[0][0].getOriginalDataset()[0]) == [0, 5, 10]
    history.extend(records[11:])
    view.update_from(history)
    for run in range(2):
        steps, sharp, lr = history.sharpness_series(run)
        line, edge = plot.items[run]
        x, y = line.getOriginalDataset()  # the data, not its log10 for drawing
        np.testing.assert_array_equal(x, steps)
        np.testing.assert_allclose(y, sharp)
        assert list(steps) == [0, 5, 10, 15, 20]
        _, edge_y = edge.getOriginalDataset()
        np.testing.assert_allclose(edge_y, 2.0 / lr)  # the run's own 2/lr …
        np.testing.assert_allclose(edge_y, 2.0 / lab.runs[run].params["lr"])  # … its lr
    assert plot.items[0][1].opts["pen"].style() == Qt.PenStyle.DashLine
    assert plot.items[1][1].opts["pen"].color().name() == COLORS[1]
    legend = [label.text for _, label in plot.plotItem.legend.items]
    assert legend == ["SGD 0.05", "SGD 0.5", EDGE_LEGEND]
    assert "edge of stability" in plot.toolTip()


def test_a_hidden_sharpness_page_draws_only_when_shown(qtbot, tracked_race):
    from core.engine.history import NetworkHistory

    _, race, records = tracked_race
    history = NetworkHistory(race.labels)
    history.extend(records)
    view = _network_view(qtbot, race, history)  # the Curves tab is shown
    view.update_from(history)
    surface = view.surface_view
    assert surface.sharpness_plot.items == {}  # nothing drawn on a hidden page
    view.tabs.setCurrentWidget(surface)
    surface.pages.setCurrentIndex(PAGE_SHARPNESS)
    assert len(surface.sharpness_plot.items) == 2


def test_the_comparison_table_shows_the_last_sharpness_and_exports_it(qtbot, tracked_race,
                                                                      tmp_path):
    from core.engine.history import NetworkHistory

    _, race, records = tracked_race
    history = NetworkHistory(race.labels)
    history.extend(records)
    view = _network_view(qtbot, race, history)
    view.update_from(history)
    view.flush()
    headers = [c.header for c in view._columns]
    col = headers.index("Sharpness")
    assert view.table.horizontalHeaderItem(col).toolTip()
    rows = view.table_rows()
    for i in range(2):
        assert rows[i][col] == f"{history.last_sharpness(i):.4g}"
    # Sorting by the column orders the runs by the number, not the text.
    view.table.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    keys = [view.table.item(r, col).key() for r in range(2)]
    assert keys == sorted(history.last_sharpness(i) for i in range(2))
    path = view.export_csv(tmp_path / "table.csv")
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        header, *body = list(csv.reader(handle))
    assert header[col] == "Sharpness"
    for row in body:
        i = list(race.labels).index(row[1])
        assert float(row[col]) == history.last_sharpness(i)  # full precision


def test_an_untracked_lab_measures_on_demand_and_the_table_shows_it(qtbot, trained_tap):
    from app.network.views import NetworkView
    from core.engine.history import NetworkHistory

    lab = _lab()
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_runs(list(race.labels), COLORS, race.data, total_steps=lab.steps)
    view.update_from(history)
    view.flush()
    surface = view.surface_view
    col = [c.header for c in view._columns].index("Sharpness")
    assert [row[col] for row in view.table_rows()] == ["—", "—"]
    assert "does not track" in surface.sharpness_source.text()
    assert surface.sharpness_button.isEnabled()
    surface.set_tap(trained_tap)
    try:
        surface.sharpness_button.click()
        qtbot.waitUntil(lambda: not surface.controller.is_running() and
                        len(surface.sharpness_plot.series) == 2, timeout=15_000)
    finally:
        surface.shutdown()
    for i, row in enumerate(view.table_rows()):
        assert row[col] == f"{surface.sharpness_plot.series[i][1][-1]:.4g}"


def test_the_network_problem_edits_sharpness_tracking_undoably(qtbot, window, tmp_path):
    path = tmp_path / "sharp.lab.json"
    save_lab(replace(_lab(), name="sharp"), path)
    assert window.open_lab(path)
    box = window.network_panel.sharpness_box
    surface = window.network_view.surface_view
    assert box.value() == 0 and box.text() == "off" and box.toolTip()
    box.setValue(7)
    assert window.document.lab.problem.sharpness_every == 7
    assert "every 7 steps" in surface.sharpness_source.text()
    window.document.undo_stack.undo()
    assert window.document.lab.problem.sharpness_every == 0
    assert box.value() == 0 and "does not track" in surface.sharpness_source.text()
    window.document.undo_stack.redo()
    assert window.network_panel.sharpness_box.value() == 7
