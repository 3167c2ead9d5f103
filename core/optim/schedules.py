"""The learning-rate schedule registry over ``torch.optim.lr_scheduler``, and the `Schedule` a run holds.

Longer than 600 lines because the registry holds one entry per torch scheduler (its
hyperparameters, their ranges and the ones derived from the race's length); `Schedule` is short.

A lab names a schedule in snake case (``"cosine"``, ``"onecycle"``, ``"warmup_cosine"``) with a few
hyperparameters; `Schedule` builds the real torch scheduler from them, so the lr curve a run sees is
exactly torch's. The engine calls `Schedule.step` once after every optimizer step: a lab of N steps
makes N updates and N schedule steps, and ``preview`` shows the same curve without training.

Time convention (same as the lab's): the lr "at step t" is the lr in force for the update that
takes the run from step t to step t + 1; ``t = 0`` is before any schedule step.

Derived defaults: hyperparameters whose default is ``None`` are filled in from the lab when the
schedule is built (see each `HyperParam.derived`): e.g. a cosine's ``T_max`` is the lab's number of
steps, so "cosine" alone anneals over the whole run.

Choices made here (torch leaves them to the caller):

* ``onecycle`` and ``cyclic`` set ``cycle_momentum`` to False by default (torch: True), because
  cycling momentum needs an optimizer with ``momentum`` or ``betas``; with True, Adagrad, Rprop,
  L-BFGS, ... would fail. Turning it on for such an optimizer is refused with a clear message.
* ``onecycle`` is given ``total_steps + 1`` positions: torch's 1cycle lands on its final lr at
  position ``total_steps − 1`` and raises when stepped past ``total_steps``; with one more
  position the curve ends exactly at the minimum lr after the run's last update and stepping
  exactly ``total_steps`` times is valid. If the lab runs longer than the cycle, the lr stays
  at the end of the cycle instead of raising.
* ``cyclic``: ``max_lr`` defaults to the optimizer's lr and ``base_lr`` to a tenth of ``max_lr``,
  so the chosen lr is the peak and the run starts at the bottom of the cycle.
* ``plateau`` watches the training loss (mode "min"); ``preview`` cannot know the future loss,
  so it assumes a loss that never improves (a constant): the preview shows the earliest drops
  possible. The first loss sets the baseline, so the first drop comes at step ``patience + 2``,
  then one every ``cooldown + patience + 1`` steps.
* ``warmup_cosine`` is ``SequentialLR([LinearLR(start_factor → 1 over warmup_steps),
  CosineAnnealingLR(T_max = total_steps − warmup_steps, eta_min)])``; with ``warmup_steps = 0`` it
  is the plain cosine.
* ``constant`` builds no scheduler at all: the optimizer's lr stays as it is.
* A negative lr is clamped to 0 after each step: torch's recursive formulas round a schedule
  that should land on exactly 0 to about −1e-18, and a negative lr would make the run climb.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.optim import lr_scheduler

from core.errors import LabError
from core.optim.hyperparams import HyperParam, format_number, show_value, validate_params

# The loss ``preview`` feeds to a plateau schedule: never improving, see the module docstring.
PREVIEW_LOSS = 1.0


@dataclass(frozen=True)
class ScheduleInfo:
    """One schedule: its name in lab files, a title, its hyperparameters and a one-line summary."""

    name: str
    title: str
    hyperparams: tuple[HyperParam, ...]
    description: str

    def defaults(self) -> dict:
        """The hyperparameters with a fixed default (derived ones, default None, left out)."""
        return {hp.name: hp.default for hp in self.hyperparams if hp.default is not None}


def _eta_min() -> HyperParam:
    return HyperParam(
        "eta_min", 0.0, "float", low=0.0, log=True, search=(1e-7, 1e-2),
        tooltip="The smallest learning rate the cosine reaches.",
    )


def _gamma(default: float | None, tooltip: str, derived: str = "") -> HyperParam:
    return HyperParam(
        "gamma", default, "float", low=0.0, high=1.0, low_inclusive=False,
        search=(0.1, 0.99), tooltip=tooltip, derived=derived,
    )


def _total_iters(tooltip: str) -> HyperParam:
    return HyperParam(
        "total_iters", None, "int", low=1, derived="the lab's number of steps", tooltip=tooltip,
    )


def _cycle_momentum() -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "cycle_momentum", False, "bool",
            tooltip="Also cycle the momentum (or Adam's β₁) opposite to the lr; needs an optimizer with momentum or betas.",
        ),
    )


def _momentum_bounds(base: float, peak: float) -> tuple[HyperParam, ...]:
    return (
        HyperParam(
            "base_momentum", base, "float", low=0.0, high=1.0, high_inclusive=False,
            tooltip="With cycle_momentum: the momentum used where the lr peaks.",
        ),
        HyperParam(
            "max_momentum", peak, "float", low=0.0, high=1.0, high_inclusive=False,
            tooltip="With cycle_momentum: the momentum used where the lr is lowest.",
        ),
    )


_INFOS: list[ScheduleInfo] = [
    ScheduleInfo("constant", "Constant", (), "No schedule: the learning rate stays as set."),
    ScheduleInfo(
        "step", "Step decay",
        (
            HyperParam(
                "step_size", None, "int", low=1, derived="a third of the lab's steps",
                tooltip="Multiply the lr by gamma every step_size steps.",
            ),
            _gamma(0.1, "The factor the lr is multiplied by at every drop."),
        ),
        "Drop the lr by a factor gamma every step_size steps (StepLR).",
    ),
    ScheduleInfo(
        "multistep", "Multi-step decay",
        (
            HyperParam(
                "milestones", None, "int_list", low=1,
                derived="half and three quarters of the lab's steps",
                tooltip="The steps at which the lr is multiplied by gamma, in increasing order.",
            ),
            _gamma(0.1, "The factor the lr is multiplied by at every milestone."),
        ),
        "Drop the lr by a factor gamma at each milestone step (MultiStepLR).",
    ),
    ScheduleInfo(
        "exponential", "Exponential decay",
        (
            _gamma(
                None, "The factor the lr is multiplied by after every step.",
                derived="the factor that brings the lr to 1% of its start by the last step",
            ),
        ),
        "Multiply the lr by gamma after every step (ExponentialLR).",
    ),
    ScheduleInfo(
        "cosine", "Cosine annealing",
        (
            HyperParam(
                "T_max", None, "int", low=1, derived="the lab's number of steps",
                tooltip="Steps for the lr to fall along half a cosine from its start to eta_min.",
            ),
            _eta_min(),
        ),
        "Lower the lr along half a cosine wave to eta_min (CosineAnnealingLR).",
    ),
    ScheduleInfo(
        "cosine_warm_restarts", "Cosine with warm restarts",
        (
            HyperParam(
                "T_0", None, "int", low=1, derived="a quarter of the lab's steps",
                tooltip="Steps until the first restart of the cosine.",
            ),
            HyperParam(
                "T_mult", 1, "int", low=1, search=(1, 3),
                tooltip="Each cycle is T_mult times longer than the one before.",
            ),
            _eta_min(),
        ),
        "Cosine annealing that jumps back to the full lr at every restart (SGDR).",
    ),
    ScheduleInfo(
        "linear", "Linear",
        (
            HyperParam(
                # Bounded away from 0: torch's recursive LinearLR divides by total_iters ×
                # start_factor, which overflows to inf (and the lr to NaN) for denormal factors.
                "start_factor", 1.0 / 3, "float", low=1e-8, high=1.0,
                search=(0.01, 1.0), tooltip="The lr starts at start_factor × the optimizer's lr.",
            ),
            HyperParam(
                "end_factor", 1.0, "float", low=0.0, high=1.0, search=(0.0, 1.0),
                tooltip="The lr ends at end_factor × the optimizer's lr.",
            ),
            _total_iters("Steps over which the factor moves from start_factor to end_factor."),
        ),
        "Move the lr linearly between two multiples of the optimizer's lr (LinearLR).",
    ),
    ScheduleInfo(
        "onecycle", "One-cycle",
        (
            HyperParam(
                "max_lr", None, "float", low=0.0, log=True, search=(1e-4, 1.0),
                derived="the optimizer's lr",
                tooltip="The peak lr of the cycle; it starts at max_lr / div_factor.",
            ),
            HyperParam(
                "total_steps", None, "int", low=1, derived="the lab's number of steps",
                tooltip="Steps the whole cycle takes; afterwards the lr stays at its final value.",
            ),
            HyperParam(
                "pct_start", 0.3, "float", low=0.0, high=1.0, search=(0.1, 0.5),
                tooltip="Fraction of the cycle spent raising the lr to max_lr.",
            ),
            HyperParam(
                "anneal_strategy", "cos", "choice", choices=("cos", "linear"),
                tooltip="Whether the lr rises and falls along a cosine or a straight line.",
            ),
            HyperParam(
                # >= 1, not just > 0: a tiny divisor overflows the lr to inf.
                "div_factor", 25.0, "float", low=1.0, log=True,
                search=(2.0, 100.0), tooltip="The lr starts at max_lr / div_factor.",
            ),
            HyperParam(
                "final_div_factor", 1e4, "float", low=1.0, log=True,
                search=(10.0, 1e5),
                tooltip="The lr ends at the starting lr / final_div_factor.",
            ),
            HyperParam(
                "three_phase", False, "bool",
                tooltip="Go up, back down to the start symmetrically, then annihilate (instead of up then down).",
            ),
            *_cycle_momentum(),
            *_momentum_bounds(0.85, 0.95),
        ),
        "Warm up to max_lr, then anneal far below the start (OneCycleLR, super-convergence).",
    ),
    ScheduleInfo(
        "cyclic", "Cyclic",
        (
            HyperParam(
                "base_lr", None, "float", low=0.0, log=True, search=(1e-5, 1e-1),
                derived="a tenth of max_lr", tooltip="The bottom of the cycle.",
            ),
            HyperParam(
                "max_lr", None, "float", low=0.0, log=True, search=(1e-4, 1.0),
                derived="the optimizer's lr", tooltip="The top of the cycle.",
            ),
            HyperParam(
                "step_size_up", None, "int", low=1, derived="a quarter of the lab's steps",
                tooltip="Steps from the bottom to the top of a cycle.",
            ),
            HyperParam(
                "step_size_down", None, "int", low=1, derived="step_size_up",
                tooltip="Steps from the top back to the bottom of a cycle.",
            ),
            HyperParam(
                "mode", "triangular", "choice", choices=("triangular", "triangular2", "exp_range"),
                tooltip="triangular: same height every cycle; triangular2: half the height each cycle; exp_range: height × gamma^step.",
            ),
            _gamma(1.0, "In exp_range mode, the cycle's height is multiplied by gamma every step."),
            *_cycle_momentum(),
            *_momentum_bounds(0.8, 0.9),
        ),
        "Bounce the lr between base_lr and max_lr in triangles (CyclicLR).",
    ),
    ScheduleInfo(
        "polynomial", "Polynomial decay",
        (
            _total_iters("Steps for the lr to decay to 0."),
            HyperParam(
                "power", 1.0, "float", low=0.0, low_inclusive=False, search=(0.5, 3.0),
                tooltip="Shape of the decay: 1 is a straight line, larger values fall faster at first.",
            ),
        ),
        "Decay the lr to 0 as (1 − t/total_iters)^power (PolynomialLR).",
    ),
    ScheduleInfo(
        "plateau", "Reduce on plateau",
        (
            HyperParam(
                "factor", 0.1, "float", low=0.0, high=1.0, low_inclusive=False,
                high_inclusive=False, search=(0.1, 0.9),
                tooltip="The lr is multiplied by factor when the loss stops improving.",
            ),
            HyperParam(
                "patience", 10, "int", low=0, search=(0, 50),
                tooltip="How many steps without improvement are tolerated before the lr drops.",
            ),
            HyperParam(
                "threshold", 1e-4, "float", low=0.0, log=True, search=(1e-6, 1e-1),
                tooltip="How much better the loss must get to count as an improvement.",
            ),
            HyperParam(
                "threshold_mode", "rel", "choice", choices=("rel", "abs"),
                tooltip="rel: improvement means below best × (1 − threshold); abs: below best − threshold.",
            ),
            HyperParam(
                "cooldown", 0, "int", low=0, search=(0, 50),
                tooltip="Steps to wait after a drop before counting non-improving steps again.",
            ),
            HyperParam(
                "min_lr", 0.0, "float", low=0.0, log=True, search=(1e-8, 1e-3),
                tooltip="The lr never drops below min_lr.",
            ),
        ),
        "Drop the lr when the training loss stops improving (ReduceLROnPlateau).",
    ),
    ScheduleInfo(
        "warmup_cosine", "Warm-up + cosine",
        (
            HyperParam(
                "warmup_steps", None, "int", low=0, derived="a tenth of the lab's steps",
                tooltip="Steps of linear warm-up from start_factor × lr up to the full lr.",
            ),
            HyperParam(
                "start_factor", 0.01, "float", low=1e-8, high=1.0,  # see linear's start_factor
                log=True, search=(1e-3, 1.0),
                tooltip="The warm-up starts at start_factor × the optimizer's lr.",
            ),
            _eta_min(),
        ),
        "Linear warm-up to the full lr, then cosine annealing to eta_min for the rest of the run.",
    ),
]

SCHEDULES: dict[str, ScheduleInfo] = {info.name: info for info in _INFOS}


def get_schedule_info(name: str, field: str = "schedule.name") -> ScheduleInfo:
    """The registry entry for ``name``; an unknown name raises `LabError` listing the choices."""
    info = SCHEDULES.get(name) if isinstance(name, str) else None
    if info is None:
        raise LabError(field, f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")
    return info


# --------------------------------------------------------------------------------------------
# Validation: per value (HyperParam), then between values. The checks between values run on
# whatever is known: on the user's values alone when validating a lab file, and again on the
# complete resolved set (derived values filled in) when the schedule is built.


def _check_total_steps(total_steps: object, field: str = "steps") -> int:
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise LabError(field, f"must be a whole number >= 1, got {show_value(total_steps)}")
    return total_steps


def _cross_check(name: str, values: Mapping, field: str, total_steps: int | None) -> None:
    if name == "multistep" and values.get("milestones"):
        milestones = values["milestones"]
        for i in range(1, len(milestones)):
            if milestones[i] <= milestones[i - 1]:
                raise LabError(
                    f"{field}.milestones[{i}]",
                    f"milestones must increase: {milestones[i]} is not larger than "
                    f"{milestones[i - 1]} before it",
                )
    elif name == "warmup_cosine":
        warmup = values.get("warmup_steps")
        if warmup is not None and total_steps is not None and warmup >= total_steps:
            raise LabError(
                f"{field}.warmup_steps",
                f"must be < the lab's steps ({total_steps}) so that some cosine remains, "
                f"got {warmup}",
            )
    elif name == "cyclic":
        base, peak = values.get("base_lr"), values.get("max_lr")
        if base is not None and peak is not None and base > peak:
            raise LabError(
                f"{field}.base_lr",
                f"must be <= max_lr ({format_number(peak)}), got {format_number(base)}",
            )
    elif name == "onecycle":
        _check_onecycle(values, field, total_steps)


def _check_onecycle(values: Mapping, field: str, total_steps: int | None) -> None:
    pct_start = values.get("pct_start", 0.3)
    if values.get("three_phase") and pct_start > 0.5:
        raise LabError(
            f"{field}.pct_start",
            "must be in [0, 0.5] with three_phase (warm-up and cool-down each take pct_start "
            f"of the cycle), got {format_number(pct_start)}",
        )
    cycle_steps = values.get("total_steps") or total_steps
    if cycle_steps is None:
        return
    # torch interpolates the warm-up over pct_start × positions − 1 steps (positions = steps + 1,
    # see the module docstring); exactly 0 steps divides by zero at the first step.
    positions = cycle_steps + 1
    if float(pct_start * positions) - 1 == 0:
        raise LabError(
            f"{field}.pct_start",
            f"makes the warm-up of a {cycle_steps}-step cycle last 0 steps, which torch cannot "
            f"interpolate (pct_start × (steps + 1) = 1); use 0 or a larger value, "
            f"got {format_number(pct_start)}",
        )


def validate_schedule_params(
    name: str,
    params: Mapping,
    field: str = "schedule.params",
    total_steps: int | None = None,
    base_lr: float | None = None,
) -> dict:
    """Check ``params`` for schedule ``name``; return the cleaned dict (no defaults filled in).

    ``total_steps`` (the lab's steps) and ``base_lr`` (the run's optimizer lr), when given,
    enable the checks that depend on them, such as ``warmup_steps < total_steps`` or a cyclic
    ``base_lr`` not above the ``max_lr`` it derives from the optimizer's lr.
    """
    info = get_schedule_info(name)
    cleaned = validate_params(info.hyperparams, params, field)
    known = {**info.defaults(), **cleaned}
    if info.name == "cyclic" and known.get("max_lr") is None and base_lr is not None:
        known["max_lr"] = base_lr  # what the derived max_lr will be
    _cross_check(info.name, known, field, total_steps)
    return cleaned


def _derive(name: str, key: str, values: Mapping, total_steps: int, base_lr: float):
    """The value of a derived (default None) hyperparameter, as described by its ``derived``."""
    if key in ("T_max", "total_iters", "total_steps"):
        return total_steps
    if key == "step_size":
        return max(1, total_steps // 3)
    if key in ("T_0", "step_size_up"):
        return max(1, total_steps // 4)
    if key == "milestones":
        return tuple(sorted({max(1, total_steps // 2), max(1, total_steps * 3 // 4)}))
    if key == "gamma":  # exponential: reach 1% of the starting lr at the last step
        return 0.01 ** (1.0 / total_steps)
    if key == "max_lr":
        return base_lr
    if key == "base_lr":
        return values["max_lr"] / 10
    if key == "warmup_steps":
        return total_steps // 10
    if key == "step_size_down":
        return None  # torch's own default: the same as step_size_up
    raise AssertionError(f"no derivation for {name}.{key}")  # a registry entry forgot one


def resolve_schedule_params(
    name: str,
    params: Mapping,
    total_steps: int,
    base_lr: float,
    field: str = "schedule.params",
) -> dict:
    """Every hyperparameter of ``name`` with defaults and derived values filled in.

    ``base_lr`` is the optimizer's lr (for ``max_lr`` defaults). Useful for the GUI to show what
    "auto" turned into; `Schedule` builds from it.
    """
    total_steps = _check_total_steps(total_steps)
    info = get_schedule_info(name)
    cleaned = validate_schedule_params(name, params, field, total_steps, base_lr)
    values = {**info.defaults(), **cleaned}
    # base_lr last: cyclic's base_lr is derived from max_lr, which may itself be derived.
    for key in sorted((hp.name for hp in info.hyperparams), key=lambda k: k == "base_lr"):
        if values.get(key) is None:
            values[key] = _derive(name, key, values, total_steps, base_lr)
    _cross_check(info.name, values, field, total_steps)
    return {hp.name: values[hp.name] for hp in info.hyperparams}


# --------------------------------------------------------------------------------------------
# Building the torch schedulers


def _warmup_cosine(optimizer, p: Mapping, total_steps: int):
    cosine_steps = total_steps - p["warmup_steps"]
    if p["warmup_steps"] == 0:
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=cosine_steps, eta_min=p["eta_min"])
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=p["start_factor"], end_factor=1.0, total_iters=p["warmup_steps"]
    )
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=cosine_steps, eta_min=p["eta_min"])
    return lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[p["warmup_steps"]])


def _pick(p: Mapping, *keys: str) -> dict:
    return {key: p[key] for key in keys}


_BUILDERS: dict[str, Callable[[torch.optim.Optimizer, Mapping, int], object]] = {
    "constant": lambda opt, p, n: None,
    "step": lambda opt, p, n: lr_scheduler.StepLR(opt, **_pick(p, "step_size", "gamma")),
    "multistep": lambda opt, p, n: lr_scheduler.MultiStepLR(
        opt, milestones=list(p["milestones"]), gamma=p["gamma"]
    ),
    "exponential": lambda opt, p, n: lr_scheduler.ExponentialLR(opt, gamma=p["gamma"]),
    "cosine": lambda opt, p, n: lr_scheduler.CosineAnnealingLR(opt, **_pick(p, "T_max", "eta_min")),
    "cosine_warm_restarts": lambda opt, p, n: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, **_pick(p, "T_0", "T_mult", "eta_min")
    ),
    "linear": lambda opt, p, n: lr_scheduler.LinearLR(
        opt, **_pick(p, "start_factor", "end_factor", "total_iters")
    ),
    # One more position than updates: see the module docstring.
    "onecycle": lambda opt, p, n: lr_scheduler.OneCycleLR(
        opt,
        total_steps=p["total_steps"] + 1,
        **_pick(
            p, "max_lr", "pct_start", "anneal_strategy", "div_factor", "final_div_factor",
            "three_phase", "cycle_momentum", "base_momentum", "max_momentum",
        ),
    ),
    "cyclic": lambda opt, p, n: lr_scheduler.CyclicLR(
        opt,
        **_pick(
            p, "base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma",
            "cycle_momentum", "base_momentum", "max_momentum",
        ),
    ),
    "polynomial": lambda opt, p, n: lr_scheduler.PolynomialLR(opt, **_pick(p, "total_iters", "power")),
    "plateau": lambda opt, p, n: lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="min",
        **_pick(p, "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr"),
    ),
    "warmup_cosine": _warmup_cosine,
}


class Schedule:
    """The learning-rate schedule of one run: a torch scheduler (or none) behind one `step` call."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        params: Mapping,
        total_steps: int,
        field: str = "schedule.params",
    ):
        self.name = get_schedule_info(name).name
        self.optimizer = optimizer
        if "lr" not in optimizer.param_groups[0]:
            # An optimizer without a learning rate (A2Grad, AliG set their own step sizes): its
            # steps go on without a schedule; nothing else can be scheduled.
            if self.name != "constant":
                raise LabError(field.rsplit(".", 1)[0] + ".name",
                               f"{type(optimizer).__name__} has no learning rate to schedule; "
                               'use "constant"')
            self.params, self.scheduler, self._steps_left = {}, None, math.inf
            return
        base_lr = float(optimizer.param_groups[0]["lr"])
        self.params = resolve_schedule_params(name, params, total_steps, base_lr, field)
        if self.params.get("cycle_momentum"):
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise LabError(
                    f"{field}.cycle_momentum",
                    "needs an optimizer with momentum or betas; "
                    f"{type(optimizer).__name__} has neither",
                )
        self.scheduler = _BUILDERS[self.name](optimizer, self.params, total_steps)
        # OneCycleLR raises when stepped past its end: stop stepping it there (lr stays put).
        self._steps_left = self.params["total_steps"] if self.name == "onecycle" else math.inf

    def step(self, loss: float) -> None:
        """Advance one step; call once after every optimizer step. Only ``plateau`` uses ``loss``."""
        if self.scheduler is None or self._steps_left <= 0:
            return
        self._steps_left -= 1
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(loss)
        else:
            self.scheduler.step()
        # torch's recursive formulas can round an lr that should land on exactly 0 (linear with
        # end_factor 0, cosine with eta_min 0) to about −1e-18; a negative lr would make the
        # optimizer climb, so it is clamped to 0.
        for group in self.optimizer.param_groups:
            if group["lr"] < 0:
                group["lr"] = 0.0

    @property
    def lr(self) -> float:
        """The lr in force for the next update (param group 0); NaN for an optimizer that has
        none."""
        return float(self.optimizer.param_groups[0].get("lr", math.nan))


