"""A finished race's results as one ``.npz`` file, and back: what crash recovery keeps.

``save_results`` turns a `RaceHistory` or `NetworkHistory` (every run's bounded series, the
divergences and early stops, and a network race's newest evaluation: decision boundaries,
confusion matrices, per-layer statistics, diagram weights) into plain arrays; ``load_results``
rebuilds the history, so the window can show the race exactly as it ended without running it
again. Only numbers and strings are stored (``allow_pickle=False`` both ways): a recovery file
from a crashed session is data, never code.

The file is tied to the lab it came from by a digest of the lab's JSON: results are offered back
only with the very lab that produced them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from core.engine.function_race import Divergence
from core.engine.history import DEFAULT_CAPACITY, NetworkHistory, RaceHistory, RunSeries
from core.engine.network_records import EarlyStop, Evaluation
from core.lab.format import Lab, lab_to_json, write_atomic

FORMAT = "descent-lab-results/1"


def lab_digest(lab: Lab) -> str:
    """A short fingerprint of everything in the lab (its canonical JSON)."""
    return hashlib.sha256(lab_to_json(lab).encode("utf-8")).hexdigest()[:32]


def _series_arrays(prefix: str, series: list[RunSeries], out: dict) -> None:
    out[f"{prefix}.fields"] = np.array(series[0].fields if series else (), dtype=str)
    for i, s in enumerate(series):
        out[f"{prefix}.{i}"] = np.stack([s.column(f) for f in s.fields]) if len(s) else \
            np.empty((len(s.fields), 0))


def _series_from(prefix: str, data, count: int, capacity: int, peak: str | None = None) -> list[RunSeries]:
    fields = tuple(str(f) for f in data[f"{prefix}.fields"])
    runs = []
    for i in range(count):
        s = RunSeries(capacity, fields, peak_field=peak or fields[3])
        rows = data[f"{prefix}.{i}"]
        if rows.shape[1]:
            s.extend(rows)
        runs.append(s)
    return runs


def _events(events: dict) -> str:
    return json.dumps([dataclasses.asdict(e) for _, e in sorted(events.items())])


def _evaluation_arrays(evaluation, out: dict) -> None:
    """The newest evaluation's arrays (None fields are left out)."""
    for name, value in (("layer_grad_norm", evaluation.layer_grad_norm),
                        ("update_ratio", evaluation.update_ratio),
                        ("confusion", evaluation.confusion), ("boundary", evaluation.boundary),
                        ("boundary_class", evaluation.boundary_class), ("curve", evaluation.curve),
                        ("val_scores", evaluation.val_scores)):
        if value is not None:
            out[f"ev.{name}"] = np.asarray(value)
    for group in ("train", "val", "train_std", "val_std"):
        for key, value in getattr(evaluation, group).items():
            out[f"ev.{group}.{key}"] = np.asarray(value)
    if evaluation.weights is not None:
        out["ev.weights.shape"] = np.array([len(evaluation.weights), len(evaluation.weights[0])])
        for r, layers in enumerate(evaluation.weights):
            for k, w in enumerate(layers):
                out[f"ev.weights.{r}.{k}"] = np.asarray(w)


def _evaluation_from(data):
    def group(name: str) -> dict:
        head = f"ev.{name}."
        return {k[len(head):]: data[k] for k in data.files
                if k.startswith(head) and "." not in k[len(head):]}

    weights = None
    if "ev.weights.shape" in data.files:
        runs, layers = (int(v) for v in data["ev.weights.shape"])
        weights = tuple(tuple(data[f"ev.weights.{r}.{k}"] for k in range(layers))
                        for r in range(runs))
    def get(name):
        return data[f"ev.{name}"] if f"ev.{name}" in data.files else None

    return Evaluation(
        train=group("train"), val=group("val"),
        layer_grad_norm=get("layer_grad_norm"), update_ratio=get("update_ratio"),
        confusion=get("confusion"), boundary=get("boundary"),
        boundary_class=get("boundary_class"), curve=get("curve"), weights=weights,
        train_std=group("train_std"), val_std=group("val_std"), val_scores=get("val_scores"),
    )


def results_bytes(lab: Lab, history: RaceHistory | NetworkHistory) -> bytes:
    """The .npz file's bytes for a finished race of ``lab``."""
    network = isinstance(history, NetworkHistory)
    out: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "lab_digest": np.array(lab_digest(lab)),
        "kind": np.array("network" if network else "function"),
        "labels": np.array(history.labels, dtype=str),
        "last_step": np.array(history.last_step),
        "divergences": np.array(_events(history.divergences)),
    }
    if network:
        _series_arrays("steps", history.steps, out)
        if history.evals is not None:
            _series_arrays("evals", history.evals, out)
        out["stops"] = np.array(_events(history.stops))
        out["last_evaluation_step"] = np.array(history.last_evaluation_step)
        if history.last_evaluation is not None:
            _evaluation_arrays(history.last_evaluation, out)
    else:
        _series_arrays("runs", history.runs, out)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **out)
    return buffer.getvalue()


def save_results(path: str | os.PathLike, lab: Lab, history: RaceHistory | NetworkHistory) -> None:
    """Write the results atomically (the old file stays whole if this fails)."""
    write_atomic(Path(path), results_bytes(lab, history))


def load_results(path: str | os.PathLike, lab: Lab) -> RaceHistory | NetworkHistory | None:
    """The history saved for exactly this ``lab``, or None (missing, other lab, unreadable)."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if str(data["format"]) != FORMAT or str(data["lab_digest"]) != lab_digest(lab):
                return None
            return _history_from(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _history_from(data) -> RaceHistory | NetworkHistory:
    labels = [str(v) for v in data["labels"]]
    if str(data["kind"]) == "network":
        history = NetworkHistory(labels)
        history.steps = _series_from("steps", data, len(labels), history.capacity, "loss")
        history.step_fields = history.steps[0].fields if history.steps else history.step_fields
        if "evals.fields" in data.files:
            history.evals = _series_from("evals", data, len(labels), history.capacity)
            history.eval_fields = history.evals[0].fields if history.evals else ()
        history.stops = {e["run"]: EarlyStop(**e) for e in json.loads(str(data["stops"]))}
        history.last_evaluation_step = int(data["last_evaluation_step"])
        if "ev.layer_grad_norm" in data.files:
            history.last_evaluation = _evaluation_from(data)
    else:
        history = RaceHistory(labels)
        history.runs = _series_from("runs", data, len(labels), DEFAULT_CAPACITY, "loss")
    history.divergences = {e["run"]: Divergence(**e) for e in json.loads(str(data["divergences"]))}
    history.last_step = int(data["last_step"])
    return history
