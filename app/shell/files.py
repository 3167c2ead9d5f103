"""The main window's file actions: new, open, save, save as, recent files, examples and drops,
the window title, and restoring the lab a crashed session left (app/shell/recovery.py).

Every action that would replace the lab asks about unsaved edits through one path, the window's
`_confirm_discard` (tests replace it on the window, so it is always called through the window).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.shell.user_folders import LAST_DIR_KEY, remember_dir, start_dir
from core.errors import LabError
from core.lab.code import code_changes
from core.lab.format import Lab, default_lab, default_network_lab, default_rl_lab
from core.optim.user_code import CodeNotTrusted
from core.user_data import is_bundled

APP_NAME = "Descent Lab"
MAX_RECENT = 8


class FileActions(QObject):
    """What File ▸ New / Open / Save / Recent / Examples do, for one `MainWindow`.

    A child of the window made before its document: its connections go before the document's
    undo stack is deleted (a title update then would read a deleted stack)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window

    @property
    def document(self):
        return self.window.document

    @property
    def settings(self):
        return self.window.settings

    def confirm_discard(self) -> bool:
        """Ask before throwing away unsaved edits."""
        if not self.document.is_dirty():
            return True
        answer = QMessageBox.question(
            self.window,
            APP_NAME,
            "The lab has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_lab(self) -> None:
        if self.window._confirm_discard():
            self.document.replace(default_lab(), None)

    def new_network_lab(self) -> None:
        if self.window._confirm_discard():
            self.document.replace(default_network_lab(), None)

    def new_rl_lab(self) -> None:
        if self.window._confirm_discard():
            self.document.replace(default_rl_lab(), None)

    def open_dialog(self) -> None:
        if not self.window._confirm_discard():
            return
        start = start_dir(self.settings, LAST_DIR_KEY)
        path, _ = QFileDialog.getOpenFileName(self.window, "Open lab", start,
                                              "Lab files (*.lab.json *.json)")
        if path:
            self.open_lab(path)

    def open_lab(self, path: str | Path) -> bool:
        """Open a lab file; a bad file is refused with its message and nothing is lost. A lab
        that names the user's own code asks before it runs (app/shell/user_code_wiring.py);
        declined, the lab is not opened."""
        consent = self.window.user_code.consent
        consent.where = f"The lab {Path(path).name}"
        try:
            self.document.open(path, consent=consent)
        except CodeNotTrusted as exc:
            self.window.status_label.setText(
                f"Did not open {Path(path).name}: you chose not to run its code.")
            self.error(f"Did not open {Path(path).name}",
                       f"{exc.message.split(';')[0]}. You chose not to run it, so nothing in it "
                       "ran and the lab was not opened.")
            return False
        except LabError as exc:
            self.window.status_label.setText(f"Could not open {Path(path).name}.")
            self.error(f"Could not open {Path(path).name}", str(exc))
            return False
        self.remember(path)
        changes = code_changes(self.document.lab)
        self.window.status_label.setText(
            f"Opened {path}." + (" Code changed since the lab was saved: " + "; ".join(changes)
                                 if changes else ""))
        return True

    def open_lab_after_asking(self, path: str | Path) -> bool:
        """Open a lab in place of this one (Recent, Examples, a drop): unsaved edits are asked
        about first, with the same question as New and Open; Cancel keeps the lab and its undo."""
        return self.window._confirm_discard() and self.open_lab(path)

    def save(self) -> bool:
        # An example shipped with the app is never overwritten: Save asks where, like a new lab.
        if self.document.path is None or is_bundled(self.document.path):
            return self.save_as()
        return self.save_to(self.document.path)

    def save_as(self) -> bool:
        start = start_dir(self.settings, LAST_DIR_KEY)
        name = self.document.lab.name.replace(" ", "_").lower() or "lab"
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save lab", str(Path(start) / f"{name}.lab.json"), "Lab files (*.lab.json)"
        )
        return bool(path) and self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        try:
            self.document.save(path)
        except OSError as exc:
            self.error("Could not save", f"{path}: {exc.strerror or exc}")
            return False
        self.remember(path)
        self.window.status_label.setText(f"Saved {path}.")
        return True

    def remember(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent() if p != path]
        self.settings.setValue("recent_files", [path, *recent][:MAX_RECENT])
        remember_dir(self.settings, LAST_DIR_KEY, Path(path).parent)
        self.refresh_recent_menu()

    def recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def refresh_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        recent = self.recent()
        for path in recent:
            act = menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.window.open_lab_after_asking(p))
        menu.setEnabled(bool(recent))

    def error(self, title: str, text: str) -> None:
        """A warning that does not block the window; its text stays in `window.last_error`."""
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, title, parent=self.window)
        box.setInformativeText(text)
        box.setModal(False)
        box.show()
        self.window.last_error = text

    def update_title(self, *_args) -> None:
        path = self.document.path
        name = path.name if path else self.document.lab.name
        dirty = "*" if self.document.is_dirty() else ""
        self.window.setWindowTitle(f"{name}{dirty} — {APP_NAME}")

    # -- crash recovery --------------------------------------------------------------------

    def save_recovery(self, *_args) -> None:
        self.window.recovery.save(self.document.lab, self.document.path, self.document.is_dirty())

    def ask_restore(self, source: Path | None, dirty: bool) -> bool:
        """Ask whether to restore the lab a crashed session left."""
        name = source.name if source else "an unsaved lab"
        detail = " with unsaved changes" if dirty else ""
        answer = QMessageBox.question(
            self.window, APP_NAME,
            f"Descent Lab did not close cleanly last time. Restore {name}{detail}?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def offer_recovery(self) -> bool:
        """At startup: restore the lab left by a session that crashed, if the user wants it.
        Only a lab with something unsaved is offered (app/shell/recovery.py, `RecoveryStore.unsaved`)."""
        # A lab that names the user's own code asks before it runs, as Open does.
        consent = self.window.user_code.consent
        consent.where = "The lab left by the session that did not close cleanly"
        found = self.window.recovery.unsaved(consent)
        if found is None:
            self.save_recovery()
            return False
        lab, source, dirty = found
        if not self.window._ask_restore(source, dirty):
            self.save_recovery()
            return False
        self.document.replace(lab, source)
        if dirty:
            # Restored edits are not on disk yet: mark them unsaved.
            self.document.undo_stack.resetClean()
            self.update_title()
        restored = f"Restored {source.name if source else 'the unsaved lab'}"
        if self._show_restored_results(lab):
            restored += " and its finished race"
        self.window.status_label.setText(restored + ".")
        return True

    def _show_restored_results(self, lab: Lab) -> bool:
        """Show the race that had finished before the crash, as it ended (no re-run)."""
        from types import SimpleNamespace

        race = self.window.race_wiring
        history = self.window.recovery.load_results(lab)
        if history is None or history.labels != race.race_labels:
            return False
        race.history = history
        alive = np.array([i not in history.divergences for i in range(len(history.labels))])
        race.latest = SimpleNamespace(step=history.last_step, alive=alive)
        race.flush_redraw()
        race.finished = True
        return True
