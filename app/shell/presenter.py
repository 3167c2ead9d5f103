"""Presenter mode: View ▸ Presenter mode, F11; F11 or Esc leaves.

Full screen, fonts ×1.6 (the widgets', and in every plot the titles, tick labels, axis labels
and keys), plot lines 2.5 times thicker, the editing chrome hidden (every dock except the
lesson, every toolbar except playback). Leaving restores exactly what was there: window
state and geometry, the docks and toolbars that were visible, fonts and pens. The theme menu lives
in app/shell/theme_menu.py, the window's remembered layout and lab drops in app/shell/window_state.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import QByteArray, QObject, Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import QDockWidget, QToolBar

from app.shell.menus import view_menu

PRESENTER_FONT_SCALE = 1.6
PRESENTER_PEN_SCALE = 2.5
# Docks that are content rather than editing chrome: they stay in presenter mode.
PRESENTER_KEEPS_DOCKS = ("lessonDock",)
PRESENTER_KEEPS_TOOLBARS = ("playbackBar",)


@dataclass
class _Saved:
    """What presenter mode changed, to put back on leaving."""

    window_state: Qt.WindowState
    geometry: QByteArray
    hidden: list = field(default_factory=list)  # docks and toolbars presenter mode hid
    font: QFont | None = None
    pens: list = field(default_factory=list)  # (item, its pen before)
    axis_fonts: list = field(default_factory=list)  # (axis, its tick font before or None)
    label_styles: list = field(default_factory=list)  # (axis, its label style before)
    titles: list = field(default_factory=list)  # (title LabelItem, its size before)
    legends: list = field(default_factory=list)  # (LegendItem, its label text size before)


class PresenterMode(QObject):
    """Presenter mode of one window: its actions (F11, Esc) and entering / leaving it."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._saved: _Saved | None = None
        self._build_actions()
        # A new lab rebuilds the plot items: give the new ones presenter pens too.
        window.document.lab_changed.connect(self._on_lab_changed)
        # Play after a finished race rebuilds the curves too (the views are reset first).
        window.controller.state_changed.connect(self._on_lab_changed)

    def _build_actions(self) -> None:
        w = self.window
        self.presenter_action = QAction("&Presenter mode", w, checkable=True)
        self.presenter_action.setShortcut(QKeySequence(Qt.Key.Key_F11))
        self.presenter_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = "Full screen, large fonts and thick lines, editing panels hidden (F11 / Esc leaves)"
        self.presenter_action.setToolTip(tip)
        self.presenter_action.setStatusTip(tip)
        self.presenter_action.toggled.connect(self.set_presenter)
        w.addAction(self.presenter_action)
        # Esc leaves presenter mode; it is only bound while presenting, so Esc stays free
        # for dialogs and editors otherwise.
        self.leave_action = QAction("Leave presenter mode", w)
        self.leave_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.leave_action.triggered.connect(lambda: self.set_presenter(False))
        w.addAction(self.leave_action)
        menu = view_menu(w)
        # The 2-D map's scale toggle (app/arena/function_map.py) lives in View too.
        landscape = getattr(w, "landscape", None)
        if landscape is not None:
            menu.addAction(landscape.aspect_action)
        menu.addAction(self.presenter_action)

    @property
    def presenting(self) -> bool:
        return self._saved is not None

    def set_presenter(self, on: bool) -> None:
        if on == self.presenting:
            self.presenter_action.setChecked(on)
            return
        if on:
            self._enter()
        else:
            self._leave()
        self.presenter_action.blockSignals(True)
        self.presenter_action.setChecked(on)
        self.presenter_action.blockSignals(False)

    def _enter(self) -> None:
        w = self.window
        saved = _Saved(window_state=w.windowState(), geometry=w.saveGeometry())
        for dock in w.findChildren(QDockWidget):
            if dock.isVisible() and dock.objectName() not in PRESENTER_KEEPS_DOCKS:
                saved.hidden.append(dock)
        for bar in w.findChildren(QToolBar):
            if bar.isVisible() and bar.objectName() not in PRESENTER_KEEPS_TOOLBARS:
                saved.hidden.append(bar)
        for widget in saved.hidden:
            widget.hide()
        saved.font = QFont(w.font())
        big = QFont(w.font())
        big.setPointSizeF(max(1.0, w.font().pointSizeF()) * PRESENTER_FONT_SCALE)
        w.setFont(big)
        self._saved = saved
        self._thicken()
        self._scale_own_texts(PRESENTER_FONT_SCALE)
        self.leave_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        w.showFullScreen()

    def _leave(self) -> None:
        w, saved = self.window, self._saved
        self._saved = None
        self.leave_action.setShortcut(QKeySequence())
        for item, pen in saved.pens:
            try:
                item.setPen(pen)
            except RuntimeError:  # the item was deleted with an old lab
                pass
        for axis, font in saved.axis_fonts:
            try:
                axis.setStyle(tickFont=font)
            except RuntimeError:
                pass
        for axis, style in saved.label_styles:
            try:
                axis.labelStyle = style
                axis._updateLabel()
            except RuntimeError:
                pass
        for title, size in saved.titles:
            try:
                if size is None:
                    title.opts.pop("size", None)
                    title.setText(title.text)
                else:
                    title.setText(title.text, size=size)
            except RuntimeError:
                pass
        for legend, size in saved.legends:
            try:
                _size_legend(legend, size)
            except RuntimeError:
                pass
        self._scale_own_texts(1.0)
        w.setFont(saved.font)
        for widget in saved.hidden:
            widget.show()
        w.setWindowState(saved.window_state)
        if not saved.window_state & (Qt.WindowState.WindowFullScreen | Qt.WindowState.WindowMaximized):
            w.restoreGeometry(saved.geometry)

    def _thicken(self) -> None:
        """Thicker curves and larger axis fonts in every plot of the window (remembered)."""
        saved = self._saved
        done = {id(item) for item, _pen in saved.pens}
        axes_done = {id(axis) for axis, _font in saved.axis_fonts}
        titles_done = {id(title) for title, _size in saved.titles}
        legends_done = {id(legend) for legend, _size in saved.legends}
        size = max(1.0, self.window.font().pointSizeF())
        title_size = f"{size * 0.9:.0f}pt"
        for view in self.window.findChildren(pg.GraphicsView):
            for item in view.scene().items():
                if isinstance(item, pg.PlotCurveItem) and id(item) not in done:
                    pen = pg.mkPen(item.opts["pen"])
                    saved.pens.append((item, pg.mkPen(pen)))
                    pen.setWidthF(max(1.0, pen.widthF()) * PRESENTER_PEN_SCALE)
                    item.setPen(pen)
                elif isinstance(item, pg.AxisItem) and id(item) not in axes_done:
                    saved.axis_fonts.append((item, item.style.get("tickFont")))
                    font = QFont(self.window.font())
                    font.setPointSizeF(size * 0.8)
                    item.setStyle(tickFont=font)
                    saved.label_styles.append((item, dict(item.labelStyle)))
                    item.labelStyle = {**item.labelStyle, "font-size": f"{size * 0.8:.0f}pt"}
                    item._updateLabel()  # pyqtgraph's own re-render of the label text
                elif isinstance(item, pg.LegendItem) and not getattr(item, "own_text_size",
                                                                     False):
                    # Every key: its labels now and the entries it gets later (a new lab,
                    # the smoothing slider, the internals overlay's compact form).
                    if id(item) not in legends_done:
                        saved.legends.append((item, item.opts.get("labelTextSize", "9pt")))
                        legends_done.add(id(item))
                    _size_legend(item, f"{size * LEGEND_SCALE:.1f}pt")
                elif (isinstance(item, pg.LabelItem) and item.text
                      and not isinstance(item.parentItem(), pg.LegendItem)):
                    # Again for a title seen before: a new lab re-sets titles at their size.
                    if id(item) not in titles_done:
                        saved.titles.append((item, item.opts.get("size")))
                        titles_done.add(id(item))
                    if item.opts.get("size") != title_size:
                        item.setText(item.text, size=title_size)

    def _scale_own_texts(self, scale: float) -> None:
        """Texts that size themselves: the internals overlay's key on the map."""
        landscape = getattr(self.window, "landscape", None)
        if landscape is not None:
            landscape.internals.set_text_scale(scale)

    def _on_lab_changed(self, _lab) -> None:
        if self.presenting:
            self._thicken()


# A key's labels in presenter mode: this share of the window's (enlarged) font.
LEGEND_SCALE = 0.8


def _size_legend(legend: pg.LegendItem, size: str) -> None:
    """``legend``'s labels, and those it is given later, at text ``size`` ("12.8pt")."""
    legend.opts["labelTextSize"] = size
    for _sample, label in legend.items:
        if label.opts.get("size") != size:
            label.setText(label.text, size=size)
    legend.updateSize()
