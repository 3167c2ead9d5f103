"""Setting a workload's target AlgoPerf's way, reproducibly (``python -m
core.tools.scorecard.targets [NAME ...]`` rewrites resources/workloads/suite.json).

The reference optimizers (`REFERENCES`: AdamW, NAdamW, SGD with Nesterov momentum, heavy-ball)
each try `LR_POINTS` learning rates on a log grid over their catalog search range, all as runs
of one race of the lab for its ``steps`` (the search budget). The setting with the lowest
validation loss reached wins; it is rerun on `SEEDS` seeds, and the target is the median of
the lowest validation loss each seed reached. The budget is `BUDGET_MULTIPLE` × the median
steps that setting needed to reach the target (at most the search budget × that multiple).
Each held-out variant's target is the same winning setting's median on the variant.

A 2-D function's minimum is known (0 for the shipped ones) and its lowest loss is only rounding
(1e-38 on a quadratic), so a function workload's target is the fixed `FUNCTION_TARGET` instead,
and the fastest reference setting to reach it sets the budget.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import replace

import numpy as np

from core.lab.format import Lab, RunSpec, load_lab, save_lab
from core.tools.scorecard.workloads import (
    HELDOUT_KINDS,
    SUITE_DIR,
    SUITE_FILE,
    heldout_lab,
    time_to_target,
)

REFERENCES: dict[str, tuple[str, dict]] = {
    "AdamW": ("adamw", {}),
    "NAdamW": ("nadam", {"decoupled_weight_decay": True}),
    "SGD Nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "Heavy-ball": ("sgd", {"momentum": 0.9}),
}
LR_POINTS = 5
SEEDS = 3
BUDGET_MULTIPLE = 3.0
FUNCTION_TARGET = 1e-3


def _lr_grid(optimizer: str) -> list[float]:
    from core.optim.catalog import get_optimizer_info

    hp = next(h for h in get_optimizer_info(optimizer).hyperparams if h.name == "lr")
    low, high = hp.search
    return [float(v) for v in np.geomspace(low, high, LR_POINTS)]


def _best_values(lab: Lab, runs: list[RunSpec], steps: int) -> list[float]:
    return [o.best for o in time_to_target(lab, runs, -math.inf, steps)]


def set_target(lab: Lab) -> dict:
    """The suite.json entry of ``lab``: target, budget, provenance, held-out targets."""
    runs, settings = [], []
    for title, (optimizer, fixed) in REFERENCES.items():
        for lr in _lr_grid(optimizer):
            runs.append(RunSpec(f"{title} lr {lr:.3g}", optimizer, {**fixed, "lr": lr}))
            settings.append((title, optimizer, {**fixed, "lr": lr}))
    if lab.is_network:
        values = _best_values(lab, runs, lab.steps)
    else:  # the fastest to the fixed target wins
        values = [o.steps if o.steps is not None else math.inf
                  for o in time_to_target(lab, runs, FUNCTION_TARGET, lab.steps)]
    i = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
    title, optimizer, params = settings[i]
    run = RunSpec(title, optimizer, params)
    seeded = [_best_values(replace(lab, seed=lab.seed + s), [run], lab.steps)[0]
              for s in range(SEEDS)]
    target = float(statistics.median(seeded)) if lab.is_network else FUNCTION_TARGET
    needed = [o.steps for s in range(SEEDS)
              for o in time_to_target(replace(lab, seed=lab.seed + s), [run], target, lab.steps)
              if o.steps is not None]
    budget = int(math.ceil(BUDGET_MULTIPLE * statistics.median(needed))) if needed else lab.steps
    heldout = {}
    for kind in HELDOUT_KINDS:
        variant = heldout_lab(lab, kind)
        if variant is None:
            continue
        if not lab.is_network:
            heldout[kind] = FUNCTION_TARGET
            continue
        per_seed = [_best_values(replace(variant, seed=variant.seed + s), [run], lab.steps)[0]
                    for s in range(SEEDS)]
        heldout[kind] = float(statistics.median(per_seed))
    return {"target": target, "budget": max(1, budget), "metric": _metric(lab),
            "provenance": {"reference": title, "optimizer": optimizer, "params": params,
                           "search": f"{len(runs)} settings ({LR_POINTS} lrs each of "
                                     f"{', '.join(REFERENCES)}) for {lab.steps} steps",
                           "seeds": SEEDS, "seed_values": seeded,
                           "steps_needed": needed, "budget_multiple": BUDGET_MULTIPLE,
                           "command": "python -m core.tools.scorecard.targets"},
            "heldout": heldout}


def _metric(lab: Lab) -> str:
    return "validation loss" if lab.is_network else "loss"


def main(names: list[str]) -> int:
    path = SUITE_DIR / SUITE_FILE
    suite = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"workloads": {}}
    labs = sorted(p.name[: -len(".lab.json")] for p in SUITE_DIR.glob("*.lab.json"))
    for name in names or labs:
        lab_path = SUITE_DIR / f"{name}.lab.json"
        lab = load_lab(lab_path)
        entry = set_target(lab)
        prov = entry["provenance"]
        # The lab's one run is the reference that set the target: `main.py run` races it.
        save_lab(replace(lab, runs=(RunSpec(f"Reference: {prov['reference']}",
                                            prov["optimizer"], prov["params"]),)), lab_path)
        suite["workloads"][name] = entry
        print(f"{name}: target {entry['target']:.4g} budget {entry['budget']} "
              f"({entry['provenance']['reference']} {entry['provenance']['params']}) "
              f"held-out {entry['heldout']}", flush=True)
        suite["workloads"] = dict(sorted(suite["workloads"].items()))
        path.write_text(json.dumps(suite, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
