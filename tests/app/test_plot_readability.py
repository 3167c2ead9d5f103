"""Plots a first-time user can read: plain axis numbers (no pyqtgraph "(x0.001)" factor in a
label), on every plot the window and its tool windows make."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg

from app.tools.tool_windows import open_tool_window

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
    for kind in ("lr_finder", "sweep"):
        tool = open_tool_window(window, kind)
        _assert_plain(_axes(tool))
        tool.close()
