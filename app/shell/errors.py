"""How a window tells the user that background work failed: one dialog, the traceback to copy.

A user's mistake (a `LabError`) arrives as one line and is shown where the window shows its
messages; an unexpected exception arrives as a traceback, and then the user also gets a non-modal
dialog whose "Show Details…" holds the whole traceback to copy into a bug report. The window
stays usable either way.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def last_line(details: str) -> str:
    """The line of a traceback that says what went wrong (the whole text if it is one line)."""
    lines = details.strip().splitlines()
    return lines[-1] if lines else "unknown error"


def is_traceback(details: str) -> bool:
    return details.lstrip().startswith("Traceback")


def show_failure(parent: QWidget, title: str, summary: str, details: str,
                 advice: str = "") -> QMessageBox:
    """A non-modal error box: ``summary`` and the error's last line, the traceback as details."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, summary, parent=parent)
    box.setInformativeText("\n".join(t for t in (last_line(details), advice) if t))
    box.setDetailedText(details)
    box.setModal(False)
    box.show()
    return box
