"""A class is one colour in every view of a network lab.

The data preview (app/network/data_preview.py) once drew moons' class 0 orange while the decision
boundaries (app/network/boundaries_tab.py) drew it blue. These tests read the colours back from the
items each view draws (the preview's scatter items, the boundary panel's scatter points, the
rendered boundary image) and compare them class by class.
"""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from app.network.problem_panel import NetworkProblemPanel
from app.network.views import NetworkView
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

MOONS = {"name": "moons", "n": 256, "noise": 0.1, "val_fraction": 0.25}
MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
BLOBS = {"name": "blobs", "n": 240, "classes": 3, "val_fraction": 0.25}
MLP3 = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 3}]}
HUE_TOLERANCE = 12  # degrees: the boundary background is the class colour, darker or fainter


def _lab(dataset, model) -> Lab:
    problem = NetworkProblem(dataset=dataset, model=model, loss="cross_entropy", batch_size=32,
                             eval_every=20, device="cpu")
    return validate_lab(Lab(name="colours", seed=3, steps=120, problem=problem,
                            runs=(RunSpec("Adam", "adam", {"lr": 0.02}),)))


@pytest.fixture(scope="module", params=[(MOONS, MLP), (BLOBS, MLP3)], ids=["moons", "blobs"])
def race(request):
    race = NetworkRace(_lab(*request.param))
    return race, list(race.records())


def _class_of(data) -> dict[tuple[float, float], int]:
    """Point position → class, over both splits."""
    table = {}
    for points, labels in ((data.points_train, data.y_train), (data.points_val, data.y_val)):
        for (x, y), label in zip(points, labels):
            table[(round(float(x), 6), round(float(y), 6))] = int(label)
    return table


def _colors_by_class(items, data, hollow: bool) -> dict[int, set[str]]:
    """Class → the colours (fill of a dot, outline of a ring) its points are drawn in."""
    table = _class_of(data)
    found: dict[int, set[str]] = {}
    for item in items:
        for spot in item.points():
            pos = spot.pos()
            label = table[(round(pos.x(), 6), round(pos.y(), 6))]
            color = spot.pen().color() if hollow else spot.brush().color()
            found.setdefault(label, set()).add(color.name(pg.QtGui.QColor.NameFormat.HexArgb))
    return found


def _is_ring(item: pg.ScatterPlotItem) -> bool:
    """Validation points are drawn hollow: no fill, or a transparent one."""
    return all(spot.brush().style() == pg.QtCore.Qt.BrushStyle.NoBrush
               or spot.brush().color().alpha() == 0 for spot in item.points())


def _preview_colors(qtbot, lab, data, hollow: bool) -> dict[int, set[str]]:
    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(lab)
    items = [i for i in panel.preview.getPlotItem().items if isinstance(i, pg.ScatterPlotItem)]
    assert items, "the preview draws no points"
    return _colors_by_class([i for i in items if _is_ring(i) == hollow], data, hollow)


def _boundary_view(qtbot, race, records) -> NetworkView:
    view = NetworkView()
    qtbot.addWidget(view)
    labels = list(race.labels)
    view.set_runs(labels, ["#e69f00"], race.data, total_steps=race.lab.steps)
    history = NetworkHistory(labels)
    history.extend(records)
    view.update_from(history)
    view.flush()
    return view


def _hue_gap(a: int, b: int) -> int:
    gap = abs(a - b) % 360
    return min(gap, 360 - gap)


@pytest.mark.parametrize("hollow", [False, True], ids=["training dots", "validation rings"])
def test_the_preview_and_the_boundaries_draw_each_class_in_the_same_colour(qtbot, race, hollow):
    race, records = race
    view = _boundary_view(qtbot, race, records)
    panel_items = [i for i in view._panels[0].plot.items if isinstance(i, pg.ScatterPlotItem)]
    boundaries = _colors_by_class([i for i in panel_items if _is_ring(i) == hollow], race.data,
                                  hollow)
    preview = _preview_colors(qtbot, race.lab, race.data, hollow)
    assert set(preview) == set(boundaries) == set(range(race.data.n_classes))
    for label in boundaries:
        assert len(boundaries[label]) == len(preview[label]) == 1, "one colour per class"
        assert preview[label] == boundaries[label], f"class {label}"
    # and the classes are told apart
    assert len({next(iter(colors)) for colors in boundaries.values()}) == race.data.n_classes


def test_the_boundary_background_is_each_class_in_its_points_colour(qtbot, race):
    race, records = race
    view = _boundary_view(qtbot, race, records)
    panel = view._panels[0]
    panel.image.render()  # the ARGB picture the view paints
    picture = panel.image.qimage
    assert picture is not None
    data = race.data
    dots = _colors_by_class(
        [i for i in panel.plot.items if isinstance(i, pg.ScatterPlotItem) and not _is_ring(i)],
        data, hollow=False)
    # Under a class's own points the trained model says that class: the background there is
    # that class's colour (darker, or fainter where the model is less sure).
    (x0, x1), (y0, y1) = data.plane
    rows, cols = panel.image.image.shape[:2]
    for label, colors in dots.items():
        dot = pg.QtGui.QColor(next(iter(colors)))
        points = data.points_train[data.y_train == label]
        agree = 0
        for x, y in points:
            col = int(round((x - x0) / (x1 - x0) * (cols - 1)))
            row = int(round((y - y0) / (y1 - y0) * (rows - 1)))
            seen = picture.pixelColor(col, row)
            agree += (seen.hsvSaturation() > 40
                      and _hue_gap(seen.hsvHue(), dot.hsvHue()) <= HUE_TOLERANCE)
        assert agree > 0.8 * len(points), (
            f"class {label}: {agree} of {len(points)} points lie on a background of their colour")
