"""The files of a headless run, shared by every kind's runner: CSVs written whole or not at all
(`AtomicCsv`) and summary.json (`write_summary`). Used by core/engine/runner.py (function and
network labs) and core/engine/rl_runner.py (rl labs)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path

from core.lab.format import Lab, write_atomic


class AtomicCsv:
    """A CSV writer into a temp file that becomes ``path`` on `commit`."""

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.file = os.fdopen(fd, "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(header)

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.file.close()
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def write_summary(out: Path, lab: Lab, started: float, runs: list[dict], **about) -> dict:
    """summary.json: what was run (``about``), the lab's steps and seed, and every run."""
    summary = {
        "lab": lab.name,
        **about,
        "steps": lab.steps,
        "seed": lab.seed,
        "wall_s": round(time.perf_counter() - started, 6),
        "runs": runs,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
