"""history-memory: resident memory of a network race's history after 10⁶ steps of 8 runs.

Feeds `core.engine.history.NetworkHistory` the way the window does — batches of records — with 8 runs
× 1,000,000 steps of synthetic numbers (no training: this measures the history, not the engine)
and reads the process's resident set size before and after. Goal: growth ≤ 100 MB.

Baseline: an unbounded history of the same columns (8 runs × 6 float64 columns × 10⁶ steps),
whose size is exact arithmetic — allocating it would only measure numpy. Ratio: unbounded bytes
/ our measured growth.
"""

from __future__ import annotations

import gc
from types import SimpleNamespace

import numpy as np

from bench.common import report
from core.engine.history import NETWORK_FIELDS, NetworkHistory

RUNS = 8
STEPS = 1_000_000
BATCH = 2_000


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def run() -> dict:
    history = NetworkHistory([f"run {i}" for i in range(RUNS)])
    rng = np.random.default_rng(0)
    alive = np.ones(RUNS, dtype=bool)
    gc.collect()
    before = _rss_bytes()
    for start in range(0, STEPS, BATCH):
        loss = np.exp(-np.arange(start, start + BATCH) / 2e5)[:, None] * rng.random((BATCH, RUNS))
        records = [
            SimpleNamespace(step=start + k, epoch=(start + k) / 8, wall_time=(start + k) * 1e-3,
                            loss=loss[k], lr=np.full(RUNS, 1e-3), grad_norm=loss[k],
                            alive=alive, evaluation=None, diverged=(), stopped=())
            for k in range(BATCH)
        ]
        history.extend(records)
    gc.collect()
    growth = _rss_bytes() - before
    unbounded = RUNS * len(NETWORK_FIELDS) * 8 * STEPS
    kept = len(history.steps[0])
    return report(
        "history-memory", growth / 1e6, "MB", unbounded / max(growth, 1),
        f"unbounded arrays {unbounded / 1e6:.0f} MB",
        note=f"{RUNS} runs x {STEPS:,} steps, {kept:,} points kept per run",
        growth_bytes=growth, kept_points=kept,
    )
