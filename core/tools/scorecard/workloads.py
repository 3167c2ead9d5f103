"""The scorecard's workloads: the shipped suite, its held-out variants, and time to target.

A workload is a lab file under resources/workloads/ (valid for ``main.py run``: its one run is
the reference optimizer that set the target) plus its entry in the sidecar
resources/workloads/suite.json: the validation ``target`` (validation loss; a function's loss),
the step ``budget``, the target's ``provenance`` (how core/tools/scorecard/targets.py set it)
and the targets of its held-out variants. The sidecar keeps the lab files strict (core/lab/
format.py refuses unknown keys) and the targets in one place a reviewer can read.

Held-out variants (`heldout_variant`) are made from the base lab: another activation (relu <->
tanh), the data's noise ×2, the batch size ÷4, another seed of the data; a function workload's
variant starts from another point. An entry that misses one voids its time on the base
(core/tools/scorecard/profiles.py).

`time_to_target` trains K runs as ONE race of the engine (same data, initial weights and
mini-batches; core/engine/factory.py) and reports each run's first step whose validation loss is
at or below the target, in steps and in gradient evaluations: a run's optimizer pays for what
it computes, by the engine's `RunUpdate` flags (core/engine/training_step.py) — one gradient per
step, +1 for a closure (SAM's second gradient), +1 for a create_graph backward (a
Hessian-vector product costs about one more). L-BFGS may call its closure several times in a
step; it is counted as 2 (a lower bound, docs/scorecard.md says so). A run that diverges or
whose optimizer fails is a miss with its reason; so is a target never reached. Each run's
`Outcome` also keeps its curve (the monitored value at each evaluation while it lived), which
core/tools/scorecard/run.py stores with the trial for the window's trials plot.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, load_lab, validate_lab

SUITE_DIR = Path(__file__).resolve().parents[3] / "resources" / "workloads"
SUITE_FILE = "suite.json"
HELDOUT_KINDS = ("activation", "noise", "batch", "data_seed")


@dataclass(frozen=True)
class Workload:
    """One problem of the suite: a lab, its validation target and its step budget."""

    name: str
    lab: Lab
    target: float
    budget: int
    provenance: dict = field(default_factory=dict, compare=False)
    heldout: dict = field(default_factory=dict, compare=False)  # variant kind -> its target
    base: str | None = None  # a held-out variant: the base workload's name


@dataclass
class Outcome:
    """One trial's time to target; ``steps`` None for a miss, with ``reason``."""

    steps: int | None
    grad_evals: int | None
    evals_per_step: int
    best: float  # the lowest monitored value it reached (inf: none measured)
    wall_s: float  # the race's wall time shared equally by its runs
    reason: str | None = None
    # (step, value) at each evaluation while the run lived, up to the race's last record;
    # value None where it was not finite. Kept out of `to_dict` (scorecard.json's rows).
    curve: list = field(default_factory=list, compare=False)

    def to_dict(self) -> dict:
        return {"steps": self.steps, "grad_evals": self.grad_evals,
                "evals_per_step": self.evals_per_step,
                "best": self.best if math.isfinite(self.best) else None,
                "wall_s": self.wall_s, "reason": self.reason}


def load_suite(folder: str | Path = SUITE_DIR) -> dict[str, Workload]:
    """Every workload of ``folder``'s suite.json, its lab read from ``NAME.lab.json``."""
    folder = Path(folder)
    path = folder / SUITE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LabError(str(path), f"cannot read the suite: {exc}") from None
    suite = {}
    for name, entry in data.get("workloads", {}).items():
        where = f"{path.name}: workloads.{name}"
        target, budget = entry.get("target"), entry.get("budget")
        if not isinstance(target, (int, float)) or not math.isfinite(target):
            raise LabError(where, f"needs a finite number 'target', got {target!r}")
        if not isinstance(budget, int) or budget < 1:
            raise LabError(where, f"needs a whole number 'budget' >= 1, got {budget!r}")
        lab = load_lab(folder / f"{name}.lab.json")
        suite[name] = Workload(name, lab, float(target), budget,
                               dict(entry.get("provenance", {})),
                               dict(entry.get("heldout", {})))
    return suite


def pick(suite: dict[str, Workload], names: list[str]) -> list[Workload]:
    """The named workloads, or a `LabError` naming --workloads and the choices."""
    unknown = [n for n in names if n not in suite]
    if unknown:
        raise LabError("--workloads", f"unknown workload {unknown[0]!r}; choose from: "
                                      f"{', '.join(suite)}")
    if not names:
        raise LabError("--workloads", "name at least one workload")
    return [suite[n] for n in names]


