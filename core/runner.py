"""Headless runs: iterate the engine and write summary.json, metrics.csv and trajectory.csv.

This is ``main.py run``. It iterates the very generator the GUI's worker iterates, so the numbers
are the same to the bit. Files are streamed to temporary files beside the targets and renamed into
place only when complete: a crash or Ctrl+C never leaves half a CSV where a whole one was.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from core.engine import FunctionRace, StepRecord
from core.lab import Lab, write_atomic


class _AtomicCsv:
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


def run_to_dir(
    lab: Lab,
    out_dir: str | os.PathLike,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run ``lab`` to the end and write its results into ``out_dir``; return the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    race = FunctionRace(lab)
    labels = race.labels
    metrics = _AtomicCsv(out / "metrics.csv", ["run", "step", "loss", "lr", "grad_norm"])
    trajectory = _AtomicCsv(out / "trajectory.csv", ["run", "step", "x", "y", "loss"])
    best = np.full(len(labels), np.inf)
    last: StepRecord | None = None
    try:
        for record in race.records(stop):
            last = record
            for i in np.flatnonzero(record.alive):
                label = labels[i]
                loss = float(record.loss[i])
                metrics.writer.writerow(
                    [label, record.step, loss, float(record.lr[i]), float(record.grad_norm[i])]
                )
                x, y = record.point[i]
                trajectory.writer.writerow([label, record.step, float(x), float(y), loss])
                if loss < best[i]:
                    best[i] = loss
            if progress is not None:
                progress(record.step, lab.steps)
    except BaseException:
        metrics.discard()
        trajectory.discard()
        raise
    metrics.commit()
    trajectory.commit()

    runs = []
    for i, label in enumerate(labels):
        event = race.diverged[i]
        entry = {
            "label": label,
            "optimizer": race.runs[i].optimizer,
            "final_loss": float(last.loss[i]) if last is not None else None,
            "best_loss": float(best[i]) if np.isfinite(best[i]) else None,
            # Updates this run completed (a diverged run stops before its bad step).
            "steps": max(0, event.step - 1) if event is not None else (last.step if last else 0),
            "diverged": event is not None,
            "diverged_at": event.step if event is not None else None,
            "divergence_reason": event.reason if event is not None else None,
            "wall_s": round(float(race.wall_s[i]), 6),
            "final_point": [float(v) for v in last.point[i]] if last is not None else None,
        }
        runs.append(entry)
    summary = {
        "lab": lab.name,
        "problem": "function",
        "function": race.objective.name,
        "steps": lab.steps,
        "seed": lab.seed,
        "wall_s": round(time.perf_counter() - started, 6),
        "runs": runs,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
