"""BENCH scorecard-throughput: a scorecard study's trials trained side by side as runs of one
race (core/tools/scorecard/workloads.py `time_to_target`, as core/tools/scorecard/run.py does)
vs the same trials one race each, on the shipped moons_mlp workload. Trials per minute; the
target is out of reach so every trial trains the whole budget in both."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from bench.common import report

TRIALS = 16
STEPS = 150


def run() -> dict:
    import numpy as np

    from core.lab.format import RunSpec
    from core.tools.scorecard.workloads import load_suite, time_to_target

    lab = load_suite()["moons_mlp"].lab
    lab = replace(lab, problem=replace(lab.problem, eval_every=10))
    runs = [RunSpec(f"Adam {lr:.3g}", "adam", {"lr": float(lr)})
            for lr in np.geomspace(1e-3, 3e-2, TRIALS)]
    time_to_target(lab, runs[:1], -math.inf, 5)  # warm-up: imports, first allocations
    start = time.perf_counter()
    batched = time_to_target(lab, runs, -math.inf, STEPS)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = [time_to_target(lab, [r], -math.inf, STEPS)[0] for r in runs]
    t_single = time.perf_counter() - start
    # The same trials: their lowest validation losses agree (same data, weights, batches).
    agree = max(abs(a.best - b.best) for a, b in zip(batched, single))
    per_min = TRIALS / t_batched * 60
    return report("scorecard-throughput", per_min, "trials/min", t_single / t_batched,
                  "one race per trial",
                  note=f"{TRIALS} trials × {STEPS} steps of moons_mlp; "
                       f"max |Δ best val loss| {agree:.2g}",
                  batched_s=t_batched, single_s=t_single, max_best_diff=agree)
