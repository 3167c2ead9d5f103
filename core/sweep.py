"""Hyperparameter sweeps and fair races, on Optuna.

A sweep tunes one run of a lab: Optuna proposes hyperparameters, the engine trains them, and the
objective (averaged over S seeds) goes back to Optuna. Everything a user can type is checked here
and refused with a `LabError` naming the flag and the allowed form.

Search space
    Built from the registries' `HyperParam` specs (core/optimizers.py): with no flags, the run's
    ``lr`` over its registry ``search`` range (log scale). Each ``--param`` narrows or adds one
    parameter (`parse_param`)::

        lr=1e-4:1e-1            a range; log scale when the registry says so (lr does)
        lr=1e-4:1e-1:log        a range on a log scale (":linear" for a linear one)
        momentum=0.5:0.99:5     ...with 5 points when the sampler is "grid" (default 5)
        nesterov=true,false     a list of values (bools, choices or numbers)
        weight_decay            the registry's own search range for it

Samplers
    ``grid`` (every combination; continuous ranges get N points), ``random``, ``tpe`` (Bayesian,
    seeded, with constant liar so that trials asked side by side differ) and ``cmaes`` (only for
    ranges, no lists: CMA-ES models a continuous space).

Objectives (minimised; function labs have no validation split, their loss stands in)
    ``final_val_loss``, ``best_val_loss``, ``auc`` (area under the training-loss curve divided by
    the steps: the mean loss, so fast *and* low wins) and ``steps_to_target`` (first step whose
    validation loss is <= target; ``steps + 1`` when never reached). A run that diverges scores
    its worst measured value (no better than where it started); its AUC counts the worst loss
    for the steps it did not get to run.

Pruning
    Median pruning is on by default: every evaluation reports the monitored value (the running
    mean loss for ``auc``) and a trial below the median of the finished trials at the same step
    is stopped. Seed s reports at steps ``s·(steps+1) + t``, so trials are only ever compared on
    the same seed.

Storage
    In memory (``storage=None``), any Optuna storage URL (``sqlite:///...``, ``postgresql://``,
    ...), or a plain file path (a SQLite file). The CLI defaults to a SQLite file next to the lab.
    Running the same sweep again on the same storage and study adds trials to it (resume after a
    crash); several workers may share one study. A study remembers what it searches (space,
    objective, steps, seeds): opening it with different flags is refused rather than mixing
    incomparable values. On a database, trials carry a heartbeat, so the trials of a worker that
    was killed are marked failed when the next worker starts; finished trials are never lost.

Batching (the sweep-throughput benchmark)
    Trials run K at a time (``batch``) as K runs of ONE race of the engine: same data, same
    initial weights, same mini-batches, each trial its own optimizer and schedule. The engine
    trains a race's runs side by side (a `FunctionRace` evaluates all points in one call; a
    `NetworkRace` of a plain MLP trains every run in one batched pass, core/stacked.py), so K
    trials cost far less than K races. A pruned trial is frozen in its race (``alive`` False):
    the engine stops stepping it. The numbers are the engine's own: a trial reopened as a run
    reproduces its curve.

`run_sweep` is a generator of throttled `SweepProgress` (>= 0.05 s apart, plus a final one), so
the GUI iterates it in its worker thread; setting the stop event ends it cleanly: finished trials
stay in the study, the ones in flight are marked failed ("cancelled").
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from core.errors import LabError
from core.hyperparams import HyperParam, format_number
from core.lab import Lab, RunSpec, validate_lab

OBJECTIVES: dict[str, str] = {
    "final_val_loss": "validation loss at the last step (function labs: the final loss)",
    "best_val_loss": "lowest validation loss over the evaluations (function labs: best loss)",
    "auc": "area under the training-loss curve / steps (the mean loss over the run)",
    "steps_to_target": "first step whose validation loss <= --target (never: steps + 1)",
}
SAMPLERS = ("grid", "random", "tpe", "cmaes")
DEFAULT_GRID_POINTS = 5
MAX_GRID_POINTS = 1000
DEFAULT_BATCH = 8
MAX_BATCH = 32  # a lab holds at most 32 runs
MAX_SEEDS = 100
PROGRESS_INTERVAL_S = 0.05  # Orange3's rule: progress throttled at the source
HEARTBEAT_INTERVAL_S = 15
HEARTBEAT_GRACE_S = 60
FUNCTION_REPORTS = 50  # function labs report the loss this many times per run
PARAM_FORMS = (
    "NAME=LOW:HIGH[:log|:linear][:N], NAME=A,B,... or NAME "
    '(e.g. "lr=1e-4:1e-1:log", "momentum=0.5:0.99", "nesterov=true,false")'
)
ATTR_KEY = "descent_lab"


# --------------------------------------------------------------------------------------------
# Search space


@dataclass(frozen=True)
class ParamRange:
    """One searched hyperparameter: a range (float/int) or a list of values."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    grid_points: int = DEFAULT_GRID_POINTS

    def distribution(self):
        from optuna.distributions import (
            CategoricalDistribution, FloatDistribution, IntDistribution,
        )

        if self.kind == "float":
            return FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return CategoricalDistribution(self.choices)

    def grid_values(self) -> list:
        """The points a grid sweep visits."""
        if self.kind == "categorical":
            return list(self.choices)
        n = self.grid_points
        if self.log:
            values = np.geomspace(self.low, self.high, n)
        else:
            values = np.linspace(self.low, self.high, n)
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        # 10 significant digits: stable across machines and still inside the range.
        rounded = [float(f"{v:.10g}") for v in values]
        return [min(max(v, self.low), self.high) for v in rounded]

    def describe(self) -> str:
        """The flag that makes this range (the study remembers its space in this form)."""
        if self.kind == "categorical":
            return f"{self.name}=" + ",".join(_show_choice(c) for c in self.choices)
        scale = "log" if self.log else "linear"
        return (f"{self.name}={format_number(self.low)}:{format_number(self.high)}:{scale}"
                f":{self.grid_points}")


