"""The mouse wheel scrolls panels; it changes a value only in the editor the user is working in.

Qt lets a spin box, combo box or slider take every wheel notch that passes over it, and gives a
spin box or combo box the keyboard focus on the wheel. Scrolling the left panel over a batch-size
box then silently changes a hyperparameter (found only in the Undo menu). One guard, installed on
the application by every main window, covers every editor of every panel, including those
built later (a hyperparameter form rebuilt for another optimizer, a layer row added):

* when a widget is polished, an editor inside a scrolling area that would take the focus on
  the wheel gets `Qt.StrongFocus` instead (click or Tab still focus it);
* a wheel event over such an editor without the focus is refused: Qt then offers it to the
  editor's parents, so the panel (or table) around it scrolls. A focused editor — clicked, or
  reached with Tab — takes the wheel as before.

Only editors inside a scrolling area (a panel, a table) are guarded: that is where the wheel is
meant for scrolling and an editor passing under the pointer changes a value by accident. An
editor outside one (the toolbar's speed box and timeline slider, a plot's smoothing slider) has
nothing to scroll, so the wheel there is the user asking for that editor.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QScrollBar,
)

EDITORS = (QAbstractSpinBox, QComboBox, QAbstractSlider)
_WHEEL, _POLISH = QEvent.Type.Wheel, QEvent.Type.Polish


def _guarded(widget: QObject) -> bool:
    """An editor (not a scroll bar) with a scrolling area among its parents."""
    if not isinstance(widget, EDITORS) or isinstance(widget, QScrollBar):
        return False
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return True
        parent = parent.parentWidget()
    return False


class WheelGuard(QObject):
    """Application event filter; see the module docstring."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if kind == _POLISH:
            if _guarded(watched) and watched.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        elif kind == _WHEEL and _guarded(watched) and not watched.hasFocus():
            event.ignore()  # filtered and not accepted: Qt offers it to the parent widgets
            return True
        return False


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the guard on ``app`` once (later calls return the same one)."""
    guard = app.findChild(WheelGuard)
    if guard is None:
        guard = WheelGuard(app)
        app.installEventFilter(guard)
    return guard
