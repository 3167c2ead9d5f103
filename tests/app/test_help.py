"""The Help menu: every plot of both kinds of lab explains itself ("What is this plot?"), the
shortcuts dialog is made from the window's real actions, About names the versions."""

from __future__ import annotations

import torch
from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QAction, QEnterEvent, QKeySequence
from PySide6.QtWidgets import QApplication

from app.shell.help_menu import ShortcutsDialog, about_text, shortcut_rows
from app.shell.plot_help import PLOT_HELP, help_text, plot_widgets
from core.lab.format import default_network_lab


def _menu_texts(window, title: str) -> list[str]:
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title:
            return [a.text().replace("&", "") for a in action.menu().actions() if a.text()]
    raise AssertionError(f"no {title} menu")


def _check_plots(window) -> set[str]:
    plots = plot_widgets(window)
    assert plots
    names = set()
    for plot in plots:
        text = help_text(plot)
        name = plot.objectName() or type(plot).__name__
        assert len(text) > 100, f"{name} has no 'What is this plot?' paragraph"
        assert plot.whatsThis() == text, name  # Help ▸ What's This? then a click shows it
        names.add(name)
    return names


def test_every_plot_of_both_labs_explains_itself(window, qtbot):
    window.show()
    names = _check_plots(window)
    assert {"landscapePlot", "lossPlot", "lrPlot"} <= names
    window.document.replace(default_network_lab(), None)
    qtbot.waitUntil(lambda: window.network_view is not None
                    and bool(window.network_view.surface_view.sharpness_plot.whatsThis()))
    names = _check_plots(window)
    assert {"lossCurves", "accuracyCurves", "lrCurves", "layerStatsPlot", "confusionPlot",
            "networkDiagram", "surface3d"} <= names


def test_the_question_mark_shows_on_hover_and_opens_the_paragraph(window, qtbot):
    window.show()
    plot = window.loss_plot
    button = next(c for c in plot.children() if c.objectName() == "plotHelpButton")
    assert not button.isVisible()  # never in exported pictures
    QApplication.sendEvent(plot, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    assert button.isVisible()
    QApplication.sendEvent(plot, QEvent(QEvent.Type.Leave))
    assert not button.isVisible()
    assert PLOT_HELP["lossPlot"] == help_text(plot)


def test_help_menu_has_its_entries(window):
    texts = _menu_texts(window, "Help")
    for wanted in ("Getting started", "Keyboard shortcuts", "What's This?", "About"):
        assert any(t.startswith(wanted) for t in texts), (wanted, texts)


def test_shortcuts_dialog_is_generated_from_the_actions(window, qtbot):
    rows = shortcut_rows(window)
    assert ("Play", "Space", "Race") in rows
    assert any(r[0] == "Open" and r[2] == "File" for r in rows)
    assert not any(r[0] == "Frobnicate" for r in rows)
    extra = QAction("&Frobnicate…", window)
    extra.setShortcut(QKeySequence("Ctrl+Alt+K"))
    window.addAction(extra)
    window.menuBar().actions()[-1].menu().addAction(extra)  # in Help
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    keys = QKeySequence("Ctrl+Alt+K").toString(QKeySequence.SequenceFormat.NativeText)
    assert ("Frobnicate", keys, "Help") in dialog.rows()
    assert len(dialog.rows()) == len(rows) + 1


def test_about_names_the_versions_and_the_device():
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    text = about_text()
    for part in (torch.__version__, qVersion(), pyside_version, "Descent Lab"):
        assert part in text
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    assert device in text
