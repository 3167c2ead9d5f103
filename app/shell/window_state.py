"""What the main window remembers and accepts: its layout between sessions, and dropped lab files.

* `LayoutMemory`: geometry and dock / toolbar state saved on close and restored at start (QSettings).
* `LabDrops`: drop a ``*.lab.json`` / ``*.json`` file on the window to open it, through the window's
  own `open_lab_after_asking` (a bad file shows the usual error and the current lab stays).

Both watch the window with an event filter, so `MainWindow` needs no overrides.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject

GEOMETRY_KEY = "window/geometry"
STATE_KEY = "window/state"
LAB_SUFFIXES = (".json",)  # *.lab.json included


class LayoutMemory(QObject):
    """Saves the window's layout when it closes and restores it when made."""

    def __init__(self, window, presenter):
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self.presenter = presenter  # app/shell/presenter.py: the layout saved is never its own
        self.restore_layout()
        window.installEventFilter(self)

    def save_layout(self) -> None:
        if self.presenter.presenting:
            self.presenter.set_presenter(False)  # remember the normal layout, not the presenter's
        self.settings.setValue(GEOMETRY_KEY, self.window.saveGeometry())
        self.settings.setValue(STATE_KEY, self.window.saveState())

    def restore_layout(self) -> bool:
        geometry = self.settings.value(GEOMETRY_KEY)
        state = self.settings.value(STATE_KEY)
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = self.window.restoreGeometry(geometry)
        if isinstance(state, QByteArray) and not state.isEmpty():
            restored = self.window.restoreState(state) or restored
        return restored

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.save_layout()
        return super().eventFilter(watched, event)


class LabDrops(QObject):
    """Opens a lab file dropped on the window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.window:
            kind = event.type()
            if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
                if self.dropped_lab(event.mimeData()) is not None:
                    event.acceptProposedAction()
                    return True
            elif kind == QEvent.Type.Drop:
                path = self.dropped_lab(event.mimeData())
                if path is not None:
                    event.acceptProposedAction()
                    self.open_dropped(path)
                    return True
        return super().eventFilter(watched, event)

    @staticmethod
    def dropped_lab(mime) -> Path | None:
        """The first local lab-like file (``*.json``) among the dropped URLs, or None."""
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(LAB_SUFFIXES):
                return Path(url.toLocalFile())
        return None

    def open_dropped(self, path: Path) -> bool:
        return self.window.open_lab_after_asking(path)
