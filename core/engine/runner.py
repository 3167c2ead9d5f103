"""Headless runs: iterate the engine and write summary.json, metrics.csv and trajectory.csv.

This is ``main.py run``. It iterates the very generator the GUI's worker iterates, so the numbers
are the same to the bit. A run whose optimizer faulted (core/engine/faults.py) is in summary.json
with ``failed``, and ``failure`` holds its kind, step, reason and traceback; the other runs are
written as ever. Files are streamed to temporary files beside the targets and renamed into
place only when complete: a crash or Ctrl+C never leaves half a CSV where a whole one was.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.engine.factory import make_race
from core.engine.faults import DEFAULT_STEP_TIME_LIMIT
from core.engine.function_race import StepRecord
from core.engine.run_files import AtomicCsv, write_summary
from core.errors import LabError
from core.lab.code import written_name
from core.lab.format import Lab


def _check_has_runs(lab: Lab) -> None:
    if lab.enabled_runs():
        return
    if lab.runs:
        which = "its one run is" if len(lab.runs) == 1 else f"all {len(lab.runs)} runs are"
        raise LabError("runs", f'add at least one run ({which} disabled: set "enabled": true)')
    raise LabError("runs", "add at least one run")


def run_to_dir(
    lab: Lab,
    out_dir: str | os.PathLike,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    step_time_limit: float | None = DEFAULT_STEP_TIME_LIMIT,
) -> dict:
    """Run ``lab`` to the end and write its results into ``out_dir``; return the summary.

    A lab with no enabled run is refused (`LabError` on ``runs``) before anything is written:
    a summary of no runs is a mistake, not a result. ``step_time_limit``: the seconds one run's
    optimizer step may take before that run is stopped (None: no limit)."""
    _check_has_runs(lab)
    if lab.problem.kind == "rl":  # episodes, not steps: core/engine/rl_runner.py
        from core.engine.rl_runner import run_rl

        return run_rl(lab, Path(out_dir), stop, progress)
    if lab.is_network:
        return _run_network(lab, Path(out_dir), stop, progress, step_time_limit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    race = make_race(lab, step_time_limit=step_time_limit)
    labels = race.labels
    metrics = AtomicCsv(out / "metrics.csv", ["run", "step", "loss", "lr", "grad_norm"])
    trajectory = AtomicCsv(out / "trajectory.csv", ["run", "step", "x", "y", "loss"])
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
        entry = _run_entry(race, i, label, last, best)
        entry["wall_s"] = round(float(race.wall_s[i]), 6)
        entry["final_point"] = [float(v) for v in last.point[i]] if last is not None else None
        runs.append(entry)
    return write_summary(out, lab, started, runs, problem="function",
                          function=race.objective.name)


def _run_entry(race, i: int, label: str, last, best: np.ndarray,
               stopped_at: int | None = None) -> dict:
    """The summary keys of run ``i`` that both kinds of race write, in their order in the file."""
    event = race.diverged[i]
    fault = event if event is not None and event.kind != "diverged" else None
    event = None if fault is not None else event
    return {
        "label": label,
        "optimizer": written_name(race.runs[i].optimizer, race.lab.base_dir),
        "final_loss": float(last.loss[i]) if last is not None else None,
        "best_loss": float(best[i]) if np.isfinite(best[i]) else None,
        # Updates this run completed (a diverged or failed run stops before its bad step).
        "steps": (max(0, (event or fault).step - 1) if (event or fault) is not None
                  else stopped_at if stopped_at is not None else (last.step if last else 0)),
        "diverged": event is not None,
        "diverged_at": event.step if event is not None else None,
        "divergence_reason": event.reason if event is not None else None,
        # The forensics: the layer, last finite values and lr of the blow-up
        # (core/engine/function_race.py).
        "divergence": event.details() if event is not None else None,
        # Its optimizer's step raised or ran over the time limit (core/engine/faults.py): the
        # run is frozen at step - 1, as a diverged one is.
        "failed": fault is not None,
        "failure": None if fault is None else {
            "kind": fault.kind, "step": fault.step, "reason": fault.reason,
            "traceback": fault.traceback,
        },
    }


def _run_network(
    lab: Lab,
    out: Path,
    stop: threading.Event | None,
    progress: Callable[[int, int], None] | None,
    step_time_limit: float | None = DEFAULT_STEP_TIME_LIMIT,
) -> dict:
    """Network labs: metrics.csv (with val_loss / val_accuracy where measured), weights/*.pt."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    race = make_race(lab, step_time_limit=step_time_limit)
    labels = race.labels
    classification = race.task == "classification"
    header = ["run", "step", "epoch", "loss", "lr", "grad_norm", "val_loss"]
    header += ["val_accuracy"] if classification else ["val_r2"]
    metrics = AtomicCsv(out / "metrics.csv", header)
    best = np.full(len(labels), np.inf)
    final_val: dict[str, np.ndarray] = {}
    final_val_std: dict[str, np.ndarray] = {}  # several seeds: std over the seeds
    last = None
    sharpness = None  # each run's newest top Hessian eigenvalue, when the lab tracks it
    edges = None  # ... and its newest (preconditioned sharpness, edge of stability)
    confusion = scores = None  # each run's newest confusion matrix / binary scores (seed 0's)
    try:
        for record in race.records(stop):
            last = record
            if record.sharpness is not None:
                # A live run's newest measurement, NaN included (its eigensolver did not
                # converge: reported as such, not as an older number); a run no longer alive
                # keeps its last one.
                previous = sharpness if sharpness is not None else record.sharpness
                sharpness = np.where(record.alive, record.sharpness, previous)
                edges = _newest_edges(record, edges)
            ev = record.evaluation
            if ev is not None and ev.confusion is not None:
                confusion = _newest(record.alive, ev.confusion, confusion)
                if ev.val_scores is not None:
                    scores = _newest(record.alive, ev.val_scores, scores)
            if ev is not None and ev.val:
                final_val = {k: np.where(record.alive, v, final_val.get(k, v))
                             for k, v in ev.val.items()}
                final_val_std = {k: np.where(record.alive, v, final_val_std.get(k, v))
                                 for k, v in ev.val_std.items()}
            for i in np.flatnonzero(record.alive):
                loss = float(record.loss[i])
                row = [labels[i], record.step, record.epoch, loss, float(record.lr[i]),
                       float(record.grad_norm[i])]
                if ev is not None and ev.val:
                    quality = ev.val["accuracy" if classification else "r2"][i]
                    row += [float(ev.val["loss"][i]), float(quality)]
                else:
                    row += ["", ""]
                metrics.writer.writerow(row)
                best[i] = min(best[i], loss)
            if progress is not None:
                progress(record.step, lab.steps)
    except BaseException:
        metrics.discard()
        raise
    metrics.commit()

    weights = out / "weights"
    weights.mkdir(exist_ok=True)
    for label, state in race.state_dicts().items():
        fd, tmp = tempfile.mkstemp(prefix=".w.", suffix=".tmp", dir=weights)
        os.close(fd)
        torch.save(state, tmp)
        os.replace(tmp, weights / f"{_safe_name(label)}.pt")

    runs = []
    for i, label in enumerate(labels):
        stopped = race.stopped[i]
        stopped_at = stopped.step if stopped is not None else None
        entry = _run_entry(race, i, label, last, best, stopped_at)
        entry["early_stopped_at"] = stopped_at
        entry["wall_s"] = round(float(race.wall_s[i]), 6)
        entry["final_val_loss"] = _value(final_val, "loss", i)
        entry["best_val_loss"] = (float(race.best_val[i]) if np.isfinite(race.best_val[i])
                                  else None)
        if classification:
            entry["final_val_accuracy"] = _value(final_val, "accuracy", i)
            entry["final_val_f1"] = _value(final_val, "f1", i)
            if confusion is not None:
                entry.update(_class_report(race, confusion[i],
                                           None if scores is None else scores[i]))
        else:
            entry["final_val_r2"] = _value(final_val, "r2", i)
        # Several seeds: the numbers above are means over the seeds (best_val_loss: the best
        # mean), these are their standard deviations; weights/<label>.pt is seed 0's.
        entry["seeds"] = race.seed_count
        if sharpness is not None:  # problem.sharpness_every > 0
            entry["sharpness"] = float(sharpness[i]) if np.isfinite(sharpness[i]) else None
            # False: the last measurement's eigensolver did not converge (sharpness is null).
            entry["sharpness_converged"] = bool(np.isfinite(sharpness[i]))
            # The run's own edge of stability at its last lr (null where its optimizer has
            # none), what it is, and Adam/RMSprop's preconditioned sharpness λ₁(P⁻¹H) that is
            # compared with it (core/landscape/adaptive_edge.py).
            entry.update(_edge_entry(race, i, edges))
        if race.seed_count > 1:
            entry["final_val_loss_std"] = _value(final_val_std, "loss", i)
            quality = "accuracy" if classification else "r2"
            entry[f"final_val_{quality}_std"] = _value(final_val_std, quality, i)
        runs.append(entry)
    return write_summary(
        out, lab, started, runs, problem="network", dataset=race.data.name, task=race.task,
        parameters=race.model_spec.n_params, device=str(race.device), notices=race.notices,
    )


def _newest_edges(record, previous):
    """Each run's newest (preconditioned sharpness, edge) from a record that measured sharpness;
    a run no longer alive keeps its last ones."""
    nan = np.full(len(record.alive), np.nan)
    values = np.stack([nan if record.preconditioned_sharpness is None
                       else record.preconditioned_sharpness,
                       nan if record.edge is None else record.edge], axis=1)
    return _newest(record.alive, values, previous)


def _edge_entry(race, i: int, edges) -> dict:
    from core.landscape.adaptive_edge import edge_rule

    rule, text = edge_rule(race.optimizers[i])
    pre, edge = (np.nan, np.nan) if edges is None else edges[i]
    return {
        "edge_rule": rule.name if rule is not None else text,
        "edge_of_stability": float(edge) if np.isfinite(edge) else None,
        "preconditioned_sharpness": float(pre) if np.isfinite(pre) else None,
    }


def _newest(alive: np.ndarray, values: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """A live run's new values; a run no longer alive keeps its last ones."""
    if previous is None or previous.shape != values.shape:
        return values
    return np.where(alive.reshape(-1, *([1] * (values.ndim - 1))), values, previous)


def _class_report(race, matrix: np.ndarray, scores: np.ndarray | None) -> dict:
    """summary.json's per-class precision / recall / F1 / support of one run's last confusion
    matrix (validation; training without a validation split; seed 0's with several seeds) and,
    for a binary task, the average precision of its precision–recall curve."""
    from core.problems.metrics import average_precision, per_class_metrics_of
    from core.problems.metrics import precision_recall_curve as pr_curve

    per_class = per_class_metrics_of(matrix[None])
    report = {"final_val_per_class": {
        "classes": list(race.data.class_names),
        **{key: [float(v) for v in values[0]] for key, values in per_class.items()},
        "support": [int(v) for v in per_class["support"][0]],  # counts
    }}
    if scores is not None:
        target = race.data.y_val if len(race.data.y_val) else race.data.y_train
        precision, recall, _ = pr_curve(target, scores)
        report["final_val_average_precision"] = average_precision(precision, recall)
    return report


def _value(values: dict[str, np.ndarray], key: str, i: int) -> float | None:
    if key not in values:
        return None
    return float(values[key][i])


def _safe_name(label: str) -> str:
    """A file name for a run label: letters, digits, spaces and -_+.() stay; others become '_'."""
    name = "".join(c if c.isalnum() or c in " -_+.()" else "_" for c in label).strip(". ")
    return name or "run"
