"""The sweep itself: `Sweep` (checks a spec, opens the study, asks and trains trials in
batches), `run_sweep` and `sweep` (a generator of progress, and the same run to its end), the
tuned run of a finished sweep (`best_run`) and the trials table (`trial_rows`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from core.lab.format import RunSpec, validate_lab
from core.tools.sweep.batch import Batch
from core.tools.sweep.grid import GridClaims
from core.tools.sweep.session import Session
from core.tools.sweep.space import ParamRange, build_search_space
from core.tools.sweep.spec import (
    SweepProgress,
    SweepSpec,
    check_sampler_fits,
    check_spec,
    pick_run,
)
from core.tools.sweep.storage import open_storage, shown_url, storage_url
from core.tools.sweep.study import (
    StudyRecords,
    default_study_name,
    make_pruner,
    make_sampler,
    open_study,
    study_identity,
)
from core.tools.sweep.workers import TICKET_ATTR, WORKER_ATTR, fail_dead_workers, worker_identity


class Sweep:
    """One sweep call: checks the spec and opens the study at once, then `run` trains.

    Everything a user typed is checked in the constructor (a `LabError` before any trial), so
    the GUI can show the error next to the field and the CLI can exit 2 without writing
    anything. ``study`` is the Optuna study (the trials table, the views, the CSV export).
    """

    def __init__(self, spec: SweepSpec):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no log line per trial
        check_spec(spec)
        lab = spec.lab
        self.spec = spec
        self.base = pick_run(lab, spec.run)
        self.space = build_search_space(self.base.optimizer, spec.params)
        check_sampler_fits(spec.sampler, self.space)
        self.seeds = spec.seeds if lab.is_network else 1  # a function lab has no randomness
        self.identity = study_identity(replace(spec, seeds=self.seeds), self.base, self.space)
        seed = lab.seed if spec.sampler_seed is None else spec.sampler_seed
        self.sampler_seed = seed
        sampler = make_sampler(spec.sampler, self.space, seed, spec.total or spec.trials)
        self.name = spec.study or default_study_name(spec)
        self.storage = shown_url(storage_url(spec.storage))
        storage = open_storage(spec.storage)
        self.study = open_study(spec, self.identity, sampler,
                                make_pruner(spec.prune, lab.steps), self.name, storage)
        self.records = StudyRecords(storage, self.study)
        self.worker = worker_identity()
        self.grid = (GridClaims(self.study, self.records, self.space, seed)
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
        session = Session(study, planned, self.name, spec.lab.steps * self.seeds)
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
            batch = Batch(spec, study, self.records, self.base, trials, self.seeds,
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


def best_run(spec: SweepSpec, best_params: dict, label: str | None = None) -> RunSpec:
    """The tuned run: the swept run with the best parameters (validated)."""
    base = pick_run(spec.lab, spec.run)
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
