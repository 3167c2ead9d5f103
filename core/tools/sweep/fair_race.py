"""The fair race: every optimizer tuned with the same trial budget, seeds, sampler seed and
objective, then raced at its best configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from core.errors import LabError
from core.lab.format import Lab, RunSpec, validate_lab
from core.tools.sweep.run import best_run, run_sweep
from core.tools.sweep.space import param_error
from core.tools.sweep.spec import SweepProgress, SweepSpec


def fair_race(
    lab: Lab,
    optimizers: Sequence[str],
    budget: int,
    seeds: int = 1,
    *,
    sampler: str = "tpe",
    objective: str = "final_val_loss",
    target: float | None = None,
    params: Sequence[str] = (),
    prune: bool = True,
    storage: str | None = None,
    study_prefix: str | None = None,
    stop: threading.Event | None = None,
    on_progress: Callable[[str, SweepProgress], None] | None = None,
) -> Lab:
    """Tune every optimizer with the same trial budget, seeds, sampler seed and objective.

    Each optimizer starts from the lab's first run that uses it (its other hyperparameters and
    schedule kept) or from the registry defaults; ``params`` flags apply to the optimizers that
    have that hyperparameter. Returns the lab with one run per optimizer, "<Title> (tuned)", at
    its best configuration: race it over several seeds to compare them fairly. If ``stop`` ends
    it early, the optimizers tuned so far come back (an optimizer with no finished trial keeps
    its starting configuration). Each optimizer's study runs until it holds ``budget`` finished
    trials (`SweepSpec.total`), so on a saved storage re-running a fair race completes it instead
    of giving one optimizer more trials than another. Network labs come back with
    ``problem.seeds = seeds`` (capped at the lab format's maximum): their race shows mean ± std.
    """
    from core.optim.catalog import get_optimizer_info

    if not optimizers:
        raise LabError("optimizers", "pick at least one optimizer for a fair race")
    if not (isinstance(budget, int) and 1 <= budget <= 100_000):
        raise LabError("--trials-per-optimizer",
                       f"must be a whole number in [1, 100000], got {budget!r}")
    infos = [get_optimizer_info(name, field="optimizers") for name in optimizers]
    if len({i.name for i in infos}) != len(infos):
        raise LabError("optimizers", "each optimizer may appear once")
    for text in params:
        name = text.partition("=")[0].strip()
        if not any(name in {hp.name for hp in info.hyperparams} for info in infos):
            raise param_error(text, f"none of {', '.join(optimizers)} has {name!r}")
    tuned: list[RunSpec] = []
    for info in infos:
        base = next((r for r in lab.runs if r.optimizer == info.name), None)
        if base is None:
            base = RunSpec(info.title, info.name, {})
        base = replace(base, enabled=True)
        own = tuple(t for t in params
                    if t.partition("=")[0].strip() in {hp.name for hp in info.hyperparams})
        spec = SweepSpec(
            lab=replace(lab, runs=(base,)), run=base.label, params=own, trials=budget,
            total=budget,
            sampler=sampler, objective=objective, target=target, seeds=seeds, prune=prune,
            storage=storage,
            study=f"{study_prefix or lab.name}:fair:{info.name}:{objective}",
        )
        best: dict | None = None
        final = None
        for progress in run_sweep(spec, stop):
            final = progress
            if on_progress is not None:
                on_progress(info.name, progress)
        if final is not None and final.best_params is not None:
            best = final.best_params
        label = f"{info.title} (tuned)"
        tuned.append(best_run(spec, best, label) if best is not None
                     else replace(base, label=label))
        if stop is not None and stop.is_set():
            break
    problem = lab.problem
    if lab.is_network and seeds > 1:
        from core.lab.format import MAX_SEEDS as LAB_MAX_SEEDS

        problem = replace(problem, seeds=min(seeds, LAB_MAX_SEEDS))
    return validate_lab(replace(lab, name=f"{lab.name} (fair race)", problem=problem,
                                runs=tuple(tuned)))
