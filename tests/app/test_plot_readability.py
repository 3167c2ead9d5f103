"""Plots a first-time user can read: plain axis numbers (no pyqtgraph "(x0.001)" factor in a
label), on every plot the window and its tool windows make."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg

from app.tools.lr_finder_window import RULE_TITLES
from app.tools.tool_windows import open_tool_window
from core.tools.lr_finder import RULES, lr_range_test

ROOT = Path(__file__).resolve().parents[2]
MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def _axes(widget) -> list[pg.AxisItem]:
    axes = []
    for view in widget.findChildren(pg.GraphicsView):
        axes += [item for item in view.scene().items() if isinstance(item, pg.AxisItem)]
    return axes


def _assert_plain(axes: list[pg.AxisItem]) -> None:
    assert axes
    scaled = [(axis.orientation, axis.labelString()) for axis in axes
              if axis.autoSIPrefix or "(x" in axis.labelString()]
    assert not scaled, f"axes with SI prefix scaling: {scaled}"


def test_no_axis_of_the_window_or_its_tool_windows_scales_by_an_si_prefix(qtbot, window):
    window.resize(1280, 800)
    window.show()
    # The arena's lr plot holds lr = 0.0005 … 0.05: pyqtgraph labelled it "lr (x0.001)".
    window.lr_plot.plotItem.vb.setYRange(0.0, 0.0009)
    _assert_plain(_axes(window.arena_view))
    assert window.open_lab(MOONS)
    _assert_plain(_axes(window.network_view))
    for kind in ("lr_finder", "sweep", "fingerprint"):
        tool = open_tool_window(window, kind)
        _assert_plain(_axes(tool))
        tool.close()


def test_every_legend_is_a_row_above_its_data(qtbot, window):
    """The legends of the loss plot, the sharpness and slice plots, the sweep's best-so-far plot
    and the LR range test sit between the title and the data, never over a curve (pyqtgraph's
    boxes sat on Adam's 2/lr line and on the newest steps); the LR range test names its rules
    there, not in labels on the lines that lay over each other."""
    from app.surface.sharpness_page import SharpnessPlot
    from app.surface.slice_page import SlicePlot
    from app.tools.sweep_views import BestSoFarPlot

    lr_window = open_tool_window(window, "lr_finder")
    plots = [window.loss_plot, SharpnessPlot(), SlicePlot(), BestSoFarPlot(), lr_window.plot]
    for plot in plots[1:4]:
        qtbot.addWidget(plot)
    for plot in plots:
        item = plot.plotItem
        item.addItem(pg.PlotDataItem([0, 1], [1, 2], name="a run"))
        plot.resize(420, 300)
        plot.show()
    qtbot.wait(20)
    for plot in plots:
        item = plot.plotItem
        key, data = item.legend.sceneBoundingRect(), item.vb.sceneBoundingRect()
        assert item.legend.isVisible(), plot.objectName()
        assert key.height() > 0 and key.bottom() <= data.top() + 0.5, (plot.objectName(), key, data)
    # A real range test on the window's lab, drawn: the rules are named in the key.
    result = lr_range_test(window.document.lab, steps=60)
    lr_window._draw_markers(result)
    lines = [line for line in lr_window.plot.plotItem.items if isinstance(line, pg.InfiniteLine)]
    assert len(lines) == len(RULES)
    assert not [line for line in lines if getattr(line, "label", None) is not None]
    texts = [label.text for _, label in lr_window.plot.plotItem.legend.items]
    assert all(any(text.startswith(RULE_TITLES[rule]) for text in texts) for rule in RULES)
    lr_window.close()


def _tick_texts(axis: pg.AxisItem) -> list[str]:
    """The tick labels ``axis`` draws (pyqtgraph leaves out those it cannot fit)."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in texts]


def test_the_last_step_is_labelled_and_the_lr_axis_never_goes_below_zero(qtbot, window):
    """A 1000-step race: both arena plots label step 1000 (pyqtgraph dropped the label that
    overhung the axis end). Learning rates 0.0005 … 0.05 go on a log axis (on a linear one the
    small ones lay flat on 0 and the range dipped to −0.01); lrs within a decade stay linear
    with the axis stopping at 0."""
    import numpy as np

    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    steps = np.arange(1001.0)
    lrs = [0.0005, 0.0005, 0.005, 0.05]
    labels, colors = ["a", "b", "c", "d"], ["#ee6677", "#88ccee", "#228833", "#ccbb44"]
    for plot in (window.loss_plot, window.lr_plot):
        plot.set_runs(labels, colors, x_max=1000)
    window.loss_plot.update_series([(steps, np.exp(-steps / (100 + 50 * i))) for i in range(4)])
    window.lr_plot.update_series([(steps, np.full(1001, lr)) for lr in lrs])
    qtbot.wait(20)
    for plot in (window.loss_plot, window.lr_plot):
        assert "1000" in _tick_texts(plot.plotItem.getAxis("bottom")), plot.objectName()
    lr_plot = window.lr_plot
    assert lr_plot.log_y
    (_x, (y0, y1)) = lr_plot.plotItem.vb.viewRange()
    assert y0 <= np.log10(0.0005) and np.log10(0.05) <= y1
    # A new race with close learning rates: linear again, from 0 up.
    lr_plot.set_runs(labels[:2], colors[:2], x_max=1000)
    lr_plot.update_series([(steps, np.full(1001, 0.01)), (steps, 0.012 * (1 - steps / 1000))])
    assert not lr_plot.log_y
    (_x, (y0, y1)) = lr_plot.plotItem.vb.viewRange()
    assert y0 >= 0.0 and y1 >= 0.012


def test_log_tick_labels_never_overlap_over_many_or_few_decades(qtbot):
    """A loss falling over twenty decades (the ravine) and one within a decade: the left axis's
    labels never overlap nor fill the axis (every one of 23 decades labelled piled up)."""
    import numpy as np

    from app.widgets.curves import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.set_minimum(0.0)
    plot.set_runs(["a"], ["#ee6677"], x_max=300)
    plot.resize(300, 500)  # the arena's loss plot at 1280×800
    plot.show()
    qtbot.waitExposed(plot)
    steps = np.arange(301.0)
    for values in (10.0 ** (2 - steps / 13), 2 + 7 * np.exp(-steps / 50)):
        plot.update_series([(steps, values)])
        qtbot.wait(20)
        from PySide6.QtGui import QImage, QPainter

        image = QImage(10, 10, QImage.Format.Format_ARGB32)
        painter = QPainter(image)
        texts = plot.plotItem.getAxis("left").generateDrawSpecs(painter)[2]
        painter.end()
        rects = [rect for rect, _flags, _text in texts]
        assert len(rects) >= 2
        for i, a in enumerate(rects):
            for b in rects[i + 1:]:
                assert not a.intersects(b), [text for _r, _f, text in texts]
        # Room between them: labels fill at most 60 % of the axis, not a solid column.
        filled = sum(rect.height() for rect in rects)
        assert filled <= 0.6 * plot.plotItem.getAxis("left").height(), [t for *_, t in texts]


def test_step_labels_of_a_narrow_plot_do_not_run_together(qtbot):
    """The arena's lr plot beside the internals dock is ~150 px wide: its step labels keep
    apart ("600 8001000" ran together once the last label was allowed past the axis end)."""
    import numpy as np

    from app.widgets.curves import LrPlot

    for width in (150, 220, 400):
        plot = LrPlot()
        qtbot.addWidget(plot)
        plot.set_runs(["a"], ["#ee6677"], x_max=1000)
        plot.resize(width, 250)
        plot.show()
        qtbot.waitExposed(plot)
        plot.update_series([(np.arange(1001.0), np.full(1001, 0.01))])
        qtbot.wait(20)
        texts = _draw_specs(plot.plotItem.getAxis("bottom"))
        rects = sorted((rect for rect, _flags, _text in texts), key=lambda r: r.left())
        assert len(rects) >= 2, width
        for a, b in zip(rects, rects[1:]):
            assert b.left() - a.right() >= 4, (width, [t for *_, t in texts])


def _draw_specs(axis: pg.AxisItem):
    from PySide6.QtGui import QImage, QPainter

    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        return axis.generateDrawSpecs(painter)[2]
    finally:
        painter.end()


def test_the_fingerprint_update_plot_labels_do_not_crowd_on_a_one_decade_log_axis(qtbot):
    """SGD with momentum 0.9: its update size spans about one decade (1 … 15). pyqtgraph
    labelled every minor tick, "8", "9" and "10¹" touching near the top (9 and 10 are 0.046
    decades apart); the crowded minor labels go, the decade and 2, 5 labels stay apart."""
    import numpy as np

    from app.tools.fingerprint_views import FingerprintPlots
    from core.optim.catalog import get_optimizer_info
    from core.optim.check_report import Adapters
    from core.optim.fingerprint import fingerprint

    info = get_optimizer_info("sgd")
    fp = fingerprint(info.cls, {"lr": 0.01, "momentum": 0.9}, name="sgd", build=info.build,
                     declared=Adapters.of(info))
    plots = FingerprintPlots()
    qtbot.addWidget(plots)
    plots.resize(930, 510)  # the plots of the Fingerprint window at 1280×800
    plots.show()
    qtbot.waitExposed(plots)
    plots.show_fingerprint(fp)
    qtbot.wait(20)
    axis = plots.update_plot.plotItem.getAxis("left")
    (_lo, _hi) = y_range = plots.update_plot.plotItem.vb.viewRange()[1]
    assert y_range[1] - y_range[0] < 1.6  # about one decade: the case this test is about
    texts = sorted(_draw_specs(axis), key=lambda spec: spec[0].top())
    assert len(texts) >= 3, [t for *_, t in texts]
    assert "10¹" in [t for *_, t in texts]
    for (a, _fa, ta), (b, _fb, tb) in zip(texts, texts[1:]):
        # pyqtgraph's rects are 0.8 of a line: 6 px between them is about half a line.
        assert b.top() - a.bottom() >= 6, (ta, tb, [t for *_, t in texts])
    # The minor ticks are still drawn (unlabelled): as many tick levels as before.
    levels = axis.tickValues(*y_range, axis.height())
    assert len(levels) == 3 and any(np.isclose(v, np.log10(9)) for v in levels[2][1])


def test_a_window_made_before_any_theme_still_has_plain_axes(tmp_path):
    """A script (or a screenshot) that makes the window without applying a theme first got
    pyqtgraph's defaults: "lr (x0.001)" and no label at the last step."""
    import os
    import subprocess
    import sys

    code = (
        "from PySide6.QtCore import QSettings\n"
        "from PySide6.QtWidgets import QApplication\n"
        "import pyqtgraph as pg\n"
        "app = QApplication([])\n"
        "from app.shell.main_window import MainWindow\n"
        f"w = MainWindow(settings=QSettings({str(tmp_path / 's.ini')!r}, "
        "QSettings.Format.IniFormat))\n"
        "axes = [i for v in w.findChildren(pg.GraphicsView) for i in v.scene().items()\n"
        "        if isinstance(i, pg.AxisItem)]\n"
        "print(len(axes), sum(a.autoSIPrefix for a in axes))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT),
           "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    count, scaled = int(out[-2]), int(out[-1])
    assert count > 4 and scaled == 0
