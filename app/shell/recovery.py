"""Crash recovery: the open lab is kept in a recovery file, written atomically after every edit.

A finished race's results go beside it (``results.npz``, core/engine/snapshot.py), tied to the lab
that produced them, so a crash after a long race does not cost the race. A clean exit removes both; finding it at the next start means the app did not exit cleanly
(a crash, a SIGKILL, a power cut), and the window offers to restore the lab — with the file name
it belonged to and whether it had unsaved changes — but only when something would otherwise be
lost (`RecoveryStore.unsaved`): a lab with unsaved edits, or one that differs from its file. Writing uses core's atomic write, so the
recovery file itself is never half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from core.engine.snapshot import load_results, save_results
from core.errors import LabError
from core.lab.format import Lab, lab_from_dict, lab_to_dict, load_lab, write_atomic
from core.user_data import user_data_dir

RECOVERY_NAME = "recovery.json"
RESULTS_NAME = "results.npz"


def recovery_dir() -> Path:
    """Where the recovery file lives: ``recovery/`` in the user data folder (core/user_data.py;
    ``DESCENT_LAB_RECOVERY_DIR`` overrides, for tests)."""
    override = os.environ.get("DESCENT_LAB_RECOVERY_DIR")
    if override:
        return Path(override)
    return user_data_dir() / "recovery"


class RecoveryStore:
    def __init__(self, directory: Path | None = None):
        self.directory = directory if directory is not None else recovery_dir()
        self.path = self.directory / RECOVERY_NAME
        self.results_path = self.directory / RESULTS_NAME

    def save(self, lab: Lab, source: Path | None, dirty: bool) -> None:
        """Remember the open lab; never raises (recovery must not break editing)."""
        entry = {"lab": lab_to_dict(lab), "source": str(source) if source else None,
                 "dirty": dirty, "base_dir": lab.base_dir}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(entry, indent=1))
        except OSError:
            pass

    def load(self, consent=None) -> tuple[Lab, Path | None, bool] | None:
        """The lab left behind by a run that did not exit cleanly, or None. ``consent`` is asked
        before the user's optimizer code that lab names runs (core/lab/code.py); declined, None."""
        try:
            entry = json.loads(self.path.read_text(encoding="utf-8"))
            lab = lab_from_dict(entry["lab"], base_dir=entry.get("base_dir"), consent=consent)
        except (OSError, ValueError, KeyError, TypeError, LabError):
            return None
        source = Path(entry["source"]) if entry.get("source") else None
        return lab, source, bool(entry.get("dirty"))

    def unsaved(self, consent=None) -> tuple[Lab, Path | None, bool] | None:
        """What `load` finds, when restoring it would bring back something not on disk: the lab
        had unsaved edits, or its file no longer holds it (changed or gone since). An untouched
        lab (a new one, a lesson's, a file just opened) is None: offering it would be noise."""
        found = self.load(consent)
        if found is None:
            return None
        lab, source, dirty = found
        if dirty:
            return found
        if source is None:
            return None  # never saved and never edited: a new lab, nothing of the user's in it
        try:
            on_disk = load_lab(source, consent=consent)  # its code is loaded by now: no question
        except (OSError, LabError):
            return found  # the file is gone or unreadable: this is the only copy left
        return None if on_disk == lab else found

    def save_results(self, lab: Lab, history) -> None:
        """Keep a finished race's results; never raises (recovery must not break racing)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            save_results(self.results_path, lab, history)
        except OSError:
            pass

    def load_results(self, lab: Lab):
        """The finished race saved for exactly this lab (a history), or None."""
        return load_results(self.results_path, lab)

    def clear(self) -> None:
        for path in (self.path, self.results_path):
            try:
                path.unlink()
            except OSError:  # already gone, or not ours to remove: nothing to recover then
                pass
