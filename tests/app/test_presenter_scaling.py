"""Presenter mode scales every text of the plots, not only the widgets: the map's title and
formula, every key (the map's, the loss plot's, the internals overlay's), the internals readout;
log-axis tick labels thin themselves instead of piling up at the larger size."""

from __future__ import annotations

import re
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QFontInfo, QImage, QPainter

from app.shell.presenter import PRESENTER_FONT_SCALE

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"
MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def _pt(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"font-size:\s*([\d.]+)pt", text)]


def _title_sizes(label) -> list[float]:
    """[title, formula] sizes of the map's two-line title (pt)."""
    spans = _pt(label.text)
    if len(spans) == 1:  # the title at the label's own size, the formula in a span
        spans = _pt(f"font-size:{label.opts['size']}") + spans
    return spans


def _key_sizes(legend) -> list[float]:
    return [float(str(label.opts.get("size", "0pt")).removesuffix("pt"))
            for _sample, label in legend.items]


def _tick_rects(axis: pg.AxisItem):
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        return [rect for rect, _flags, _text in axis.generateDrawSpecs(painter)[2]]
    finally:
        painter.end()


def test_presenter_mode_scales_titles_keys_readout_and_thins_log_ticks(qtbot, window):
    assert window.open_lab(RAVINE)
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    window.internals_action.trigger()
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step >= 1, timeout=10_000)
    window.flush_redraw()
    landscape, loss = window.landscape, window.loss_plot
    title_before = _title_sizes(landscape.plotItem.titleLabel)
    map_key_before = _key_sizes(landscape.legend)
    loss_key_before = _key_sizes(loss.legend)
    overlay_before = float(landscape.internals.legend.opts["labelTextSize"].removesuffix("pt"))
    readout = window.internals_panel.readout
    readout_before = QFontInfo(readout.font()).pointSizeF()
    assert len(title_before) == 2 and map_key_before and loss_key_before

    window.presenter.set_presenter(True)
    qtbot.wait(50)
    # Presenter mode hides the editing docks; the internals come back with Ctrl+I.
    assert window.internals_dock.isHidden()
    window.internals_action.trigger()
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step >= 2, timeout=10_000)
    window.flush_redraw()
    qtbot.wait(50)
    grown = 0.9 * PRESENTER_FONT_SCALE  # at least this much larger (sizes are rounded)
    title = _title_sizes(landscape.plotItem.titleLabel)
    assert all(a >= grown * b for a, b in zip(title, title_before)), (title, title_before)
    assert min(_key_sizes(landscape.legend)) >= grown * max(map_key_before) * 0.8
    assert min(_key_sizes(loss.legend)) >= grown * max(loss_key_before) * 0.8
    overlay = float(landscape.internals.legend.opts["labelTextSize"].removesuffix("pt"))
    assert overlay >= grown * overlay_before
    assert QFontInfo(readout.font()).pointSizeF() >= grown * readout_before
    # The log axis of the loss plot, short and in large type: its labels do not overlap.
    loss.resize(loss.width(), 260)
    loss.plotItem.vb.setYRange(0.2, 0.98)  # log10 of 1.6 … 9.5: a decade of minor ticks
    qtbot.wait(20)
    rects = _tick_rects(loss.plotItem.getAxis("left"))
    assert len(rects) >= 2
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)

    # A network lab opened while presenting: its titles and keys are large too.
    assert window.open_lab(MOONS)
    qtbot.wait(50)
    curves = window.network_view.curves
    size = window.font().pointSizeF()
    assert min(_key_sizes(curves.loss_plot.legend)) >= 0.7 * size
    assert _pt(f"font-size:{curves.accuracy_plot.plotItem.titleLabel.opts['size']}") == [
        round(size * 0.9)]

    window.presenter.set_presenter(False)
    assert window.open_lab(RAVINE)
    qtbot.wait(50)
    assert _title_sizes(window.landscape.plotItem.titleLabel) == title_before
    assert QFontInfo(readout.font()).pointSizeF() == readout_before
