"""Where a sub-command writes when ``--out`` is not given: a folder next to the lab file."""

from __future__ import annotations

from pathlib import Path


def default_out(lab_path: str, suffix: str) -> Path:
    """``<folder of the lab>/<lab name>-<suffix>``: banana.lab.json -> banana-sweep/."""
    path = Path(lab_path)
    stem = path.name.split(".")[0] or "lab"
    return path.parent / f"{stem}-{suffix}"
