"""The open lab as a document: the current `Lab`, its file, its dirty state and its undo stack.

Every edit from any panel arrives as a whole new (frozen) `Lab` plus a description; the document
pushes it onto a QUndoStack, so every edit is undoable with Ctrl+Z and views simply re-read the lab
on ``lab_changed``. Panels never keep a private copy as the truth.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.lab.format import Lab, load_lab, save_lab


class _ReplaceLab(QUndoCommand):
    def __init__(self, document: LabDocument, before: Lab, after: Lab, text: str):
        super().__init__(text)
        self._document, self._before, self._after = document, before, after

    def redo(self) -> None:
        self._document._apply(self._after)

    def undo(self) -> None:
        self._document._apply(self._before)


class LabDocument(QObject):
    lab_changed = Signal(object)  # the new Lab
    path_changed = Signal(str)  # "" for an unsaved lab

    def __init__(self, lab: Lab, parent: QObject | None = None):
        super().__init__(parent)
        self.lab = lab
        self.path: Path | None = None
        self.undo_stack = QUndoStack(self)

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def edit(self, lab: Lab, description: str) -> None:
        """Replace the lab with an undoable step (no-op when nothing changed)."""
        if lab == self.lab:
            return
        self.undo_stack.push(_ReplaceLab(self, self.lab, lab, description))

    def _apply(self, lab: Lab) -> None:
        self.lab = lab
        self.lab_changed.emit(lab)

    def replace(self, lab: Lab, path: Path | None) -> None:
        """A new document (New / Open): clears undo history."""
        self.undo_stack.clear()
        self.path = path
        self._apply(lab)
        self.undo_stack.setClean()
        self.path_changed.emit(str(path) if path else "")

    def open(self, path: str | Path, consent=None) -> None:
        """Load a lab file; raises `LabError` (and changes nothing) when it is bad. ``consent``
        is asked before user code the lab names runs (core/lab/code.py)."""
        lab = load_lab(path, consent=consent)
        self.replace(lab, Path(path))

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no file name")
        save_lab(self.lab, target)
        self.path = target
        self.undo_stack.setClean()
        self.path_changed.emit(str(target))
        return target
