"""K trials trained side by side as K runs of one race, pruned, and told to the study.

The trials of a batch share the race's data, initial weights and mini-batches; each has its own
optimizer and schedule. `make_ticks` wraps the race (`FunctionRace` or `NetworkRace`, from
core/engine/factory.py) as a stream of `_Tick`s; `Batch` trains its trials over the seeds,
reports to the pruner (at most ``PRUNE_CHECKS`` times per run and seed), freezes a pruned trial
in its race (``alive`` False), beats the heartbeat and tells each trial's end to the study.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from core.engine.factory import make_race
from core.errors import LabError
from core.lab.format import Lab, RunSpec, validate_lab
from core.tools.sweep.objective import Curve, intermediate_value, objective_value
from core.tools.sweep.session import Session
from core.tools.sweep.spec import SweepProgress, SweepSpec, TrialResult
from core.tools.sweep.storage import HEARTBEAT_INTERVAL_S
from core.tools.sweep.study import StudyRecords, warmup_steps

FUNCTION_REPORTS = 50  # function labs report the loss this many times per run
# Trials report to Optuna (and ask the pruner) at most this many times per run and seed: a
# report is a database commit, a question reads every trial of the study (see Batch._monitor).
PRUNE_CHECKS = 10


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


class Batch:
    """K asked trials trained side by side over the seeds, then told."""

    def __init__(self, spec: SweepSpec, study, records: StudyRecords, base: RunSpec, trials,
                 seeds: int, session: Session):
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
        curves = [Curve() for _ in active]
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

    def _monitor(self, trial, curve: Curve, tick: _Tick, k: int, offset: int) -> bool:
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
        trial.report(intermediate_value(self.spec.objective, curve), at)
        # Before the warm-up the pruner would say no anyway.
        if not self.spec.prune or last or at < warmup_steps(steps):
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
