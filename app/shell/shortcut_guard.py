"""The window's shortcuts keep working while a number box or a text field has the focus.

Qt asks the focused widget first (a ShortcutOverride event) whether it wants a key for itself,
and a spin box or line edit says yes to Space (it types a space) and to many Ctrl keys (Ctrl+E
moves to the end of the line, the emacs way). So with the cursor in an lr box Space did not play,
and Ctrl+E (Export) and Ctrl+I (Optimizer internals) did nothing. One application event filter,
installed by every main window, settles it:

* in a number box (a spin box of any panel) Space plays / pauses: a number has no spaces;
* in any number box or text field a Ctrl (or Ctrl+Shift) key that is a shortcut of one of the
  window's actions triggers the action, except the keys a text field is for (undo and redo of
  the text, copy, cut, paste, select all, delete a word);
* in a free-text field (a run's label, an expression) Space stays a space: the status line's
  "Press Space" says so (app/shell/race_wiring.py).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

_TEXT_KEYS = (
    QKeySequence.StandardKey.Undo, QKeySequence.StandardKey.Redo, QKeySequence.StandardKey.Copy,
    QKeySequence.StandardKey.Cut, QKeySequence.StandardKey.Paste,
    QKeySequence.StandardKey.SelectAll, QKeySequence.StandardKey.DeleteStartOfWord,
    QKeySequence.StandardKey.DeleteEndOfWord,
)
_CTRL = Qt.KeyboardModifier.ControlModifier


def _number_box(widget: QObject) -> bool:
    return isinstance(widget, QAbstractSpinBox) or isinstance(widget.parent(), QAbstractSpinBox)


def _text_field(widget: QObject) -> bool:
    return _number_box(widget) or isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit))


def _text_keys() -> set[QKeySequence]:
    keys = {QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")}
    for standard in _TEXT_KEYS:
        keys.update(QKeySequence.keyBindings(standard))
    return keys


class ShortcutGuard(QObject):
    """Application event filter; see the module docstring."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._text_keys = _text_keys()

    def _window_action(self, widget: QWidget, pressed: QKeySequence):
        """The enabled action of the main window around ``widget`` whose shortcut is ``pressed``."""
        window = widget.window()
        if not hasattr(window, "play_action"):  # only the main window (app/shell/main_window.py)
            return None
        for action in window.actions():
            if action.isEnabled() and pressed in action.shortcuts():
                return action
        return None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(watched, QWidget):
            return False
        if not _text_field(watched):
            return False
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        pressed = QKeySequence(event.keyCombination())
        if event.key() == Qt.Key.Key_Space and modifiers == Qt.KeyboardModifier.NoModifier:
            wanted = _number_box(watched)
        else:
            wanted = bool(modifiers & _CTRL) and pressed not in self._text_keys
        if wanted and self._window_action(watched, pressed) is not None:
            event.ignore()  # the widget does not claim the key: the window's shortcut fires
            return True
        return False


def install_shortcut_guard(app: QApplication) -> ShortcutGuard:
    """Install the guard on ``app`` once (later calls return the same one)."""
    guard = app.findChild(ShortcutGuard)
    if guard is None:
        guard = ShortcutGuard(app)
        app.installEventFilter(guard)
    return guard
