"""The window on a small laptop (1366×768) shows every part whole, and presenter mode's larger
title never runs under the map's key (app/export/screenshot_sizes.py takes these screens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.test_window_ease import _fully_shown as fully_shown

ROOT = Path(__file__).resolve().parents[2]
BANANA = ROOT / "resources" / "labs" / "banana_race.lab.json"
MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def _whole(widget) -> bool:
    """Shown whole (tests/app/test_window_ease.py's check) and not collapsed to a sliver."""
    return fully_shown(widget) and widget.width() >= 40 and widget.height() >= 20


def _show(qtbot, window, lab, size=(1366, 768)):
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_lab(lab)
    qtbot.wait(20)
    assert window.width() <= size[0] and window.height() <= size[1]


def test_at_1366_by_768_the_arena_shows_every_part_whole(qtbot, window):
    _show(qtbot, window, BANANA)
    for name, widget in (("form", window.problem_panel), ("runs", window.runs_panel.table),
                         ("map", window.landscape), ("loss", window.loss_plot),
                         ("lr", window.lr_plot), ("status bar", window.statusBar()),
                         ("speed", window.speed_combo)):
        assert _whole(widget), name
    # The map is drawn to scale and keeps a useful size.
    assert window.landscape.width() >= 400 and window.landscape.height() >= 400


def test_at_1366_by_768_the_network_overview_shows_data_network_and_output(qtbot, window):
    _show(qtbot, window, MOONS)
    overview = window.network_view.overview
    assert window.network_view.tabs.currentWidget() is overview
    for name, widget in (("data", overview.data_plot), ("network", overview.diagram),
                         ("output", overview.output_plot), ("run", overview.run_combo),
                         ("status bar", window.statusBar())):
        assert _whole(widget), name
    assert overview.diagram.height() >= 400


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_presenter_mode_title_stays_above_the_maps_key(qtbot, window, size):
    _show(qtbot, window, BANANA, size)
    window.presenter.set_presenter(True)
    window.showNormal()  # the offscreen screen is 800×800: lay out at the size asked for
    window.resize(*size)
    qtbot.wait(50)
    plot = window.landscape.plotItem
    title = plot.titleLabel
    text = title.item.mapRectToScene(title.item.boundingRect())
    key = window.landscape.legend.mapRectToScene(window.landscape.legend.boundingRect())
    # Both lines of the title (the formula under the name) end above the key's first row,
    # and the title row is tall enough to hold them.
    assert text.bottom() <= key.top() + 1, (text, key)
    assert title.item.boundingRect().height() <= title.geometry().height() + 1
    window.presenter.set_presenter(False)


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_the_runs_table_shows_every_run_where_the_column_has_room(qtbot, window, size):
    """Six runs: no scroll bar over a blank band; the editor keeps its room below."""
    from app.runs.runs_panel import EDITOR_KEEPS

    _show(qtbot, window, BANANA, size)
    table = window.runs_panel.table
    assert table.rowCount() == 6
    assert not table.verticalScrollBar().isVisible()
    last = table.visualItemRect(table.item(5, 2))
    assert table.viewport().rect().contains(last)
    assert window.runs_panel.splitter.sizes()[1] >= EDITOR_KEEPS
