"""The bookkeeping of one sweep call: counts by state, the best trial, timing and throttling.

`Session` turns finished trials into `SweepProgress` reports at most every
``PROGRESS_INTERVAL_S`` (plus forced and final ones), re-reading the study for what other
workers added only when it reports for good.
"""

from __future__ import annotations

import math
import time

from core.tools.sweep.spec import SweepProgress, TrialResult

PROGRESS_INTERVAL_S = 0.05  # Orange3's rule: progress throttled at the source


class Session:
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
