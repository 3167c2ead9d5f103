"""Hyperparameter sweeps and fair races, on Optuna.

A sweep tunes one run of a lab: Optuna proposes hyperparameters, the engine trains them, and the
objective (averaged over S seeds) goes back to Optuna. Everything a user can type is checked here
and refused with a `LabError` naming the flag and the allowed form.

Search space
    Built from the registries' `HyperParam` specs (core/optim/optimizers.py): with no flags, the run's
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
    Median pruning is on by default: about ``PRUNE_CHECKS`` evaluations per run report the
    monitored value (the running mean loss for ``auc``) and a trial below the median of the
    finished trials at the same step is stopped. Seed s reports at steps ``s·(steps+1) + t``,
    so trials are only ever compared on the same seed.

Storage
    In memory (``storage=None``), any Optuna storage URL (``sqlite:///...``, ``postgresql://``,
    ...), or a plain file path (a SQLite file). The CLI defaults to a SQLite file next to the lab.
    Running the same sweep again on the same storage and study adds trials to it (resume after a
    crash); several workers may share one study. A study remembers what it searches (space,
    objective, steps, seeds): opening it with different flags is refused rather than mixing
    incomparable values; the identity includes a digest of the lab (problem, seed and the tuned
    run's fixed settings), so another lab cannot add its numbers to the study either.

Workers and crashes
    Every trial records the worker that runs it (host, pid, process start time). When a worker
    starts, the RUNNING trials of a worker on the same host that no longer exists (killed, even
    with SIGKILL) are marked failed at once; trials of workers on other machines are failed by
    Optuna's heartbeat once they miss it for ``HEARTBEAT_GRACE_S``. Finished trials are never
    lost, and a failed trial never counts as finished: ``total`` (``--total``) runs until the
    study holds that many finished (complete or pruned) trials, so re-running the same command
    after a crash completes the study. Grid points are claimed in the database (a study attribute
    per point and attempt, whose unique key makes the claim atomic on SQLite and PostgreSQL), so
    two workers never train the same point; a failed point is claimed again, once.

Batching (the sweep-throughput benchmark)
    Trials run K at a time (``batch``) as K runs of ONE race of the engine: same data, same
    initial weights, same mini-batches, each trial its own optimizer and schedule. The engine
    trains a race's runs side by side (a `FunctionRace` evaluates all points in one call; a
    `NetworkRace` of a plain MLP trains every run in one batched pass, core/engine/stacked.py), so K
    trials cost far less than K races. A pruned trial is frozen in its race (``alive`` False):
    the engine stops stepping it. The numbers are the engine's own: a trial reopened as a run
    reproduces its curve.

`run_sweep` is a generator of throttled `SweepProgress` (>= 0.05 s apart, plus a final one), so
the GUI iterates it in its worker thread; setting the stop event ends it cleanly: finished trials
stay in the study, the ones in flight are marked failed ("cancelled").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.engine.factory import make_race
from core.errors import LabError
from core.lab.format import Lab, RunSpec, validate_lab
from core.optim.hyperparams import HyperParam, format_number

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
CONNECT_TIMEOUT_S = 5  # a database server that does not answer: fail fast, say which
SQLITE_BUSY_TIMEOUT_S = 30  # several workers on one SQLite file wait for its lock this long
OPEN_ATTEMPTS = 4  # SQLite: two workers creating the tables at once may collide; retry
MAX_GRID_SIZE = 100_000  # more points than any sweep will visit: a typo, not a plan
FUNCTION_REPORTS = 50  # function labs report the loss this many times per run
# Trials report to Optuna (and ask the pruner) at most this many times per run and seed: a
# report is a database commit, a question reads every trial of the study (see _Batch._monitor).
PRUNE_CHECKS = 10
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
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
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
            return f"{self.name}=" + ",".join(show_choice(c) for c in self.choices)
        scale = "log" if self.log else "linear"
        return (f"{self.name}={format_number(self.low)}:{format_number(self.high)}:{scale}"
                f":{self.grid_points}")


def show_choice(value: Any) -> str:
    """A categorical value as a flag writes it: true/false, a number in `format_number`'s form."""
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
    from core.optim.optimizers import get_optimizer_info

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
    if spec.total is not None and not (isinstance(spec.total, int)
                                       and 1 <= spec.total <= 100_000):
        raise LabError("--total", f"must be a whole number in [1, 100000], got {spec.total!r}")