def _show_choice(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def _param_error(text: str, why: str) -> LabError:
    return LabError("--param", f"{text!r}: {why}; allowed forms: {PARAM_FORMS}")


def _parse_number(token: str, hp: HyperParam, text: str) -> float | int:
    try:
        number = float(token)
    except ValueError:
        raise _param_error(text, f"{token!r} is not a number") from None
    if hp.kind == "int":
        if not number.is_integer():
            raise _param_error(text, f"{hp.name} takes whole numbers, got {token!r}")
        number = int(number)
    try:
        return hp.validate(number, f"--param {hp.name}")
    except LabError as exc:
        raise _param_error(text, exc.message) from None


def _parse_choice(token: str, hp: HyperParam, text: str) -> Any:
    if hp.kind == "bool":
        lowered = token.strip().lower()
        if lowered not in ("true", "false"):
            raise _param_error(text, f"{hp.name} is true or false, got {token!r}")
        return lowered == "true"
    if hp.kind == "choice":
        if token not in hp.choices:
            raise _param_error(text, f"{hp.name} must be {hp.describe_range()}, got {token!r}")
        return token
    return _parse_number(token, hp, text)


def parse_param(text: str, hyperparams: Sequence[HyperParam]) -> ParamRange:
    """Read one ``--param`` flag against the optimizer's hyperparameter specs."""
    if not isinstance(text, str) or not text.strip():
        raise _param_error(str(text), "empty")
    name, _, spec = text.strip().partition("=")
    name = name.strip()
    by_name = {hp.name: hp for hp in hyperparams}
    hp = by_name.get(name)
    if hp is None:
        searchable = ", ".join(h.name for h in hyperparams if h.kind in ("float", "int", "bool",
                                                                         "choice"))
        raise _param_error(text, f"unknown hyperparameter {name!r}; this optimizer has: "
                                 f"{searchable}")
    if hp.kind in ("pair", "int_list"):
        raise _param_error(text, f"{name} is a {hp.kind.replace('_', ' ')}; only single numbers, "
                                 "booleans and choices can be searched")
    if not _ and not spec:  # the bare name: the registry's own range
        if hp.kind == "bool":
            return ParamRange(name, "categorical", choices=(False, True))
        if hp.kind == "choice":
            return ParamRange(name, "categorical", choices=tuple(hp.choices))
        if hp.search is None:
            raise _param_error(text, f"{name} has no default search range; give one")
        low, high = hp.search
        return _range(name, hp, low, high, hp.log and low > 0, DEFAULT_GRID_POINTS, text)
    spec = spec.strip()
    if not spec:
        raise _param_error(text, "nothing after '='")
    if ":" in spec:
        if hp.kind not in ("float", "int"):
            raise _param_error(text, f"{name} is {hp.describe_range()}: list its values "
                                     "with commas instead of a range")
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) < 2 or len(parts) > 4:
            raise _param_error(text, "a range is LOW:HIGH with an optional scale and point count")
        low = _parse_number(parts[0], hp, text)
        high = _parse_number(parts[1], hp, text)
        log: bool | None = None
        points = DEFAULT_GRID_POINTS
        for extra in parts[2:]:
            if extra in ("log", "linear"):
                log = extra == "log"
            elif extra.isdigit() and 2 <= int(extra) <= MAX_GRID_POINTS:
                points = int(extra)
            else:
                raise _param_error(text, f"{extra!r} is neither log, linear nor a grid point "
                                         f"count in [2, {MAX_GRID_POINTS}]")
        if log is None:
            log = hp.log and low > 0
        return _range(name, hp, low, high, log, points, text)
    tokens = [t.strip() for t in spec.split(",")]
    if any(not t for t in tokens):
        raise _param_error(text, "an empty value in the list")
    values = tuple(dict.fromkeys(_parse_choice(t, hp, text) for t in tokens))
    if hp.kind in ("float", "int"):
        values = tuple(float(v) if hp.kind == "float" else int(v) for v in values)
    return ParamRange(name, "categorical", choices=values)


