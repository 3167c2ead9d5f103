"""A lesson as loaded: its text, its labs and its claims (`Lesson`, `Claim`).

Reading and checking lesson.json lives in loader.py; a claim's sentence comes from its kind in
registry.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.lab.format import Lab
from core.teaching.lessons.registry import CLAIM_KINDS


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a lesson, e.g. ``{"kind": "diverges", "run": "lr 1.1"}``."""

    kind: str
    params: Mapping[str, Any]  # the claim's checked fields, without "kind"
    index: int  # its place in the lesson's "claims" list

    def describe(self) -> str:
        """The claim as a sentence: ``Momentum reaches loss < 0.001 sooner than SGD``."""
        return CLAIM_KINDS[self.kind].sentence(self.params)


@dataclass(frozen=True)
class Lesson:
    """A lesson as loaded from ``resources/lessons/<name>/lesson.json``: text, labs and claims."""

    name: str
    title: str
    summary: str
    notice: tuple[str, ...]
    why: str
    question: str
    labs: tuple[Lab, ...]
    lab_paths: tuple[Path, ...]
    claims: tuple[Claim, ...]
    hide_panels: tuple[str, ...] = ()
    path: Path | None = None  # the lesson.json file

    @property
    def lab(self) -> Lab:
        """The lab the lesson opens with (its first)."""
        return self.labs[0]

    @property
    def lab_path(self) -> Path:
        return self.lab_paths[0]
