"""The 2-D map drawn to scale, with a key naming the paths (also in its exported picture),
undefined regions of a typed formula hatched instead of coloured as peaks, and a note when a
formula's usual start could not be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from app.export.pictures import export_picture
from app.shell.menus import view_menu

LOG_X = "log(x) + y**2"
RAVINE = Path(__file__).resolve().parents[2] / "resources" / "labs" / "ravine.lab.json"


def _steps(qtbot, window, n: int) -> None:
    for _ in range(n):
        before = window.history.last_step
        window.step()
        qtbot.waitUntil(lambda before=before: window.history.last_step > before, timeout=10_000)
    window.flush_redraw()


def test_the_map_is_drawn_to_scale_by_default_and_a_toggle_stretches_it(qtbot, window):
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    vb = window.landscape.plotItem.vb
    px, py = vb.viewPixelSize()
    assert px == pytest.approx(py, rel=1e-6)  # one unit of x as long as one of y: x² + y² is round
    action = window.landscape.aspect_action
    assert action.isChecked() and action in view_menu(window).actions()
    action.trigger()
    qtbot.wait(20)
    px, py = vb.viewPixelSize()
    assert px != pytest.approx(py, rel=0.05)  # the tall arena view stretches the domain
    (x0, x1), (y0, y1) = window.landscape._domain
    (vx0, vx1), (vy0, vy1) = vb.viewRange()
    assert (vx0, vx1, vy0, vy1) == pytest.approx((x0, x1, y0, y1))
    action.trigger()
    px, py = vb.viewPixelSize()
    assert px == pytest.approx(py, rel=1e-6)
    # A domain twice as wide as tall in the tall view: all of it is shown, to scale (the zoom
    # limits once clamped y, and the locked aspect then cut the ravine's ends off).
    assert window.open_lab(RAVINE)
    qtbot.wait(20)
    (x0, x1), (y0, y1) = window.landscape._domain
    (vx0, vx1), (vy0, vy1) = vb.viewRange()
    assert vx0 <= x0 + 1e-9 and x1 - 1e-9 <= vx1 and vy0 <= y0 and y1 <= vy1
    px, py = vb.viewPixelSize()
    assert px == pytest.approx(py, rel=1e-6)


def test_the_key_names_every_path_above_the_map_and_is_in_the_exported_picture(
        qtbot, window, tmp_path):
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    _steps(qtbot, window, 3)
    landscape = window.landscape
    labels = [run.label for run in window.document.lab.enabled_runs()]
    key = landscape.legend
    assert [label.text for _, label in key.items] == labels
    rect, data = key.sceneBoundingRect(), landscape.plotItem.vb.sceneBoundingRect()
    assert key.isVisible() and rect.bottom() <= data.top() + 0.5
    # The exported PNG shows each run's key line in its colour where the key is.
    path = export_picture(landscape, tmp_path / "map.png")
    image = QImage(str(path))
    for sample, _label in key.items:
        box = landscape.mapFromScene(sample.sceneBoundingRect()).boundingRect()
        color = sample.item.opts["pen"].color()
        assert _has_color(image, box, color), sample.item
    assert landscape.rect().contains(landscape.mapFromScene(rect).boundingRect())


def _has_color(image: QImage, box, color: QColor) -> bool:
    ratio = image.devicePixelRatio()
    for x in range(int(box.left() * ratio), int(box.right() * ratio) + 1):
        for y in range(int(box.top() * ratio), int(box.bottom() * ratio) + 1):
            if image.pixelColor(x, y).rgb() == color.rgb():
                return True
    return False


def test_undefined_regions_are_hatched_not_coloured_as_peaks(qtbot, window):
    panel = window.problem_panel
    panel.function_combo.setCurrentIndex(panel.function_combo.findData("__expression__"))
    panel.expression_edit.setText(LOG_X)
    panel._apply_expression()
    landscape = window.landscape
    assert landscape.objective.formula.endswith(LOG_X)
    overlay = landscape.undefined.image  # RGBA, rows are y
    xs = np.linspace(*landscape._domain[0], overlay.shape[1])
    alpha = overlay[..., 3]
    assert (alpha[:, xs < 0] == 255).all() and (alpha[:, xs > 0] == 0).all()
    assert landscape.undefined.isVisible()
    # The key names the hatching.
    assert "undefined" in [label.text for _, label in landscape.legend.items]
    # The usual start (-1.8, 1.8) is undefined: the panel says where the runs start instead.
    start = window.document.lab.problem.start
    assert start[0] > 0
    assert panel.start_note.isVisibleTo(panel)
    assert "not finite at the usual start" in panel.start_note.text()
    # A formula defined everywhere: no hatching, no note.
    panel.expression_edit.setText("x**2 + y**2")
    panel._apply_expression()
    assert not landscape.undefined.isVisible()
    assert not panel.start_note.isVisibleTo(panel)
    assert "undefined" not in [label.text for _, label in landscape.legend.items]