def _range(name: str, hp: HyperParam, low, high, log: bool, points: int, text: str) -> ParamRange:
    if not low < high:
        raise _param_error(text, f"the range is empty or inverted ({format_number(low)} is not "
                                 f"below {format_number(high)})")
    if log and low <= 0:
        raise _param_error(text, "a log scale needs LOW > 0")
    return ParamRange(name, hp.kind, low=low, high=high, log=log, grid_points=points)


def build_search_space(optimizer: str, params: Sequence[str] = ()) -> tuple[ParamRange, ...]:
    """The default space (``lr`` over its registry range) narrowed or extended by ``params``."""
    from core.optimizers import get_optimizer_info

    info = get_optimizer_info(optimizer)
    space: dict[str, ParamRange] = {}
    if any(hp.name == "lr" for hp in info.hyperparams):
        space["lr"] = parse_param("lr", info.hyperparams)
    for text in params:
        param = parse_param(text, info.hyperparams)
        space[param.name] = param
    if not space:
        raise LabError("--param", f"{info.title} has no lr; name what to search ({PARAM_FORMS})")
    return tuple(space.values())


# --------------------------------------------------------------------------------------------
# The sweep's description and progress


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


# --------------------------------------------------------------------------------------------
# Checking a spec


def _pick_run(lab: Lab, label: str | None) -> RunSpec:
    runs = lab.enabled_runs()
    if not runs:
        raise LabError("runs", "the lab has no enabled run to tune")
    if label is None:
        return runs[0]
    return lab.run_labelled(label)


def _check_spec(spec: SweepSpec) -> None:
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


def _check_sampler_fits(sampler: str, space: Sequence[ParamRange]) -> None:
    if sampler == "cmaes":
        lists = [p.name for p in space if p.kind == "categorical"]
        if lists:
            raise LabError(
                "--sampler",
                f"cmaes searches continuous ranges only, but {', '.join(lists)} is a list of "
                "values; use tpe or random, or give a LOW:HIGH range",
            )


# --------------------------------------------------------------------------------------------
# Storage and study


def default_storage(lab_path: str | os.PathLike) -> str:
    """The SQLite file next to a lab file that a saved sweep uses: ``<stem>.sweeps.db``."""
    path = Path(lab_path).resolve()
    stem = path.name.split(".")[0] or "lab"
    return f"sqlite:///{path.with_name(stem + '.sweeps.db')}"


def storage_url(storage: str | os.PathLike | None) -> str | None:
    """None for memory; a URL as is; a plain path becomes a SQLite URL."""
    if storage is None:
        return None
    text = str(storage).strip()
    if text in ("", "memory", ":memory:"):
        return None
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def shown_url(url: str | None) -> str:
    """A storage URL safe to print (password hidden)."""
    if url is None:
        return "memory"
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url.split("@")[-1]


