"""Where the file dialogs open: the folder the user last used, else their Documents — never the
app's own resources/ (opening a bundled example must not make the next Save or Export default
into the installed app; core/user_data.py says what counts as bundled)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

from core.user_data import is_bundled

LAST_DIR_KEY = "last_dir"  # QSettings: the folder of the last lab opened or saved


def documents_dir() -> str:
    """The user's documents folder (their home where the platform names none)."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return location if location and Path(location).is_dir() else str(Path.home())


def start_dir(settings, *keys: str) -> str:
    """The first of the folders remembered under ``keys`` that still exists and is the user's,
    else `documents_dir`."""
    for key in keys:
        value = settings.value(key)
        if value and Path(str(value)).is_dir() and not is_bundled(str(value)):
            return str(value)
    return documents_dir()


def remember_dir(settings, key: str, folder: str | Path) -> None:
    """Remember ``folder`` for the next dialog, unless it is inside the app."""
    if not is_bundled(folder):
        settings.setValue(key, str(folder))
