"""Where a sub-command writes when ``--out`` is not given: a folder next to the lab file (for an
example shipped with the app, in the user data folder: core/user_data.py)."""

from __future__ import annotations

from pathlib import Path

from core.user_data import folder_for_lab


def default_out(lab_path: str, suffix: str) -> Path:
    """``<folder of the lab>/<lab name>-<suffix>``: banana.lab.json -> banana-sweep/."""
    path = Path(lab_path)
    stem = path.name.split(".")[0] or "lab"
    return folder_for_lab(path) / f"{stem}-{suffix}"
