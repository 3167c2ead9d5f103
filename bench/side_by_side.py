"""side-by-side: the network engine training 8 runs at once vs 8 plain models one after another.

Ours: ``core.engine.network_race.NetworkRace`` on 8 runs of a 2-16-16-2 MLP, 512 moons points, full batch —
the batched path (core/engine/stacked.py): one forward/backward for all runs (bmm over stacked weights),
and each run's own torch.optim optimizer over its flat row, stepped through ONE torch.optim
optimizer per optimizer type with one param group per run (fused CPU kernels for Adam, AdamW,
SGD, Adagrad). Evaluation runs at the first and last step only, since the baseline evaluates
nothing.

Baseline: what one writes by hand — 8 nn.Sequential models (same initial weights) and 8
torch.optim optimizers, stepped in turn: forward, loss, zero_grad, backward, step.

Two lines: ``side-by-side`` (8 Adam runs with different learning rates; goal ≥ 4×) and
``side-by-side-mixed`` (8 different optimizer types; goal ≥ 1.8×), plus the 2-64-64-2 variant
of the first (closer to compute-bound). One thread for both sides, interleaved, best of REPEATS.
Value: aggregate run-steps per second of ours; ratio: baseline time / our time.
"""

from __future__ import annotations

import copy
import time

import torch

from bench.common import report
from core.engine.devices import configure_threads
from core.engine.factory import make_race
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

STEPS = 300
REPEATS = 3
SAME = [RunSpec(f"Adam {i}", "adam", {"lr": 0.002 * (i + 1)}) for i in range(8)]
MIXED = [
    RunSpec("SGD", "sgd", {"lr": 0.1}),
    RunSpec("Momentum", "sgd", {"lr": 0.05, "momentum": 0.9}),
    RunSpec("Adagrad", "adagrad", {"lr": 0.05}),
    RunSpec("RMSprop", "rmsprop", {"lr": 0.003}),
    RunSpec("Adam", "adam", {"lr": 0.01}),
    RunSpec("AdamW", "adamw", {"lr": 0.01}),
    RunSpec("NAdam", "nadam", {"lr": 0.01}),
    RunSpec("RAdam", "radam", {"lr": 0.01}),
]


def _lab(runs, width: int) -> Lab:
    model = {"layers": [{"linear": width}, {"act": "relu"}, {"linear": width}, {"act": "relu"},
                        {"linear": 2}]}
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.0},
        model=model, batch_size=None, eval_every=STEPS, device="cpu",
    )
    return validate_lab(Lab(name="bench", seed=0, steps=STEPS, problem=problem, runs=tuple(runs)))


def _ours(lab: Lab) -> float:
    race = make_race(lab)
    assert race.stack is not None, "the batched path did not engage"
    started = time.perf_counter()
    for _ in race.records():
        pass
    return time.perf_counter() - started


def _baseline(lab: Lab) -> float:
    race = make_race(_lab(lab.runs[:1], _width(lab)))  # the same data and initial weights
    x, y = race.x_train, race.y_train
    initial = race.models[0]
    models = [copy.deepcopy(initial) for _ in lab.runs]
    optimizers = []
    for run, model in zip(lab.runs, models):
        cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
               "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
               "adamw": torch.optim.AdamW, "nadam": torch.optim.NAdam,
               "radam": torch.optim.RAdam}[run.optimizer]
        optimizers.append(cls(model.parameters(), **run.params))
    started = time.perf_counter()
    for _ in range(STEPS + 1):
        for model, opt in zip(models, optimizers):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - started


def _width(lab: Lab) -> int:
    return lab.problem.model["layers"][0]["linear"]


def _measure(runs, width: int) -> tuple[float, float]:
    lab = _lab(runs, width)
    ours, base = [], []
    for _ in range(REPEATS):
        ours.append(_ours(lab))
        base.append(_baseline(lab))
    return min(ours), min(base)


def run() -> dict:
    configure_threads()
    results = {}
    steps = len(SAME) * (STEPS + 1)
    ours, base = _measure(SAME, 16)
    results["side-by-side"] = report(
        "side-by-side", steps / ours, "run-steps/s", base / ours,
        "8 plain models + optimizers in turn", note="8 Adam runs, 2-16-16-2, 512 moons, full batch",
        ours_s=ours, baseline_s=base,
    )
    ours, base = _measure(MIXED, 16)
    results["side-by-side-mixed"] = report(
        "side-by-side-mixed", steps / ours, "run-steps/s", base / ours,
        "8 plain models + optimizers in turn", note="8 optimizer types, 2-16-16-2",
        ours_s=ours, baseline_s=base,
    )
    ours, base = _measure(SAME, 64)
    results["side-by-side-64"] = report(
        "side-by-side-64", steps / ours, "run-steps/s", base / ours,
        "8 plain models + optimizers in turn", note="8 Adam runs, 2-64-64-2",
        ours_s=ours, baseline_s=base,
    )
    return results
