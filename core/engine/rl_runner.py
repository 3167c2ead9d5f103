"""Headless runs of an rl lab (``main.py run``): summary.json, metrics.csv and updates.csv.

Iterates the very generator the window iterates (core/engine/rl_race.py), so the numbers are the
same to the bit. ``metrics.csv`` has one row per finished episode (run, episode, round, return);
``updates.csv`` one row per update (run, round, loss, grad_norm, target_update, exp_avg_norm,
exp_avg_sq_norm, opt_step, epsilon). summary.json has, per run, the mean return of its last 100
episodes, the best such mean, the episode at which it first reached 195 (CartPole's "solved",
`solved_at`), and how it ended. Files are streamed to temporary files and renamed into place
only when complete (core/engine/run_files.py's `AtomicCsv`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.lab.code import written_name
from core.lab.format import Lab
from core.problems.rl.cartpole import SOLVED_RETURN

WINDOW = 100  # episodes in the classic CartPole score


def rolling_mean(returns, window: int = WINDOW) -> np.ndarray:
    """Mean of each ``window`` consecutive episodes' returns (entry k: episodes k … k+window−1);
    empty when there are fewer episodes than that."""
    values = np.asarray(returns, dtype=np.float64)
    if len(values) < window:
        return np.zeros(0)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    return (sums[window:] - sums[:-window]) / window


def solved_at(returns, goal: float = SOLVED_RETURN, window: int = WINDOW) -> int | None:
    """The episode (1-based) that completes the first ``window`` episodes averaging ≥ ``goal``,
    or None."""
    means = rolling_mean(returns, window)
    hits = np.flatnonzero(means >= goal)
    return int(hits[0]) + window if len(hits) else None


def run_rl(lab: Lab, out: Path, stop: threading.Event | None = None,
           progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the rl ``lab`` to its end and write its files into ``out``; return the summary."""
    from core.engine.rl_race import RLRace
    from core.engine.run_files import AtomicCsv, write_summary

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    race = RLRace(lab)
    n = len(race.labels)
    metrics = AtomicCsv(out / "metrics.csv", ["run", "episode", "round", "return"])
    updates = AtomicCsv(out / "updates.csv", [
        "run", "round", "loss", "grad_norm", "target_update", "exp_avg_norm", "exp_avg_sq_norm",
        "opt_step", "epsilon"])
    returns: list[list[float]] = [[] for _ in range(n)]
    n_updates = np.zeros(n, dtype=np.int64)
    target_updates = np.zeros(n, dtype=np.int64)
    try:
        for record in race.records(stop):
            for i, label in enumerate(race.labels):
                for value in record.returns[i]:
                    returns[i].append(float(value))
                    metrics.writer.writerow([label, len(returns[i]), record.step, float(value)])
                if np.isfinite(record.loss[i]):
                    n_updates[i] += 1
                    target_updates[i] += bool(record.target_update[i])
                    updates.writer.writerow([
                        label, record.step, float(record.loss[i]), float(record.grad_norm[i]),
                        int(record.target_update[i]), _num(record.exp_avg_norm[i]),
                        _num(record.exp_avg_sq_norm[i]), _num(record.opt_step[i]),
                        _num(record.epsilon[i])])
            if progress is not None:
                progress(int(record.episodes.min()), lab.problem.episodes)
    except BaseException:
        metrics.discard()
        updates.discard()
        raise
    metrics.commit()
    updates.commit()
    runs = []
    for i, label in enumerate(race.labels):
        means = rolling_mean(returns[i])
        last = returns[i][-WINDOW:]
        failure = race.failures[i]
        runs.append({
            "label": label,
            "optimizer": written_name(race.runs[i].optimizer, lab.base_dir),
            "episodes": len(returns[i]),
            "mean_return_last_100": float(np.mean(last)) if last else None,
            "best_mean_100": float(means.max()) if len(means) else None,
            "solved_at": solved_at(returns[i]),
            "updates": int(n_updates[i]),
            "target_updates": int(target_updates[i]),
            "adam_rel": race.runs[i].adam_rel,
            "failed": failure is not None,
            "failure": failure,
        })
    p = lab.problem
    return write_summary(out, lab, started, runs, problem="rl", env=p.env, agent=p.agent,
                          episodes=p.episodes)


def _num(value: float) -> float | str:
    return float(value) if np.isfinite(value) else ""
