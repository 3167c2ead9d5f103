"""Presenter mode (F11 / Esc), live themes remembered in QSettings, window layout memory, drops."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRect, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import QApplication, QDockWidget, QToolBar

from app.shell.theme import THEME_KEY, apply_theme
from core.lab.format import load_lab

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "labs"
RAVINE = EXAMPLES / "ravine.lab.json"


def _activate(qtbot, window) -> None:
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)  # shortcuts need the active window


def test_presenter_mode_toggles_with_f11_and_esc(qtbot, window):
    _activate(qtbot, window)
    lab_dock = window.findChild(QDockWidget, "labDock")
    normal_font = window.font().pointSizeF()
    curve = window.loss_plot.curves[0]
    normal_width = curve.opts["pen"].widthF()
    assert lab_dock.isVisible()

    qtbot.keyClick(window.landscape, Qt.Key.Key_F11)
    assert window.presenter.presenting
    assert window.isFullScreen()
    assert window.font().pointSizeF() >= normal_font * 1.5
    assert not lab_dock.isVisible()
    assert window.findChild(QToolBar, "playbackBar").isVisible()
    assert curve.opts["pen"].widthF() >= 2.5 * max(1.0, normal_width)

    qtbot.keyClick(window.landscape, Qt.Key.Key_Escape)  # Esc leaves too
    assert not window.presenter.presenting
    assert not window.isFullScreen()
    assert window.font().pointSizeF() == normal_font
    assert lab_dock.isVisible()
    assert curve.opts["pen"].widthF() == normal_width
    assert window.loss_plot.getPlotItem().titleLabel.opts["size"] == "10pt"

    qtbot.keyClick(window.landscape, Qt.Key.Key_F11)
    assert window.presenter.presenting
    qtbot.keyClick(window.landscape, Qt.Key.Key_F11)
    assert not window.presenter.presenting and lab_dock.isVisible()


def test_theme_switch_is_live_and_remembered(qtbot, window, settings):
    app = QApplication.instance()
    before = app.palette()
    try:
        window.theme_menu.actions["light"].trigger()
        assert window.theme_menu.theme == "light"
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
        assert window.loss_plot.backgroundBrush().color().lightness() > 200  # plots follow
        assert settings.value(THEME_KEY) == "light"
        window.theme_menu.actions["dark"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        assert window.loss_plot.backgroundBrush().color().lightness() < 80
        assert settings.value(THEME_KEY) == "dark"
    finally:
        apply_theme(app, "dark")
        app.setPalette(before)


def test_stored_theme_is_applied_at_start(qtbot, settings):
    from app.shell.main_window import MainWindow

    app = QApplication.instance()
    before = app.palette()
    settings.setValue(THEME_KEY, "light")
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    try:
        assert win.theme_menu.theme == "light"
        assert win.theme_menu.actions["light"].isChecked()
    finally:
        win.controller.shutdown()
        apply_theme(app, "dark")
        app.setPalette(before)


def test_geometry_and_layout_restored_from_settings(qtbot, settings):
    from app.shell.main_window import MainWindow

    first = MainWindow(settings=settings)
    first._confirm_discard = lambda: True
    qtbot.addWidget(first)
    first.show()
    first.setGeometry(QRect(10, 20, 760, 560))  # inside the offscreen screen
    first.findChild(QDockWidget, "labDock").hide()
    first.close()  # saves geometry and dock state

    second = MainWindow(settings=settings)
    second._confirm_discard = lambda: True
    qtbot.addWidget(second)
    second.show()
    assert (second.width(), second.height()) == (760, 560)
    assert not second.findChild(QDockWidget, "labDock").isVisible()
    second.controller.shutdown()
    first.controller.shutdown()


def _drop(window, path: Path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return drop


def test_dropping_a_lab_file_opens_it(qtbot, window):
    drop = _drop(window, RAVINE)
    assert drop.isAccepted()
    assert Path(window.document.path).resolve() == RAVINE.resolve()
    assert window.document.lab.name == load_lab(RAVINE).name


def test_dropping_a_bad_file_keeps_the_lab_and_says_why(qtbot, window, tmp_path):
    window.open_lab(RAVINE)
    before = window.document.lab
    bad = tmp_path / "broken.lab.json"
    bad.write_text('{"format": "descent-lab/1", "steps": -3}')
    _drop(window, bad)
    assert window.document.lab == before
    assert "problem" in window.last_error  # the usual error box, naming the field


def test_non_lab_files_are_not_accepted(qtbot, window, tmp_path):
    picture = tmp_path / "photo.png"
    picture.write_bytes(b"\x89PNG")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()