def preview(name: str, params: Mapping, steps: int, base_lr: float) -> np.ndarray:
    """The lr curve of a schedule without training: ``steps + 1`` values, element t = lr at step t.

    Steps the real torch scheduler on a throwaway SGD optimizer over one dummy tensor, exactly as
    the engine does (optimizer step, then schedule step). ``plateau`` sees a loss that never
    improves (see the module docstring).
    """
    base_lr = float(base_lr)
    if not math.isfinite(base_lr) or base_lr < 0:
        raise LabError("lr", f"must be >= 0, got {base_lr!r}")
    if name == "constant":
        # No scheduler at all; and building a first optimizer costs seconds of lazy torch
        # imports, which a new window's constant-lr preview must not pay on the main thread.
        get_schedule_info(name)
        return np.full(steps + 1, base_lr)
    dummy = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([dummy], lr=base_lr)
    schedule = Schedule(optimizer, name, params, steps)
    curve = np.empty(steps + 1)
    curve[0] = schedule.lr
    # No gradient, so this step changes nothing; it only marks the optimizer as stepped, which
    # is all torch's "scheduler stepped before the optimizer" warning looks at. Once is enough
    # (the mark stays), and skipping the other ~90 µs optimizer steps keeps long previews fast.
    optimizer.step()
    for t in range(1, steps + 1):
        schedule.step(PREVIEW_LOSS)
        curve[t] = schedule.lr
    return curve
