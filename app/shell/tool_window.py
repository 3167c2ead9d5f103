"""What the Tools-menu windows (LR range test, sweep, fair race) share.

Each is a top-level window over the main window's `LabDocument`: Ctrl+Z / Ctrl+Shift+Z undo and
redo the main lab's edits from here too, a red line says what is wrong with the settings, Start
(Ctrl+Enter) and Cancel buttons drive its worker thread, and closing the window stops that
thread (``shutdown``, which each window defines for its own threads). It closes like any window:
a Close button in its bottom corner, File ▸ Close (Ctrl+W), and Esc, which first cancels a
running task (Esc on a busy window stops the work; a second Esc closes it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QWidget

from app.shell.controller import CallbackTask
from app.shell.document import LabDocument
from app.shell.errors import is_traceback, last_line, show_failure

ERROR_STYLE = "color: #ff6b6b;"


def add_undo_actions(window: QMainWindow, document: LabDocument) -> None:
    """Ctrl+Z / Ctrl+Shift+Z in a tool window undo and redo the main lab's edits."""
    undo = document.undo_stack.createUndoAction(window, "&Undo")
    undo.setShortcut(QKeySequence.StandardKey.Undo)
    redo = document.undo_stack.createRedoAction(window, "&Redo")
    redo.setShortcut(QKeySequence("Ctrl+Shift+Z"))
    for action in (undo, redo):
        window.addAction(action)
    menu = window.menuBar().addMenu("&Edit")
    menu.addAction(undo)
    menu.addAction(redo)


class ToolWindow(QMainWindow):
    """A window of the Tools menu; subclasses build their widgets and define ``shutdown``."""

    def __init__(self, document: LabDocument, parent: QWidget | None, object_name: str,
                 title: str):
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName(object_name)
        self.setWindowTitle(f"{title} — Descent Lab")
        self.document = document
        self._add_close_actions()
        add_undo_actions(self, document)

    def _add_close_actions(self) -> None:
        """File ▸ Close (Ctrl+W), Esc (cancel a running task, else close), a Close button."""
        self.close_action = QAction("&Close", self)
        self.close_action.setShortcut(QKeySequence("Ctrl+W"))
        self.close_action.triggered.connect(self.close)
        escape = QAction("Cancel or close", self)
        escape.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        escape.triggered.connect(self._escape)
        for action in (self.close_action, escape):
            self.addAction(action)
        self.menuBar().addMenu("&File").addAction(self.close_action)
        self.close_button = QPushButton("Close", objectName="toolCloseButton")
        self.close_button.setToolTip("Close this window (Ctrl+W, Esc); its work stops")
        self.close_button.clicked.connect(self.close)
        self.statusBar().addPermanentWidget(self.close_button)
        self.statusBar().setSizeGripEnabled(False)

    def _escape(self) -> None:
        cancel = getattr(self, "cancel_button", None)
        if cancel is not None and cancel.isEnabled():
            cancel.click()  # the work first: a slip of the key costs no window
        else:
            self.close()

    def _callback_task(self) -> CallbackTask:
        """A task whose signals go to this window's ``_on_progress`` / ``_on_done`` /
        ``_on_failed``; the buttons follow when its thread ends."""
        task = CallbackTask(self)
        task.progress.connect(self._on_progress)
        task.done.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.stopped.connect(self._update_buttons)
        return task

    def _make_run_buttons(self, prefix: str, start_text: str, start_tip: str,
                          cancel_tip: str) -> None:
        """``start_button`` (Ctrl+Enter: ``start``) and ``cancel_button`` (also Esc, through
        `_escape`, while it is enabled)."""
        self.start_button = QPushButton(start_text, objectName=f"{prefix}StartButton")
        self.start_button.setToolTip(f"{start_tip} (Ctrl+Enter)")
        self.start_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", objectName=f"{prefix}CancelButton")
        self.cancel_button.setToolTip(f"{cancel_tip} (Esc)")
        self.cancel_button.clicked.connect(self.cancel)

    def _make_error_label(self, object_name: str, tip: str) -> None:
        """``error_label``: hidden until `_show_error` has something to say."""
        self.error_label = QLabel(objectName=object_name)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        self.error_label.setToolTip(tip)
        self.error_label.hide()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _report_failure(self, what: str, details: str) -> None:
        """A failed task: its last line under the form; a traceback also in a dialog to copy."""
        self._show_error(f"{what}: {last_line(details)}")
        if is_traceback(details):
            self.failure_box = show_failure(self, self.windowTitle(), f"{what}.", details,
                                            "You can change the settings and start again.")

    def shutdown(self) -> None:
        raise NotImplementedError

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        self._update_buttons()
        super().closeEvent(event)