def open_storage(storage: str | os.PathLike | None):
    """An Optuna storage, or a `LabError` naming --storage when it cannot be opened."""
    import optuna

    url = storage_url(storage)
    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith("sqlite:///"):
        folder = Path(url[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise LabError("--storage", f"{shown_url(url)}: the folder {folder} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(
                url,
                heartbeat_interval=HEARTBEAT_INTERVAL_S,
                grace_period=HEARTBEAT_GRACE_S,
                engine_kwargs=_engine_kwargs(url),
            )
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors vary by backend
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabError("--storage", f"cannot open {shown_url(url)}: {first[:200]}") from None
    if url.startswith("sqlite"):
        _tune_sqlite(storage.engine)
    return storage


def _engine_kwargs(url: str) -> dict:
    # SQLite shared by several processes: wait for the lock instead of failing at once.
    return {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}


def _tune_sqlite(engine) -> None:
    """WAL journal + synchronous=NORMAL: a sweep commits after every report, and a full fsync
    per commit cost more than the training. WAL stays crash-safe (a killed process loses
    nothing committed; only a power cut may lose the last commits) and lets other workers read
    while one writes."""
    from sqlalchemy import event

    def on_connect(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections made before the listener get the pragmas too


def _identity(spec: SweepSpec, run: RunSpec, space: Sequence[ParamRange]) -> dict:
    """What a study searches; values from other settings would not be comparable."""
    return {
        "optimizer": run.optimizer,
        "space": sorted(p.describe() for p in space),
        "objective": spec.objective,
        "target": spec.target,
        "steps": spec.lab.steps,
        "seeds": spec.seeds,
    }


def default_study_name(spec: SweepSpec) -> str:
    run = _pick_run(spec.lab, spec.run)
    return f"{spec.lab.name}:{run.label}:{spec.objective}"


def _make_sampler(name: str, space: Sequence[ParamRange], seed: int, trials: int):
    import optuna

    if name == "grid":
        return _quiet_grid_sampler()({p.name: p.grid_values() for p in space}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=min(5, trials),
                                            warn_independent_sampling=False)
    with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna's words
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                          n_startup_trials=min(10, max(2, trials // 3)))


def _quiet_grid_sampler():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler minus its ``study.stop()`` once the grid is done: that call only
        works inside ``study.optimize``, and our ask/tell loop plans its trial count itself."""

        def after_trial(self, study, trial, state, values) -> None:
            return None

    return GridSampler


def _make_pruner(enabled: bool, steps: int):
    import optuna

    if not enabled:
        return optuna.pruners.NopPruner()
    # 5 finished trials before any pruning; never judge a trial in its first tenth of steps,
    # where every run still looks alike.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=_warmup_steps(steps))


def _warmup_steps(steps: int) -> int:
    return max(1, steps // 10)


def open_study(spec: SweepSpec, identity: dict, sampler, pruner, name: str):
    """Create or load the study; refuse one that searches something else."""
    import optuna

    storage = open_storage(spec.storage)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - a broken database, a read-only file, ...
        raise LabError("--storage", f"cannot open study {name!r} in "
                                    f"{shown_url(storage_url(spec.storage))}: {exc}") from None
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise LabError("--study", f"study {name!r} maximises; a sweep minimises a loss")
    known = study.user_attrs.get(ATTR_KEY)
    if known is None:
        study.set_user_attr(ATTR_KEY, identity)
    elif known != identity:
        diffs = [f"{k} {known.get(k)!r} (now {identity[k]!r})" for k in identity
                 if known.get(k) != identity[k]]
        raise LabError(
            "--study",
            f"study {name!r} in {shown_url(storage_url(spec.storage))} was made with another "
            f"setup: {'; '.join(diffs)}. Use the same flags to resume it, or another --study",
        )
    return study


# --------------------------------------------------------------------------------------------
# Engines: K trials side by side


@dataclass
class _Tick:
    step: int
    loss: np.ndarray  # (K,) training loss (last finite value for stopped runs)
    alive: np.ndarray  # (K,) bool
    monitored: np.ndarray | None  # (K,) validation loss at evaluation steps, else None


class _FunctionTicks:
    """K trials as K runs of one `FunctionRace` (one batched evaluation per step)."""

    def __init__(self, lab: Lab):
        from core.engine import FunctionRace

        self.race = FunctionRace(lab)
        self.every = max(1, lab.steps // FUNCTION_REPORTS)
        self.alive = self.race.alive
        self.diverged = self.race.diverged

    def ticks(self, stop):
        steps = self.race.lab.steps
        for record in self.race.records(stop):
            report = record.step % self.every == 0 or record.step == steps
            yield _Tick(record.step, record.loss, record.alive,
                        record.loss if report else None)


class _EngineTicks:
    """K trials as K runs of one `NetworkRace`; the monitored value is the validation loss."""

    def __init__(self, lab: Lab):
        from core.network import NetworkRace

        self.race = NetworkRace(lab, base_dir=Path(lab.base_dir) if lab.base_dir else None)
        self.alive = self.race.alive
        self.diverged = self.race.diverged

    def ticks(self, stop):
        for record in self.race.records(stop):
            ev = record.evaluation
            monitored = None
            if ev is not None:
                monitored = (ev.val or ev.train)["loss"]
            yield _Tick(record.step, record.loss, record.alive, monitored)


def make_ticks(lab: Lab):
    """K runs of one race: `FunctionRace` for functions, `NetworkRace` for networks."""
    return _EngineTicks(lab) if lab.is_network else _FunctionTicks(lab)


# --------------------------------------------------------------------------------------------
# Objectives


@dataclass
class _Curve:
    """One trial on one seed: what the objective is computed from."""

    losses: list[float] = field(default_factory=list)  # training loss per step while alive
    monitored: list[tuple[int, float]] = field(default_factory=list)
    diverged: bool = False


def objective_value(name: str, curve: _Curve, steps: int, target: float | None) -> float:
    """The objective of one finished (not pruned) run; always finite."""
    values = [v for _, v in curve.monitored if math.isfinite(v)]
    losses = [v for v in curve.losses if math.isfinite(v)]
    if name == "steps_to_target":
        for step, value in curve.monitored:
            if value <= target:
                return float(step)
        return float(steps + 1)
    if name == "auc":
        if not losses:
            return math.inf
        series = np.asarray(losses, dtype=np.float64)
        if len(series) < steps + 1:  # diverged: the missing steps count at its worst
            series = np.concatenate([series, np.full(steps + 1 - len(series), series.max())])
        if steps == 0:
            return float(series[0])
        # numpy < 2 calls it trapz
        trapezoid = getattr(np, "trapezoid", None) or np.trapz
        return float(trapezoid(series) / steps)
    if not values:
        return math.inf
    if name == "best_val_loss":
        return float(min(values))
    # final_val_loss: a diverged run is no better than its worst measured point.
    return float(max(values)) if curve.diverged else float(values[-1])


def _intermediate(name: str, curve: _Curve) -> float:
    """What a trial reports to the pruner at an evaluation (lower is better)."""
    if name == "auc":
        return float(np.mean(curve.losses)) if curve.losses else math.inf
    return curve.monitored[-1][1]


# --------------------------------------------------------------------------------------------
# The sweep


class _Session:
    """The bookkeeping of one `run_sweep` call (counts, best, timing, throttling)."""

    def __init__(self, study, planned: int, name: str, steps_per_trial: int):
        self.study = study
        self.name = name
        self.planned = planned
        self.steps_per_trial = steps_per_trial
        self.started = time.perf_counter()
        self.last_yield = -math.inf
        self.counts = {"complete": 0, "pruned": 0, "failed": 0}
        self.running = 0
        self.pending: list[TrialResult] = []
        self.steps_run = 0
        self.steps_saved = 0
        self.batch_fraction = 0.0
        self.best: tuple[float, dict, int] | None = None
        self._study_trials = 0
        self._refresh_study()

    def _refresh_study(self) -> None:
        """Re-read what other workers may have added (a database query: not every tick)."""
        self._study_trials = _finished_count(self.study)
        try:
            trial = self.study.best_trial
        except ValueError:  # no complete trial yet
            return
        if trial.value is not None and (self.best is None or trial.value < self.best[0]):
            self.best = (float(trial.value), dict(trial.params), trial.number)

    def finished(self, result: TrialResult) -> None:
        key = "failed" if result.state in ("failed", "cancelled") else result.state
        self.counts[key] += 1
        self.pending.append(result)
        self.steps_run += result.steps_run
        if result.state == "pruned":
            self.steps_saved += max(0, self.steps_per_trial - result.steps_run)
        if result.state == "complete" and result.value is not None:
            if self.best is None or result.value < self.best[0]:
                self.best = (result.value, dict(result.params), result.number)

    def progress(self, final: bool = False, cancelled: bool = False,
                 force: bool = False) -> SweepProgress | None:
        now = time.perf_counter()
        if not (final or force) and now - self.last_yield < PROGRESS_INTERVAL_S:
            return None
        self.last_yield = now
        if final or force:
            self._refresh_study()
        done = sum(self.counts.values())
        fraction = min(1.0, (done + self.batch_fraction * self.running) / max(1, self.planned))
        elapsed = now - self.started
        eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else None
        if final:
            eta = 0.0
            if not cancelled:
                fraction = 1.0
        finished, self.pending = tuple(self.pending), []
        return SweepProgress(
            study_name=self.name,
            trials_planned=self.planned,
            complete=self.counts["complete"],
            pruned=self.counts["pruned"],
            failed=self.counts["failed"],
            running=self.running,
            study_trials=self._study_trials,
            best_value=self.best[0] if self.best else None,
            best_params=dict(self.best[1]) if self.best else None,
            best_trial=self.best[2] if self.best else None,
            elapsed_s=elapsed,
            eta_s=eta,
            fraction=fraction,
            finished=finished,
            final=final,
            cancelled=cancelled,
            steps_run=self.steps_run,
            steps_saved=self.steps_saved,
        )


def _finished_count(study) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
              optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def _grid_remaining(study, space: Sequence[ParamRange]) -> tuple[int, list[dict]]:
    """How many grid points have no finished value yet, and the ones to retry.

    Optuna's grid sampler counts a failed trial's point as visited; a cancelled or crashed
    trial's point is retried here (enqueued with its exact parameters) so it is not lost.
    """
    import itertools

    import optuna

    names = [p.name for p in space]
    grid = {tuple(v) for v in itertools.product(*(p.grid_values() for p in space))}
    done, running, failed = set(), 0, []
    for trial in study.get_trials(deepcopy=False):
        key = tuple(trial.params.get(n) for n in names)
        if trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            done.add(key)
        elif trial.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
            running += 1
        elif trial.state == optuna.trial.TrialState.FAIL and key in grid:
            failed.append(key)
    retry = [dict(zip(names, key)) for key in dict.fromkeys(failed) if key not in done]
    return max(0, len(grid - done) - running), retry


class Sweep:
    """One sweep call: checks the spec and opens the study at once, then `run` trains.

    Everything a user typed is checked in the constructor (a `LabError` before any trial), so
    the GUI can show the error next to the field and the CLI can exit 2 without writing
    anything. ``study`` is the Optuna study (the trials table, the views, the CSV export).
    """

    def __init__(self, spec: SweepSpec):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no log line per trial
        _check_spec(spec)
        lab = spec.lab
        self.spec = spec
        self.base = _pick_run(lab, spec.run)
        self.space = build_search_space(self.base.optimizer, spec.params)
        _check_sampler_fits(spec.sampler, self.space)
        self.seeds = spec.seeds if lab.is_network else 1  # a function lab has no randomness
        self.identity = _identity(replace(spec, seeds=self.seeds), self.base, self.space)
        seed = lab.seed if spec.sampler_seed is None else spec.sampler_seed
        sampler = _make_sampler(spec.sampler, self.space, seed, spec.trials)
        self.name = spec.study or default_study_name(spec)
        self.storage = shown_url(storage_url(spec.storage))
        self.study = open_study(spec, self.identity, sampler,
                                _make_pruner(spec.prune, lab.steps), self.name)
        with warnings.catch_warnings():  # Optuna calls it "experimental"
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)  # a killed worker's trials: failed

    def run(self, stop: threading.Event | None = None) -> Iterator[SweepProgress]:
        """Run ``spec.trials`` new trials; throttled progress, the last with ``final=True``."""
        spec, study = self.spec, self.study
        planned = spec.trials
        if spec.sampler == "grid":
            remaining, retry = _grid_remaining(study, self.space)
            for params in retry[:planned]:
                study.enqueue_trial(params)
            planned = min(planned, remaining)  # the retried points are among the remaining
        session = _Session(study, planned, self.name, spec.lab.steps * self.seeds)
        distributions = {p.name: p.distribution() for p in self.space}
        yield session.progress(force=True)
        launched, cancelled = 0, False
        while launched < planned:
            if stop is not None and stop.is_set():
                cancelled = True
                break
            k = min(spec.batch, planned - launched)
            with warnings.catch_warnings():  # heartbeat outside optimize(): we beat by hand
                warnings.simplefilter("ignore")
                trials = [study.ask(distributions) for _ in range(k)]
            launched += k
            batch = _Batch(spec, study, self.base, trials, self.seeds, session)
            yield from batch.run(stop)
            if batch.cancelled:
                cancelled = True
                break
        yield session.progress(final=True, cancelled=cancelled)

    def best(self) -> tuple[int, float, dict] | None:
        """(trial number, value, params) of the study's best complete trial, if any."""
        try:
            trial = self.study.best_trial
        except ValueError:
            return None
        return trial.number, float(trial.value), dict(trial.params)


def run_sweep(spec: SweepSpec, stop: threading.Event | None = None) -> Iterator[SweepProgress]:
    """Run a sweep as a generator of throttled `SweepProgress` (see `Sweep`).

    The spec is checked when the generator starts (first ``next``). Cancelling (``stop`` set, or
    the generator closed) keeps finished trials and marks the ones in flight failed with the
    user attribute ``cancelled``.
    """
    yield from Sweep(spec).run(stop)


class _Batch:
    """K asked trials trained side by side over the seeds, then told."""

    def __init__(self, spec: SweepSpec, study, base: RunSpec, trials, seeds: int,
                 session: _Session):
        self.spec, self.study, self.base, self.trials = spec, study, base, list(trials)
        self.seeds, self.session = seeds, session
        self.curves = {t.number: [] for t in self.trials}
        self.pruned_at: dict[int, int] = {}
        self.steps_run = {t.number: 0 for t in self.trials}
        self.started = time.perf_counter()
        self.cancelled = False
        self._heartbeat_at = -math.inf
        self._told: set[int] = set()

    def _run_spec(self, trial) -> RunSpec:
        return replace(self.base, label=f"trial {trial.number}",
                       params={**self.base.params, **trial.params}, enabled=True, color=None)

    def _validated(self) -> list:
        """Drop (and fail) trials whose parameters the registry refuses (e.g. nesterov)."""
        lab = self.spec.lab
        active = list(self.trials)
        while active:
            runs = tuple(self._run_spec(t) for t in active)
            try:
                validate_lab(replace(lab, runs=runs))
                return active
            except LabError as exc:
                index = _run_index(exc.field)
                if index is None or index >= len(active):
                    raise
                bad = active.pop(index)
                # "runs[3].params.nesterov: ..." -> "params.nesterov: ..." (the trial's own run)
                where = exc.field.split(".", 1)[1] if "." in exc.field else ""
                self._tell(bad, "failed", message=f"{where}: {exc.message}" if where
                           else exc.message)
        return active

    def run(self, stop: threading.Event | None) -> Iterator[SweepProgress]:
        session = self.session
        session.running = len(self.trials)
        session.batch_fraction = 0.0
        self._heartbeat(self.trials)
        try:
            active = self._validated()
            steps = self.spec.lab.steps
            for s in range(self.seeds):
                active = [t for t in active if t.number not in self.pruned_at]
                if not active:
                    break
                yield from self._run_seed(s, active, stop)
                if stop is not None and stop.is_set():
                    self.cancelled = True
                    return
                session.batch_fraction = (s + 1) / self.seeds
            for trial in self.trials:
                if trial.number in self._told:
                    continue
                if trial.number in self.pruned_at:
                    self._tell(trial, "pruned")
                    continue
                values = tuple(
                    objective_value(self.spec.objective, curve, steps, self.spec.target)
                    for curve in self.curves[trial.number]
                )
                finite = [v for v in values if math.isfinite(v)]
                if len(finite) != len(values) or not values:
                    self._tell(trial, "failed", seed_values=values,
                               message="no finite objective (the run produced no measurement)")
                else:
                    self._tell(trial, "complete", value=float(np.mean(values)),
                               seed_values=values)
        finally:
            # Cancelled, closed or crashed: what is still in flight is failed, never left
            # RUNNING (finished trials are already told and stay in the study).
            for trial in self.trials:
                if trial.number not in self._told:
                    self._tell(trial, "cancelled", message="cancelled before it finished")
            session.running = 0
        progress = session.progress(force=True)
        if progress is not None:
            yield progress

    def _run_seed(self, s: int, active: list, stop) -> Iterator[SweepProgress]:
        spec, session = self.spec, self.session
        lab = replace(spec.lab, seed=spec.lab.seed + s,
                      runs=tuple(self._run_spec(t) for t in active))
        engine = make_ticks(lab)
        curves = [_Curve() for _ in active]
        for trial, curve in zip(active, curves):
            self.curves[trial.number].append(curve)
        stopped = np.zeros(len(active), dtype=bool)
        steps = lab.steps
        offset = s * (steps + 1)
        for tick in engine.ticks(stop):
            for k, trial in enumerate(active):
                if stopped[k]:
                    continue
                curve = curves[k]
                if not tick.alive[k]:  # diverged, or stopped early by its own rule
                    stopped[k] = True
                    curve.diverged = engine.diverged[k] is not None
                    continue
                curve.losses.append(float(tick.loss[k]))
                self.steps_run[trial.number] = self.steps_run[trial.number] + (tick.step > 0)
                if tick.monitored is not None and math.isfinite(tick.monitored[k]):
                    if self._monitor(trial, curve, tick, k, offset):
                        engine.alive[k] = False  # pruned: the engine stops stepping it
                        stopped[k] = True
                        self.pruned_at[trial.number] = tick.step
            session.batch_fraction = (s + (tick.step + 1) / (steps + 1)) / self.seeds
            self._heartbeat(active)
            progress = session.progress()
            if progress is not None:
                yield progress

    def _monitor(self, trial, curve: _Curve, tick: _Tick, k: int, offset: int) -> bool:
        """Record an evaluation, report it to Optuna; True when the trial should be pruned."""
        if tick.monitored is None or not math.isfinite(tick.monitored[k]):
            return False
        curve.monitored.append((tick.step, float(tick.monitored[k])))
        trial.report(_intermediate(self.spec.objective, curve), offset + tick.step)
        if not self.spec.prune or tick.step >= self.spec.lab.steps:
            return False
        # The pruner would say no anyway (and asking costs a database read per call).
        if offset + tick.step < _warmup_steps(self.spec.lab.steps):
            return False
        return bool(trial.should_prune())

    def _heartbeat(self, active) -> None:
        storage = self.study._storage
        now = time.perf_counter()
        if now - self._heartbeat_at < HEARTBEAT_INTERVAL_S or not hasattr(storage,
                                                                             "record_heartbeat"):
            return
        self._heartbeat_at = now
        if storage.get_heartbeat_interval() is None:
            return
        for trial in active:
            if trial.number not in self._told:
                storage.record_heartbeat(trial._trial_id)

    def _tell(self, trial, state: str, value: float | None = None,
              seed_values: tuple = (), message: str = "") -> None:
        import optuna

        self._told.add(trial.number)
        steps_run = self.steps_run.get(trial.number, 0)
        trial.set_user_attr("steps_run", steps_run)
        if seed_values:
            trial.set_user_attr("seed_values", [float(v) for v in seed_values])
        if message:
            trial.set_user_attr("message", message)
        if state == "cancelled":
            trial.set_user_attr("cancelled", True)
        pruned_at = self.pruned_at.get(trial.number)
        if pruned_at is not None:
            trial.set_user_attr("pruned_at", pruned_at)
        optuna_state = {
            "complete": optuna.trial.TrialState.COMPLETE,
            "pruned": optuna.trial.TrialState.PRUNED,
        }.get(state, optuna.trial.TrialState.FAIL)
        frozen = self.study.tell(trial, value if state == "complete" else None,
                                 state=optuna_state, skip_if_finished=True)
        shown = value if state == "complete" else frozen.value
        self.session.finished(TrialResult(
            number=trial.number, state=state, value=shown, params=dict(trial.params),
            seed_values=tuple(float(v) for v in seed_values), pruned_at=pruned_at,
            steps_run=steps_run, duration_s=time.perf_counter() - self.started,
            message=message,
        ))


def _run_index(field_: str) -> int | None:
    import re

    match = re.match(r"runs\[(\d+)\]", field_ or "")
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------
# After a sweep


def best_run(spec: SweepSpec, best_params: dict, label: str | None = None) -> RunSpec:
    """The tuned run: the swept run with the best parameters (validated)."""
    base = _pick_run(spec.lab, spec.run)
    run = replace(base, label=label or base.label, params={**base.params, **best_params})
    validate_lab(replace(spec.lab, runs=(run,)))
    return run


def sweep(spec: SweepSpec, stop: threading.Event | None = None) -> SweepProgress:
    """Run a sweep to the end and return its final progress (tests, scripts)."""
    last = None
    for last in run_sweep(spec, stop):
        pass
    return last


def trial_rows(study, space_names: Sequence[str] | None = None) -> tuple[list[str], list[list]]:
    """Header and rows of the trials table (every trial of the study, by number)."""
    trials = study.get_trials(deepcopy=False)
    names = list(space_names) if space_names else sorted({n for t in trials for n in t.params})
    seeds = max((len(t.user_attrs.get("seed_values", ())) for t in trials), default=0)
    header = (["number", "state", "value"] + names
              + [f"value_seed{s}" for s in range(seeds)]
              + ["pruned_at_step", "steps_run", "duration_s", "message"])
    rows = []
    for t in trials:
        state = t.state.name.lower()
        if t.user_attrs.get("cancelled"):
            state = "cancelled"
        seed_values = list(t.user_attrs.get("seed_values", ()))
        duration = t.duration.total_seconds() if t.duration is not None else ""
        rows.append(
            [t.number, state, "" if t.value is None else t.value]
            + [_csv_value(t.params.get(n, "")) for n in names]
            + seed_values + [""] * (seeds - len(seed_values))
            + [t.user_attrs.get("pruned_at", ""), t.user_attrs.get("steps_run", ""),
               duration, t.user_attrs.get("message", "")]
        )
    return header, rows


def _csv_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# --------------------------------------------------------------------------------------------
# Fair race


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
    its starting configuration).
    """
    from core.optimizers import get_optimizer_info

    if not optimizers:
        raise LabError("optimizers", "pick at least one optimizer for a fair race")
    infos = [get_optimizer_info(name, field="optimizers") for name in optimizers]
    if len({i.name for i in infos}) != len(infos):
        raise LabError("optimizers", "each optimizer may appear once")
    for text in params:
        name = text.partition("=")[0].strip()
        if not any(name in {hp.name for hp in info.hyperparams} for info in infos):
            raise _param_error(text, f"none of {', '.join(optimizers)} has {name!r}")
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
    return validate_lab(replace(lab, name=f"{lab.name} (fair race)", runs=tuple(tuned)))
