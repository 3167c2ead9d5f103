"""What a sweep is asked to do, what it reports, and the checks of what a user typed.

`SweepSpec` is everything a sweep needs (the GUI and ``main.py sweep`` build one); `TrialResult`
is one finished trial and `SweepProgress` one throttled report of a running sweep. `check_spec`
and `check_sampler_fits` refuse bad settings with a `LabError` naming the flag and the allowed
range, before any trial starts; `pick_run` finds the run a sweep tunes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import LabError
from core.lab.format import Lab, RunSpec
from core.tools.sweep.objective import OBJECTIVES
from core.tools.sweep.space import ParamRange

SAMPLERS = ("grid", "random", "tpe", "cmaes")
DEFAULT_BATCH = 8
MAX_BATCH = 32  # a lab holds at most 32 runs
MAX_SEEDS = 100
MAX_GRID_SIZE = 100_000  # more points than any sweep will visit: a typo, not a plan


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs; the GUI and ``main.py sweep`` build one of these."""

    lab: Lab
    run: str | None = None  # label of the run to tune (default: the first enabled run)
    params: tuple[str, ...] = ()  # --param flags; empty: the run's lr over its registry range
    trials: int = 20  # new trials for this call (a resumed study keeps its old ones)
    sampler: str = "tpe"
    objective: str = "final_val_loss"
    target: float | None = None  # for steps_to_target
    seeds: int = 1
    prune: bool = True
    storage: str | None = None  # None: in memory; a URL or a SQLite file path
    study: str | None = None  # default: "<lab name>:<run>:<objective>"
    batch: int = DEFAULT_BATCH  # trials trained side by side
    sampler_seed: int | None = None  # default: the lab's seed (reproducible sweeps)
    # Run until the study holds this many finished (complete + pruned) trials, counting earlier
    # calls and other workers; None: ``trials`` new ones. Re-running completes a killed sweep.
    total: int | None = None


@dataclass(frozen=True)
class TrialResult:
    """One finished trial, as the trials table and the CLI show it."""

    number: int
    state: str  # "complete", "pruned", "failed" or "cancelled"
    value: float | None
    params: dict
    seed_values: tuple[float, ...] = ()
    pruned_at: int | None = None  # the step (within its seed) where it was stopped
    steps_run: int = 0  # training steps it ran, over all seeds
    duration_s: float = 0.0  # since its batch started (trials of a batch train together)
    message: str = ""


@dataclass(frozen=True)
class SweepProgress:
    study_name: str
    trials_planned: int  # this call's trials
    complete: int  # this call's, by state
    pruned: int
    failed: int
    running: int
    study_trials: int  # finished trials in the study (earlier calls and other workers too)
    best_value: float | None
    best_params: dict | None
    best_trial: int | None
    elapsed_s: float
    eta_s: float | None
    fraction: float  # 0..1 of this call's work
    finished: tuple[TrialResult, ...] = ()  # trials finished since the previous progress
    final: bool = False
    cancelled: bool = False
    steps_run: int = 0
    steps_saved: int = 0  # steps pruned trials did not run

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed


def pick_run(lab: Lab, label: str | None) -> RunSpec:
    runs = lab.enabled_runs()
    if not runs:
        raise LabError("runs", "the lab has no enabled run to tune")
    if label is None:
        return runs[0]
    return lab.run_labelled(label)


def check_spec(spec: SweepSpec) -> None:
    if spec.lab.problem.kind == "rl":
        raise LabError("problem.kind", "sweeps of rl labs are not supported yet (their objective "
                       "would be a return, not a loss); race the settings as runs of one lab")
    if spec.sampler not in SAMPLERS:
        raise LabError("--sampler", f"must be one of {', '.join(SAMPLERS)}, got {spec.sampler!r}")
    if spec.objective not in OBJECTIVES:
        raise LabError("--objective",
                       f"must be one of {', '.join(OBJECTIVES)}, got {spec.objective!r}")
    if spec.objective == "steps_to_target":
        if spec.target is None or not math.isfinite(spec.target):
            raise LabError("--target", "steps_to_target needs a finite --target loss")
    if not (isinstance(spec.trials, int) and 1 <= spec.trials <= 100_000):
        raise LabError("--trials", f"must be a whole number in [1, 100000], got {spec.trials!r}")
    if not (isinstance(spec.seeds, int) and 1 <= spec.seeds <= MAX_SEEDS):
        raise LabError("--seeds", f"must be a whole number in [1, {MAX_SEEDS}], got {spec.seeds!r}")
    if not (isinstance(spec.batch, int) and 1 <= spec.batch <= MAX_BATCH):
        raise LabError("--batch", f"must be a whole number in [1, {MAX_BATCH}], got {spec.batch!r}")
    if spec.total is not None and not (isinstance(spec.total, int)
                                       and 1 <= spec.total <= 100_000):
        raise LabError("--total", f"must be a whole number in [1, 100000], got {spec.total!r}")


def check_sampler_fits(sampler: str, space: Sequence[ParamRange]) -> None:
    if sampler == "cmaes":
        lists = [p.name for p in space if p.kind == "categorical"]
        if lists:
            raise LabError(
                "--sampler",
                f"cmaes searches continuous ranges only, but {', '.join(lists)} is a list of "
                "values; use tpe or random, or give a LOW:HIGH range",
            )
        if len(space) < 2:
            # Optuna's CMA-ES silently falls back to random sampling in one dimension.
            raise LabError(
                "--sampler",
                f"cmaes needs at least 2 ranged parameters, got {len(space)} "
                f"({', '.join(p.name for p in space)}); add one with --param or use tpe",
            )
    if sampler == "grid":
        size = math.prod(len(p.grid_values()) for p in space)
        if size > MAX_GRID_SIZE:
            raise LabError(
                "--sampler",
                f"the grid has {size} points (allowed: at most {MAX_GRID_SIZE}); give fewer "
                "points per range (LOW:HIGH:N) or use tpe or random",
            )
