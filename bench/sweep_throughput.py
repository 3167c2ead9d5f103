"""sweep-throughput: trials per minute of a sweep with trials side by side vs one at a time.

The sweep: 32 trials of a 2-16-16-2 ReLU MLP on the two moons (512 points, 20 % validation,
batches of 64), 200 steps each, SGD with momentum 0.9, the lr searched over its registry range
by a seeded random sampler, objective final validation loss, no pruning, in-memory storage.

Ours: ``core.tools.sweep`` with ``batch=32``: the 32 trials are 32 runs of ONE `NetworkRace` (same
data, same initial weights, same batches), which the engine trains side by side.
Baseline: the same sweep with ``batch=1``: one race per trial, one trial at a time (what an
Optuna objective function that trains one model would do). The seeded random sampler proposes
the same 32 configurations to both; their objective values must agree (else a WARNING line).

Both run with ``torch.set_num_threads(1)`` (as the GUI's worker does). Value: trials per minute
side by side; ratio: one-at-a-time time / side-by-side time. Goal (README.md, Benchmarks): >= 2x.

Second line, sweep-pruning: the same 32 configurations in batches of 8 with the median pruner on
and off. Value: the fraction of training steps the pruner saved; ratio: training steps without
pruning / with; note: the best objective with and without (pruning should not lose the best).
Third line, sweep-pruning-best: the best final validation loss with pruning; ratio: that / the
best without pruning (1.00: the pruner stopped only trials that would not have won).
"""

from __future__ import annotations

import time

import torch

from bench.common import report
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.tools.sweep.run import Sweep
from core.tools.sweep.spec import SweepSpec

TRIALS = 32
STEPS = 200
AGREEMENT = 1e-3  # relative: side by side equals one at a time to float32 rounding


def sweep_lab() -> Lab:
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.2},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                          {"linear": 2}]},
        batch_size=64, eval_every=20, device="cpu",
    )
    run = RunSpec("SGD+momentum", "sgd", {"lr": 0.1, "momentum": 0.9})
    return validate_lab(Lab(name="bench sweep", seed=0, steps=STEPS, problem=problem,
                            runs=(run,)))


def _sweep(lab: Lab, batch: int, prune: bool, trials: int = TRIALS):
    spec = SweepSpec(lab, trials=trials, sampler="random", batch=batch, prune=prune,
                     sampler_seed=0, study=f"bench-{batch}-{prune}")
    sweep = Sweep(spec)
    t0 = time.perf_counter()
    last = None
    for last in sweep.run():
        pass
    return time.perf_counter() - t0, last, sweep.study


def run() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lab = sweep_lab()
        _sweep(lab, batch=2, prune=False, trials=2)  # warm-up: lazy imports, first calls
        batched_s, batched, batched_study = _sweep(lab, batch=TRIALS, prune=False)
        single_s, single, single_study = _sweep(lab, batch=1, prune=False)
        _, pruned, _ = _sweep(lab, batch=8, prune=True)
        _, unpruned, _ = _sweep(lab, batch=8, prune=False)
    finally:
        torch.set_num_threads(threads)

    worst = 0.0
    for a, b in zip(batched_study.trials, single_study.trials):
        if a.params != b.params:
            worst = float("inf")
            break
        worst = max(worst, abs(a.value - b.value) / max(abs(b.value), 1e-12))
    if not worst <= AGREEMENT:
        print(f"WARNING sweep-throughput: side-by-side and one-at-a-time objectives differ by "
              f"{worst:.3g} (relative; > {AGREEMENT:g})", flush=True)

    per_minute = TRIALS / batched_s * 60
    result = report(
        "sweep-throughput", per_minute, "trials/min", single_s / batched_s,
        f"one trial at a time, {TRIALS} trials x {STEPS} steps of a 2-16-16-2 moons MLP",
        note=f"max rel. objective difference {worst:.1e}",
        batched_s=batched_s, single_s=single_s, trials=TRIALS, steps=STEPS,
        single_trials_per_min=TRIALS / single_s * 60, max_relative_difference=worst,
    )
    total_steps = TRIALS * STEPS
    saved = pruned.steps_saved / total_steps
    run_with = max(1, pruned.steps_run)
    result["pruning"] = report(
        "sweep-pruning", 100 * saved, "% steps saved", unpruned.steps_run / run_with,
        "no pruning (training steps)",
        note=(f"{pruned.pruned}/{TRIALS} pruned; best final val loss "
              f"{pruned.best_value:.4f} with, {unpruned.best_value:.4f} without"),
        pruned_trials=pruned.pruned, best_with=pruned.best_value,
        best_without=unpruned.best_value, steps_with=pruned.steps_run,
        steps_without=unpruned.steps_run,
    )
    result["pruning_best"] = report(
        "sweep-pruning-best", pruned.best_value, "final val loss (best, with pruning)",
        pruned.best_value / unpruned.best_value, f"best without pruning {unpruned.best_value:.4f}",
        note=f"trial {pruned.best_trial} with, trial {unpruned.best_trial} without",
    )
    return result
