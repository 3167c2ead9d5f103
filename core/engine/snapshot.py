"""A finished race's results as one ``.npz`` file, and back: what crash recovery keeps.

``save_results`` turns a `RaceHistory` or `NetworkHistory` (every run's bounded series, the
divergences and early stops, and a network race's newest evaluation: decision boundaries,
confusion matrices, per-layer statistics, diagram weights and neuron pictures, a recurrent net's
probe, the singular values; and its series over the evaluations: per-layer statistics, the
sequence probe, update spectra, sharpness, clipping steps) into plain arrays; ``load_results``
rebuilds the history, so every view of the window shows the race exactly as it ended without
running it again. Only numbers and strings are stored (``allow_pickle=False`` both ways): a recovery file
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


# The newest evaluation's arrays stored as they are, and those stored as one array per run and
# layer (their lengths differ between layers).
_EVALUATION_ARRAYS = ("layer_grad_norm", "update_ratio", "confusion", "boundary", "boundary_class",
                      "curve", "val_scores", "hidden_grad", "recurrent_radius")
_EVALUATION_NESTED = ("weights", "neurons", "weight_spectra", "update_spectra")


def _nested_arrays(prefix: str, nested, out: dict) -> None:
    """``nested[r][k]`` (run r, layer k) as ``prefix.r.k``, with ``prefix.shape`` = (runs, layers)."""
    out[f"{prefix}.shape"] = np.array([len(nested), len(nested[0]) if nested else 0])
    for r, layers in enumerate(nested):
        for k, value in enumerate(layers):
            out[f"{prefix}.{r}.{k}"] = np.asarray(value)


def _nested_from(prefix: str, data):
    if f"{prefix}.shape" not in data.files:
        return None
    runs, layers = (int(v) for v in data[f"{prefix}.shape"])
    return tuple(tuple(data[f"{prefix}.{r}.{k}"] for k in range(layers)) for r in range(runs))


def _evaluation_arrays(evaluation, out: dict) -> None:
    """The newest evaluation's arrays (None fields are left out)."""
    for name in _EVALUATION_ARRAYS:
        value = getattr(evaluation, name, None)
        if value is not None:
            out[f"ev.{name}"] = np.asarray(value)
    for group in ("train", "val", "train_std", "val_std"):
        for key, value in getattr(evaluation, group).items():
            out[f"ev.{group}.{key}"] = np.asarray(value)
    for name in _EVALUATION_NESTED:
        value = getattr(evaluation, name, None)
        if value is not None:
            _nested_arrays(f"ev.{name}", value, out)


def _evaluation_from(data):
    def group(name: str) -> dict:
        head = f"ev.{name}."
        return {k[len(head):]: data[k] for k in data.files
                if k.startswith(head) and "." not in k[len(head):]}

    def get(name):
        return data[f"ev.{name}"] if f"ev.{name}" in data.files else None

    return Evaluation(
        train=group("train"), val=group("val"),
        train_std=group("train_std"), val_std=group("val_std"),
        **{name: get(name) for name in _EVALUATION_ARRAYS},
        **{name: _nested_from(f"ev.{name}", data) for name in _EVALUATION_NESTED},
    )


def _over_evaluations(history: NetworkHistory, out: dict) -> None:
    """What the views draw over the evaluations, beyond the metric series: per-layer
    statistics, the sequence probe, the update spectra, sharpness and clipping steps."""
    xs, grad, ratio = history.layer_stats.since(0)
    if len(xs):
        out["layers.xs"], out["layers.grad"], out["layers.ratio"] = xs, grad, ratio
    if history.sequence_stats:
        steps, hidden, radius = zip(*history.sequence_stats)
        out["seq.steps"] = np.array(steps)
        out["seq.hidden"], out["seq.radius"] = np.stack(hidden), np.stack(radius)
    if history.update_spectra:
        out["spectra.steps"] = np.array([step for step, _ in history.update_spectra])
        for i, (_step, spectra) in enumerate(history.update_spectra):
            _nested_arrays(f"spectra.{i}", spectra, out)
    if history.sharpness is not None:
        _series_arrays("sharpness", history.sharpness, out)
    for r, steps in enumerate(history.clip_steps):
        if steps:
            out[f"clips.{r}"] = np.array(steps)


def _over_evaluations_from(data, history: NetworkHistory) -> None:
    if "layers.xs" in data.files:
        for xs, grad, ratio in zip(data["layers.xs"], data["layers.grad"], data["layers.ratio"]):
            history.layer_stats.append(*xs, grad, ratio)
    if "seq.steps" in data.files:
        history.sequence_stats = [(float(step), hidden, radius) for step, hidden, radius
                                  in zip(data["seq.steps"], data["seq.hidden"], data["seq.radius"])]
    if "spectra.steps" in data.files:
        history.update_spectra = [(float(step), _nested_from(f"spectra.{i}", data))
                                  for i, step in enumerate(data["spectra.steps"])]
    if "sharpness.fields" in data.files:
        history.sharpness = _series_from("sharpness", data, len(history.labels),
                                         history.capacity, "sharpness")
    history.clip_steps = [list(map(float, data[f"clips.{r}"])) if f"clips.{r}" in data.files
                          else [] for r in range(len(history.labels))]


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
        _over_evaluations(history, out)
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
        _over_evaluations_from(data, history)
    else:
        history = RaceHistory(labels)
        history.runs = _series_from("runs", data, len(labels), DEFAULT_CAPACITY, "loss")
    history.divergences = {e["run"]: Divergence(**e) for e in json.loads(str(data["divergences"]))}
    history.last_step = int(data["last_step"])
    return history
