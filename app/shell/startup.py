"""The two-phase start of the window (``launch`` in app/shell/main_window.py).

Importing torch takes seconds (``make bench`` startup measures it), and every panel of the window
imports it through the race engine (core/engine/). So the entry point starts in two phases:

1. the main window's frame, in the stored theme and layout, with `LoadingPlaceholder` ("Loading
   PyTorch…") as its central widget, is shown and painted: nothing imported so far needs torch;
2. after that first paint, `TorchLoader` imports torch and the race engine on a QThread; when it
   has finished, the window builds its panels on the GUI thread (``MainWindow.build_panels``).

Only the core modules (never Qt: docs/architecture.md) are imported off the GUI thread; the Qt
panels are imported and made on the GUI thread, as Qt requires.
"""

from __future__ import annotations

import traceback

from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtWidgets import QLabel

LOADING_TEXT = "Loading PyTorch…"


class LoadingPlaceholder(QLabel):
    """The window's central area until its panels exist; says once when it has been painted."""

    painted = Signal()  # once, after the first frame is done

    def __init__(self):
        super().__init__(LOADING_TEXT, objectName="loadingPlaceholder")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.setFont(font)
        self.painted_once = False

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(event)
        if not self.painted_once:
            self.painted_once = True
            # A zero timer: the frame this paint belongs to is finished (and flushed) first.
            QTimer.singleShot(0, self, self.painted.emit)

    def show_error(self, text: str) -> None:
        self.setText(text)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)


class TorchLoader(QThread):
    """Imports torch and the race engine off the GUI thread; ``error`` says what failed, if any.

    ``finished`` (QThread's own) reaches the window on the GUI thread, queued.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("torchLoader")
        self.error: str | None = None

    def run(self) -> None:
        try:
            import torch  # noqa: F401 - the import is the work

            # What the window's parts import at their top (app/shell/race_wiring.py, recovery.py,
            # timeline_slider.py…): the engine, its histories and the crash snapshots. No Qt.
            import core.engine.factory  # noqa: F401
            import core.engine.history  # noqa: F401
            import core.engine.snapshot  # noqa: F401
        except Exception:  # noqa: BLE001 - shown in the window instead of a silent blank
            self.error = traceback.format_exc()