def _check_sampler_fits(sampler: str, space: Sequence[ParamRange]) -> None:
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
        return _with_installed_driver(text)
    return f"sqlite:///{Path(text).resolve()}"


def _with_installed_driver(url: str) -> str:
    """A bare ``postgresql://`` URL with the PostgreSQL driver that is installed.

    SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; we ship psycopg2 (the test
    extra), so without this a plain URL failed with "Failed to import DB access module".
    An explicit driver (``postgresql+psycopg://``) is left as the user wrote it.
    """
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


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
    """An Optuna storage, or a `LabError` naming --storage when it cannot be opened.

    Fails fast: a SQLite file in a missing or read-only folder is refused before any database
    call, and a server that does not answer gives up after ``CONNECT_TIMEOUT_S`` seconds.
    """
    import optuna

    url = storage_url(storage)
    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith("sqlite:///"):
        _check_sqlite_path(url)
    last_error: Exception | None = None
    opened = None
    for attempt in range(OPEN_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opened = optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S,
                    grace_period=HEARTBEAT_GRACE_S,
                    engine_kwargs=_engine_kwargs(url),
                )
            break
        except Exception as exc:  # noqa: BLE001 - sqlalchemy/driver errors vary by backend
            last_error = exc
            if _unreachable(exc, url):
                break  # a server that is not there: say so now, do not retry
            # Two workers creating the tables at the same moment: one loses the race ("table
            # already exists", a unique violation, "database is locked"); the next try finds
            # them made.
            time.sleep(0.2 * (attempt + 1))
    if opened is None:
        text = str(last_error).strip()
        first = text.splitlines()[0] if text else type(last_error).__name__
        raise LabError("--storage", f"cannot open {shown_url(url)}: {first[:200]}") from None
    if url.startswith("sqlite"):
        _tune_sqlite(opened.engine)
    return opened


def _unreachable(exc: BaseException, url: str) -> bool:
    """A server that cannot be reached (connection refused, timeout, bad host or login): the
    driver's OperationalError somewhere in the chain, for anything but SQLite (whose
    OperationalError is a busy lock worth retrying)."""
    from sqlalchemy import exc as sa_exc

    if url.startswith("sqlite"):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa_exc.OperationalError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _check_sqlite_path(url: str) -> None:
    path = Path(url[len("sqlite:///"):])
    folder = path.parent
    if not folder.is_dir():
        raise LabError("--storage", f"{shown_url(url)}: the folder {folder} does not exist; "
                                    "allowed: a SQLite file in an existing, writable folder")
    # SQLite writes a journal beside the file, so the folder must be writable too.
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        raise LabError("--storage", f"{shown_url(url)}: {folder} is read-only; allowed: a "
                                    "SQLite file in a writable folder")


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        # Several processes on one file: wait for the lock instead of failing at once.
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if url.startswith(("postgresql", "mysql", "mariadb")):
        # An unreachable host would otherwise hang for the OS's TCP timeout (minutes).
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
                "pool_pre_ping": True}
    return {}


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
        "lab": lab_digest(spec.lab, run, space),
    }


