"""A race's metrics exported from the GUI's history as CSV or JSON, and two metrics tables compared.

`write_metrics_csv` writes the columns of ``main.py run``'s metrics.csv; `write_metrics_json` the
same numbers per run and column. `read_metrics_csv` and `rows_differ` compare two tables (the
tests compare an exported script's numbers with the engine's this way).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from core.lab.format import Lab, write_atomic


def history_rows(history) -> tuple[list[str], list[list]]:
    """``main.py run``'s metrics.csv header and rows from a GUI history (step-major order).

    Works for `core.engine.history.RaceHistory` and `NetworkHistory`. Long races thin their series
    (history.py), so a very long race exports the kept points, as plotted.
    """
    from core.engine.history import NetworkHistory

    if isinstance(history, NetworkHistory):
        return _network_rows(history)
    rows = []
    for label, series in zip(history.labels, history.runs):
        columns = [series.column(name) for name in ("step", "loss", "lr", "grad_norm")]
        for step, loss, lr, grad in zip(*columns):
            rows.append([label, int(step), float(loss), float(lr), float(grad)])
    order = {label: i for i, label in enumerate(history.labels)}
    rows.sort(key=lambda row: (row[1], order[row[0]]))
    return ["run", "step", "loss", "lr", "grad_norm"], rows


def _network_rows(history) -> tuple[list[str], list[list]]:
    quality = "val_r2" if "val_r2" in history.eval_fields else "val_accuracy"
    header = ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss", quality]
    rows = []
    for i, (label, series) in enumerate(zip(history.labels, history.steps)):
        evals: dict[int, tuple[float, float]] = {}
        if history.evals is not None and "val_loss" in history.eval_fields:
            ev = history.evals[i]
            for step, loss, q in zip(ev.column("step"), ev.column("val_loss"),
                                     ev.column(quality) if quality in history.eval_fields
                                     else ev.column("val_loss")):
                evals[int(step)] = (float(loss), float(q))
        for step, epoch, loss, lr, grad in zip(
            *(series.column(n) for n in ("step", "epoch", "loss", "lr", "grad_norm"))
        ):
            extra = list(evals.get(int(step), ("", "")))
            rows.append([label, int(step), float(epoch), float(loss), float(lr), float(grad),
                         *extra])
    order = {label: i for i, label in enumerate(history.labels)}
    rows.sort(key=lambda row: (row[1], order[row[0]]))
    return header, rows


def write_metrics_csv(history, path: str | os.PathLike) -> Path:
    """A history's metrics as CSV (the columns of ``main.py run``), written atomically."""
    from core.engine.runner import AtomicCsv

    header, rows = history_rows(history)
    target = Path(path)
    out = AtomicCsv(target, header)
    try:
        out.writer.writerows(rows)
    except BaseException:
        out.discard()
        raise
    out.commit()
    return target


def write_metrics_json(history, path: str | os.PathLike, lab: Lab | None = None) -> Path:
    """A history's metrics as JSON: ``{"lab", "columns", "runs": {label: {column: [...]}}}``."""
    header, rows = history_rows(history)
    runs: dict[str, dict[str, list]] = {label: {c: [] for c in header[1:]}
                                        for label in history.labels}
    for row in rows:
        columns = runs[row[0]]
        for name, value in zip(header[1:], row[1:]):
            # JSON has no empty cell: a step without validation metrics gets null.
            columns[name].append(None if value == "" else value)
    payload = {"lab": lab.name if lab is not None else None, "columns": header, "runs": runs}
    target = Path(path)
    write_atomic(target, json.dumps(payload, indent=1, allow_nan=False) + "\n")
    return target


def read_metrics_csv(path: str | os.PathLike) -> dict[tuple[str, int], dict[str, str]]:
    """metrics.csv rows keyed by (run, step): for comparing two runs of the same lab."""
    with open(path, newline="", encoding="utf-8") as file:
        return {(row["run"], int(row["step"])): row for row in csv.DictReader(file)}


def rows_differ(a: dict, b: dict, tolerance: float = 1e-6) -> list[str]:
    """Where two `read_metrics_csv` tables disagree beyond ``tolerance`` (relative to 1 + |x|)."""
    problems = []
    if a.keys() != b.keys():
        missing = sorted(set(a) ^ set(b))[:5]
        return [f"different rows, e.g. {missing}"]
    for key, row in a.items():
        other = b[key]
        for column, value in row.items():
            if column == "run":
                continue
            mine, theirs = value, other.get(column, "")
            if mine == "" or theirs == "":
                if mine != theirs:
                    problems.append(f"{key} {column}: {mine!r} vs {theirs!r}")
                continue
            x, y = float(mine), float(theirs)
            if abs(x - y) > tolerance * (1.0 + abs(x)):
                problems.append(f"{key} {column}: {x!r} vs {y!r}")
    return problems
