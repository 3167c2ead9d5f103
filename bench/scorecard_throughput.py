"""BENCH scorecard-throughput: the scorecard's trials trained side by side as runs of one race
(core/tools/scorecard/workloads.py `time_to_target`, as core/tools/scorecard/run.py does) vs the
same trials one race each, on the shipped moons_mlp workload. Trials per minute; the target is
out of reach so every trial trains the whole budget in every mode.

The first line is the scorecard's defaults: O = 5 trials × S = 5 studies for each of 3 entries
(Adam, SGD, NAdam). Study s trains on the lab's seed + s, so the scorecard trains, per study
index, every entry's O trials as one race (3 × 5 = 15 runs); it is compared with one race per
trial and with one race per study (O runs, the scorecard before entries shared a race). The
second line is one race of 16 trials vs 16 races, as measured before. Both run on one torch
thread, as the GUI's worker does (bench/sweep_throughput.py): on a shared 2-core machine two
threads made the timings swing by several times from run to run."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from bench.common import report

TRIALS, STUDIES = 5, 5  # the scorecard's defaults (cli/scorecard.py)
ENTRIES = ("adam", "sgd", "nadam")
WIDE = 16  # the one-race width of the second line
STEPS = 150


def _timed(call):
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def run() -> dict:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the GUI's worker and bench/sweep_throughput.py do
    try:
        return _run()
    finally:
        torch.set_num_threads(threads)


def _run() -> dict:
    import numpy as np

    from core.lab.format import RunSpec
    from core.tools.scorecard.workloads import load_suite, time_to_target

    lab = load_suite()["moons_mlp"].lab
    lab = replace(lab, problem=replace(lab.problem, eval_every=10))
    lrs = np.geomspace(1e-3, 3e-2, TRIALS)
    per_entry = [[RunSpec(f"{name} {lr:.3g}", name, {"lr": float(lr)}) for lr in lrs]
                 for name in ENTRIES]
    # Warm-up of every mode (imports, each optimizer class's first stacked step, first
    # allocations): the mode timed first would pay it otherwise.
    for runs in (sum(per_entry, []), *per_entry, per_entry[0][:1]):
        time_to_target(lab, runs, -math.inf, 5)
    labs = [replace(lab, seed=lab.seed + s) for s in range(STUDIES)]
    shared, studies, single = [], [], []
    t_shared = t_study = t_single = 0.0
    # Study by study, the three modes in turn: a load that comes and goes on a shared machine
    # falls on all three alike.
    for lab_s in labs:
        out, spent = _timed(lambda lab_s=lab_s: time_to_target(lab_s, sum(per_entry, []),
                                                               -math.inf, STEPS))
        shared.append(out)
        t_shared += spent
        out, spent = _timed(lambda lab_s=lab_s: [time_to_target(lab_s, runs, -math.inf, STEPS)
                                                 for runs in per_entry])
        studies += out
        t_study += spent
        out, spent = _timed(lambda lab_s=lab_s: [time_to_target(lab_s, [r], -math.inf, STEPS)[0]
                                                 for runs in per_entry for r in runs])
        single += out
        t_single += spent
    flat_shared = [o for race in shared for o in race]
    flat_study = [o for race in studies for o in race]
    # The same trials: their lowest validation losses agree (same data, weights, batches).
    agree = max(abs(a.best - b.best) for a, b in zip(flat_shared, single))
    same_as_study = all(a.best == b.best for a, b in zip(flat_shared, flat_study))
    count = len(single)

    wide_runs = [RunSpec(f"Adam {lr:.3g}", "adam", {"lr": float(lr)})
                 for lr in np.geomspace(1e-3, 3e-2, WIDE)]
    wide, t_wide = _timed(lambda: time_to_target(lab, wide_runs, -math.inf, STEPS))
    one, t_one = _timed(lambda: [time_to_target(lab, [r], -math.inf, STEPS)[0]
                                 for r in wide_runs])
    report("scorecard-throughput (16 trials)", WIDE / t_wide * 60, "trials/min", t_one / t_wide,
           "one race per trial", note=f"{WIDE} trials × {STEPS} steps of moons_mlp in one race")
    return report("scorecard-throughput", count / t_shared * 60, "trials/min",
                  t_single / t_shared, "one race per trial",
                  note=f"defaults O={TRIALS} × S={STUDIES} × {len(ENTRIES)} entries × {STEPS} "
                       f"steps of moons_mlp, {len(ENTRIES) * TRIALS} runs a race; "
                       f"x{t_study / t_shared:.2f} vs one race per study, which is "
                       f"x{t_single / t_study:.2f} vs one race per trial; "
                       f"max |Δ best val loss| {agree:.2g}, "
                       f"per-study races {'identical' if same_as_study else 'DIFFER'}",
                  shared_s=t_shared, per_study_s=t_study, single_s=t_single,
                  max_best_diff=agree, identical_to_per_study=same_as_study,
                  wide_batched_s=t_wide, wide_single_s=t_one)