def lab_digest(lab: Lab, run: RunSpec, space: Sequence[ParamRange]) -> str:
    """A short digest of what, besides the searched values, decides a trial's numbers: the
    problem, the seed and the tuned run's other settings (not names, colours or the values being
    searched), so a study refuses trials from another lab."""
    from core.lab.format import lab_to_dict

    searched = {p.name for p in space}
    fixed = replace(run, label="run", color=None, enabled=True,
                    params={k: v for k, v in run.params.items() if k not in searched})
    data = lab_to_dict(replace(lab, name="", runs=(fixed,)))
    data.pop("name", None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_study_name(spec: SweepSpec) -> str:
    run = _pick_run(spec.lab, spec.run)
    return f"{spec.lab.name}:{run.label}:{spec.objective}"


def _make_sampler(name: str, space: Sequence[ParamRange], seed: int, trials: int):
    import optuna

    if name in ("grid", "random"):
        # grid: `_GridClaims` picks every trial's point (shared safely between workers); the
        # sampler is never asked for a grid trial's values.
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=min(5, trials),
                                            warn_independent_sampling=False)
    with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna's words
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                          n_startup_trials=min(10, max(2, trials // 3)))


def _make_pruner(enabled: bool, steps: int):
    import optuna

    if not enabled:
        return optuna.pruners.NopPruner()
    # 5 finished trials before any pruning; never judge a trial in its first tenth of steps,
    # where every run still looks alike.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=_warmup_steps(steps))


def _warmup_steps(steps: int) -> int:
    return max(1, steps // 10)


def open_study(spec: SweepSpec, identity: dict, sampler, pruner, name: str, storage=None):
    """Create or load the study (in ``storage``, else one `open_storage` opens); refuse one that
    searches something else."""
    import optuna

    if storage is None:
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
        return study
    # Keys a study made by an older version does not have are not held against it.
    diffs = [k for k in identity if k in known and known[k] != identity[k]]
    if diffs:
        shown = [f"lab {known.get('lab')} (now {identity['lab']}: another problem, seed or "
                 "fixed hyperparameters)" if k == "lab"
                 else f"{k} {known.get(k)!r} (now {identity[k]!r})" for k in diffs]
        raise LabError(
            "--study",
            f"study {name!r} in {shown_url(storage_url(spec.storage))} was made with another "
            f"setup: {'; '.join(shown)}. Use the same lab and flags to resume it, or another "
            "--study",
        )
    if any(k not in known for k in identity):
        study.set_user_attr(ATTR_KEY, identity)
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
        self.race = make_race(lab)
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
        self.race = make_race(lab)
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


# --------------------------------------------------------------------------------------------
# Workers: who runs a trial, and handing out grid points once


WORKER_ATTR = f"{ATTR_KEY}:worker"  # trial system attribute: the worker running it
TICKET_ATTR = f"{ATTR_KEY}:ticket"  # trial system attribute: finds a trial this worker added
GRID_CLAIM = f"{ATTR_KEY}:grid"  # study system attributes "<GRID_CLAIM>:<point>:<attempt>"


class _StudyRecords:
    """The study's rows through Optuna's public storage API (`optuna.storages.BaseStorage`).

    A `Study` keeps its storage, its id and each trial's id in private attributes (which a new
    Optuna may rename); this keeps its own: the storage object `open_storage` made (the one the
    study was created on), the study's id looked up by name, and trial ids looked up by trial
    number (an id never changes, so each is asked once).
    """

    def __init__(self, storage, study):
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self._ids: dict[int, int] = {}

    def trial_id(self, number: int) -> int:
        trial_id = self._ids.get(number)
        if trial_id is None:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id,
                                                                            number)
            self._ids[number] = trial_id
        return trial_id


def _host_id() -> str:
    """This machine (and boot): the host name plus the kernel's boot id where there is one, so
    two containers or machines with the same name are told apart."""
    for path in ("/proc/sys/kernel/random/boot_id", "/etc/machine-id"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return f"{socket.gethostname()}/{text}"
    import uuid

    return f"{socket.gethostname()}/{uuid.getnode():012x}"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux /proc), "zombie" for a dead unreaped one, None
    when unknown: a pid reused by a new process is not mistaken for the old worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "(command name)": state is field 3
    if not fields:
        return None
    if fields[0] in ("Z", "X"):
        return "zombie"
    return fields[19] if len(fields) > 19 else None  # field 22: starttime


def worker_identity() -> dict:
    """This process as a sweep worker: host, pid and start time (see `fail_dead_workers`)."""
    pid = os.getpid()
    return {"host": _host_id(), "pid": pid, "start": _process_start(pid)}


def _worker_alive(worker: dict) -> bool | None:
    """Whether a worker of this host still runs; None for one elsewhere (the heartbeat's job)."""
    if worker.get("host") != _host_id() or not isinstance(worker.get("pid"), int):
        return None
    pid = worker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by another user
    start = _process_start(pid)
    if start == "zombie":
        return False
    recorded = worker.get("start")
    return not (start is not None and recorded is not None and start != recorded)


def fail_dead_workers(study, records: _StudyRecords) -> list[int]:
    """Mark failed the RUNNING trials whose worker ran on this host and no longer exists (killed,
    crashed). Returns their numbers. Trials of other hosts are left to the heartbeat."""
    import optuna

    storage = records.storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.system_attrs.get(WORKER_ATTR)
        if not isinstance(worker, dict) or _worker_alive(worker) is not False:
            continue
        trial_id = records.trial_id(trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "message",
                                        f"its worker (pid {worker['pid']}) died before it "
                                        "finished")
            if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                failed.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    return failed


class _GridClaims:
    """Every point of the grid, handed out once across all workers of a study.

    A worker claims point i for its trial by writing the study system attribute
    ``<GRID_CLAIM>:<i>:<attempt>`` (value: the trial's id) and reading it back: the database's
    unique key on (study, key) lets exactly one writer create it, the others' inserts are
    dropped, so they read someone else's trial id and move on. A point whose trial failed
    (cancelled, killed) is claimed again with the next attempt number. Points are visited in an
    order shuffled by the sampler seed (a seeded grid sweep is reproducible).
    """

    def __init__(self, study, records: _StudyRecords, space: Sequence[ParamRange], seed: int):
        import itertools

        self.study, self.records = study, records
        self.names = [p.name for p in space]
        self.distributions = {p.name: p.distribution() for p in space}
        self.points = list(itertools.product(*(p.grid_values() for p in space)))
        self.index = {point: i for i, point in enumerate(self.points)}
        self.order = [int(i) for i in np.random.default_rng(seed).permutation(len(self.points))]

    def _status(self) -> tuple[set, dict[int, int]]:
        """(points taken: finished or being trained, attempts so far per point)."""
        import optuna

        state = optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False)
        by_id = {self.records.trial_id(t.number): t for t in trials}
        taken: set[int] = set()
        for t in trials:  # also trials made without claims (older studies)
            i = self.index.get(tuple(t.params.get(n) for n in self.names))
            if i is not None and t.state != state.FAIL:
                taken.add(i)
        attempts: dict[int, int] = {}
        prefix = GRID_CLAIM + ":"
        attrs = self.records.storage.get_study_system_attrs(self.records.study_id)
        for key, trial_id in attrs.items():
            if not key.startswith(prefix):
                continue
            i = int(key[len(prefix):].split(":")[0])
            attempts[i] = attempts.get(i, 0) + 1
            claimed = by_id.get(trial_id)
            if claimed is None or claimed.state != state.FAIL:
                taken.add(i)  # claimed and not (yet) failed: someone is on it
        return taken, attempts

    def remaining(self) -> int:
        """Points nobody has finished or is training."""
        taken, _ = self._status()
        return len(self.points) - len(taken)

    def assign(self, trial):
        """Claim a free point for ``trial`` and set its parameters; None when none is left."""
        import optuna

        storage, study_id = self.records.storage, self.records.study_id
        trial_id = self.records.trial_id(trial.number)
        taken, attempts = self._status()
        for i in self.order:
            if i in taken:
                continue
            key = f"{GRID_CLAIM}:{i}:{attempts.get(i, 0)}"
            storage.set_study_system_attr(study_id, key, trial_id)
            if storage.get_study_system_attrs(study_id).get(key) != trial_id:
                continue  # another worker claimed it a moment earlier
            for name, value in zip(self.names, self.points[i]):
                dist = self.distributions[name]
                storage.set_trial_param(trial_id, name, dist.to_internal_repr(value), dist)
            return optuna.Trial(self.study, trial_id)  # re-read: params cached
        return None


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
        self.sampler_seed = seed
        sampler = _make_sampler(spec.sampler, self.space, seed, spec.total or spec.trials)
        self.name = spec.study or default_study_name(spec)
        self.storage = shown_url(storage_url(spec.storage))
        storage = open_storage(spec.storage)
        self.study = open_study(spec, self.identity, sampler,
                                _make_pruner(spec.prune, lab.steps), self.name, storage)
        self.records = _StudyRecords(storage, self.study)
        self.worker = worker_identity()
        self.grid = (_GridClaims(self.study, self.records, self.space, seed)
                     if spec.sampler == "grid" else None)
        self._fail_abandoned()

    def _fail_abandoned(self) -> None:
        """Trials left RUNNING by dead workers: failed (never counted as finished)."""
        import optuna

        fail_dead_workers(self.study, self.records)  # this host: at once
        with warnings.catch_warnings():  # Optuna calls it "experimental"
            warnings.simplefilter("ignore")
            optuna.storages.fail_stale_trials(self.study)  # other hosts: missed heartbeat

    def _wanted(self) -> int:
        """How many more trials the study needs now (``total`` mode): the target minus what is
        finished and what live workers are training."""
        import optuna

        state = optuna.trial.TrialState
        trials = self.study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED,
                                                               state.RUNNING, state.WAITING))
        return max(0, self.spec.total - len(trials))

    def _planned(self) -> int:
        spec = self.spec
        planned = spec.trials if spec.total is None else self._wanted()
        if self.grid is not None:
            planned = min(planned, self.grid.remaining())
        return planned

    def _ask(self, k: int, distributions: dict) -> list:
        """k new trials, each marked with this worker; grid trials get a claimed point."""
        import optuna

        trials = []
        with warnings.catch_warnings():  # heartbeat outside optimize(): we beat by hand
            warnings.simplefilter("ignore")
            for _ in range(k):
                trial = self._new_trial({} if self.grid is not None else distributions)
                if self.grid is not None:
                    claimed = self.grid.assign(trial)
                    if claimed is None:  # other workers took the last points meanwhile
                        trial.set_user_attr("message", "no grid point left for it")
                        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                        break
                    trial = claimed
                trials.append(trial)
        return trials

    def _new_trial(self, distributions: dict):
        """`Study.ask`, but the trial is created with this worker's mark in the same database
        write: a worker killed between creating a trial and marking it would leave a RUNNING
        trial nobody could tell was abandoned (a real SIGKILL test hit that window).

        `Study.add_trial` writes it (a RUNNING trial is valid there) but returns nothing, so the
        trial carries a ticket of its own to be found by among the running ones."""
        import datetime
        import uuid

        import optuna

        ticket = uuid.uuid4().hex
        running = optuna.trial.TrialState.RUNNING
        template = optuna.trial.FrozenTrial(
            number=-1, state=running, value=None,
            datetime_start=datetime.datetime.now(), datetime_complete=None, params={},
            distributions={}, user_attrs={},
            system_attrs={WORKER_ATTR: self.worker, TICKET_ATTR: ticket},
            intermediate_values={}, trial_id=-1,
        )
        # What ask() does first: forget the trials cached for the sampler, so the one made a
        # moment ago in this batch is seen (TPE's constant liar). The one private attribute
        # used: Optuna has no public way to do this; pyproject.toml pins Optuna's major and
        # tests/core/test_optuna_pin.py checks the attribute is still there.
        local = getattr(self.study, "_thread_local", None)
        if local is not None:
            local.cached_all_trials = None
        self.study.add_trial(template)
        number = next(t.number for t in reversed(self.study.get_trials(deepcopy=False,
                                                                      states=(running,)))
                      if t.system_attrs.get(TICKET_ATTR) == ticket)
        trial = optuna.Trial(self.study, self.records.trial_id(number))
        for param in self.space:
            if param.name in distributions:
                _suggest(trial, param)
        return trial

    def run(self, stop: threading.Event | None = None) -> Iterator[SweepProgress]:
        """Run ``spec.trials`` new trials (or until the study holds ``spec.total`` finished
        ones); throttled progress, the last with ``final=True``."""
        spec, study = self.spec, self.study
        planned = self._planned()
        session = _Session(study, planned, self.name, spec.lab.steps * self.seeds)
        distributions = {p.name: p.distribution() for p in self.space}
        yield session.progress(force=True)
        # total mode retries failed trials, but a space whose every trial fails must end too.
        limit = planned if spec.total is None else 2 * planned + spec.batch
        launched, cancelled = 0, False
        while launched < limit:
            if stop is not None and stop.is_set():
                cancelled = True
                break
            if launched:  # a worker may have died meanwhile: its trials are free again
                self._fail_abandoned()
            want = planned - launched if spec.total is None else self._wanted()
            if self.grid is not None:
                want = min(want, self.grid.remaining())  # other workers take points too
            k = min(spec.batch, want, limit - launched)
            if k <= 0:
                break
            trials = self._ask(k, distributions)
            if not trials:
                break
            launched += len(trials)
            batch = _Batch(spec, study, self.records, self.base, trials, self.seeds,
                           session)
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