def heldout_lab(lab: Lab, kind: str) -> Lab | None:
    """``lab`` changed the held-out way ``kind``, or None where the change does not apply."""
    problem = lab.problem
    if not isinstance(problem, NetworkProblem):
        if kind != "data_seed":
            return None
        start = problem.start or (-1.5, 2.0)
        return validate_lab(replace(lab, problem=replace(
            problem, start=(start[0] * 0.8, start[1] * 1.1))))
    if kind == "activation":
        swap = {"relu": "tanh", "tanh": "relu"}
        layers = [dict(layer, act=swap.get(layer["act"], layer["act"])) if "act" in layer
                  else layer for layer in problem.model["layers"]]
        if layers == list(problem.model["layers"]):
            return None  # no relu or tanh to swap (a linear model): no such variant
        new = replace(problem, model={**problem.model, "layers": layers})
    elif kind == "noise":
        noise = problem.dataset.get("noise")
        if not noise:
            return None
        new = replace(problem, dataset={**problem.dataset, "noise": noise * 2})
    elif kind == "batch":
        if not problem.batch_size or problem.batch_size < 4:
            return None
        new = replace(problem, batch_size=problem.batch_size // 4)
    elif kind == "data_seed":
        seed = problem.dataset.get("seed", lab.seed)
        new = replace(problem, dataset={**problem.dataset, "seed": seed + 1000})
    else:
        raise LabError("heldout", f"unknown variant {kind!r}; one of {', '.join(HELDOUT_KINDS)}")
    return validate_lab(replace(lab, problem=new))


def heldout_variants(workload: Workload) -> list[Workload]:
    """The variants of ``workload`` that have a target in suite.json (``heldout``)."""
    out = []
    for kind, target in workload.heldout.items():
        lab = heldout_lab(workload.lab, kind)
        if lab is not None:
            out.append(Workload(f"{workload.name}~{kind}", lab, float(target), workload.budget,
                                {"variant of": workload.name}, base=workload.name))
    return out


def evals_per_step(optimizer: str) -> int:
    """Gradient evaluations one step of ``optimizer`` costs, from its `RunUpdate` flags."""
    from core.engine.training_step import RunUpdate

    update = RunUpdate.of(optimizer)
    return 1 + int(update.closure) + int(update.create_graph)


def time_to_target(lab: Lab, runs: list[RunSpec], target: float, steps: int,
                   stop: threading.Event | None = None) -> list[Outcome]:
    """Train ``runs`` side by side as one race of ``lab`` for ``steps`` steps; each run's first
    step whose validation loss (a function's loss) is <= ``target``. Stops early once every run
    reached it or stopped."""
    from core.engine.factory import make_race

    race_lab = validate_lab(replace(lab, steps=steps,
                                    runs=tuple(replace(r, label=f"{i}: {r.label}", enabled=True, color=None)
                                               for i, r in enumerate(runs))))
    race = make_race(race_lab)
    k = len(runs)
    reached: list[int | None] = [None] * k
    best = [math.inf] * k
    curves: list[list] = [[] for _ in range(k)]
    started = time.perf_counter()
    for record in race.records(stop):
        values = _monitored(record, race_lab.is_network)
        if values is not None:
            for i in range(k):
                value = float(values[i])
                if race.alive[i]:
                    curves[i].append((int(record.step), value if math.isfinite(value) else None))
                if reached[i] is None and race.alive[i] and math.isfinite(value):
                    best[i] = min(best[i], value)
                    if value <= target:
                        reached[i] = int(record.step)
        if all(reached[i] is not None or not race.alive[i] for i in range(k)):
            break
    wall = (time.perf_counter() - started) / max(1, k)
    out = []
    for i, run in enumerate(runs):
        cost = evals_per_step(run.optimizer)
        event = race.diverged[i]
        if reached[i] is not None:
            out.append(Outcome(reached[i], reached[i] * cost, cost, best[i], wall,
                               curve=curves[i]))
            continue
        if event is not None:
            reason = f"{event.verb} at step {event.step}: {event.reason}"
        elif stop is not None and stop.is_set():
            reason = "cancelled"
        else:
            reason = f"target {target:.4g} not reached in {steps} steps (best {best[i]:.4g})"
        out.append(Outcome(None, None, cost, best[i], wall, reason, curve=curves[i]))
    return out


def _monitored(record, network: bool):
    """The value compared with the target at this step, one per run, or None (no evaluation)."""
    if not network:
        return record.loss
    ev = record.evaluation
    if ev is None:
        return None
    return (ev.val or ev.train)["loss"]
