"""Where the app keeps what is the user's: the platform's user data folder, and the rule that
nothing is ever written inside the installed app (resources/, which may be read-only and is
replaced by the next install).

`user_data_dir` is the folder (``DESCENT_LAB_DATA_DIR`` overrides it; the tests point it at a
throwaway folder): ``$XDG_DATA_HOME/descent-lab`` (``~/.local/share/descent-lab``) on Linux,
``~/Library/Application Support/Descent Lab`` on macOS, ``%LOCALAPPDATA%\\Descent Lab`` on
Windows — the places Qt's QStandardPaths and platformdirs name (no Qt here: core never imports it).
`folder_for_lab` is where files that belong beside a lab go (a sweep's SQLite study, a CLI
sub-command's output): beside the lab, unless the lab ships with the app (`is_bundled`), then in
``<user data>/examples``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "descent-lab"
APP_DIR_TITLE = "Descent Lab"  # macOS and Windows name app folders in words
RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"


def user_data_dir() -> Path:
    """The user's data folder for this app (not created here)."""
    override = os.environ.get("DESCENT_LAB_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_DIR_TITLE
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return Path(base or Path.home() / "AppData" / "Local") / APP_DIR_TITLE
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / APP_DIR_NAME


def is_bundled(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies inside the app's own resources/ (an example, a lesson's lab)."""
    try:
        return Path(path).resolve().is_relative_to(RESOURCES_DIR.resolve())
    except OSError:
        return False


def folder_for_lab(lab_path: str | os.PathLike) -> Path:
    """Where files that belong beside ``lab_path`` go: its folder, or for a lab shipped with the
    app ``<user data>/examples`` (made here, so a caller can write into it at once)."""
    path = Path(lab_path).resolve()
    if not is_bundled(path):
        return path.parent
    folder = user_data_dir() / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