def _suggest(trial, param: ParamRange):
    """Ask the sampler for one parameter through Optuna's public suggest API."""
    if param.kind == "float":
        return trial.suggest_float(param.name, param.low, param.high, log=param.log)
    if param.kind == "int":
        return trial.suggest_int(param.name, int(param.low), int(param.high), log=param.log)
    return trial.suggest_categorical(param.name, list(param.choices))


def run_sweep(spec: SweepSpec, stop: threading.Event | None = None) -> Iterator[SweepProgress]:
    """Run a sweep as a generator of throttled `SweepProgress` (see `Sweep`).

    The spec is checked when the generator starts (first ``next``). Cancelling (``stop`` set, or
    the generator closed) keeps finished trials and marks the ones in flight failed with the
    user attribute ``cancelled``.
    """
    yield from Sweep(spec).run(stop)


class _Batch:
    """K asked trials trained side by side over the seeds, then told."""

    def __init__(self, spec: SweepSpec, study, records: _StudyRecords, base: RunSpec, trials,
                 seeds: int, session: _Session):
        self.spec, self.study, self.base, self.trials = spec, study, base, list(trials)
        self.records = records
        self.seeds, self.session = seeds, session
        self.curves = {t.number: [] for t in self.trials}
        self.pruned_at: dict[int, int] = {}
        self.steps_run = {t.number: 0 for t in self.trials}
        self.started = time.perf_counter()
        self.cancelled = False
        self._heartbeat_at = -math.inf
        self._told: set[int] = set()
        self._next_check: dict[int, int] = {}  # trial -> first step to ask the pruner again

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
        """Record an evaluation; at most ``PRUNE_CHECKS`` times per seed (and at the last step)
        report it to Optuna and ask the pruner. True when the trial should be pruned.

        Every report is a database commit and every pruner question a read of the whole study,
        which for a 2-D function cost more than its training. All trials of a study report at
        the same steps (same schedule), so the median pruner still compares like with like."""
        if tick.monitored is None or not math.isfinite(tick.monitored[k]):
            return False
        curve.monitored.append((tick.step, float(tick.monitored[k])))
        steps = self.spec.lab.steps
        at = offset + tick.step  # across seeds: seed s starts at s·(steps+1)
        last = tick.step >= steps
        if not last and at < self._next_check.get(trial.number, 0):
            return False
        self._next_check[trial.number] = at + max(1, steps // PRUNE_CHECKS)
        trial.report(_intermediate(self.spec.objective, curve), at)
        # Before the warm-up the pruner would say no anyway.
        if not self.spec.prune or last or at < _warmup_steps(steps):
            return False
        return bool(trial.should_prune())

    def _heartbeat(self, active) -> None:
        storage = self.records.storage
        now = time.perf_counter()
        if now - self._heartbeat_at < HEARTBEAT_INTERVAL_S or not hasattr(storage,
                                                                             "record_heartbeat"):
            return
        self._heartbeat_at = now
        if storage.get_heartbeat_interval() is None:
            return
        for trial in active:
            if trial.number not in self._told:
                storage.record_heartbeat(self.records.trial_id(trial.number))

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
    its starting configuration). Each optimizer's study runs until it holds ``budget`` finished
    trials (`SweepSpec.total`), so on a saved storage re-running a fair race completes it instead
    of giving one optimizer more trials than another. Network labs come back with
    ``problem.seeds = seeds`` (capped at the lab format's maximum): their race shows mean ± std.
    """
    from core.optim.optimizers import get_optimizer_info

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
