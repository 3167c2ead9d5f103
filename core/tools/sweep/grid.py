"""Grid points handed out once across all workers of a study, claimed in its database."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.tools.sweep.space import ParamRange
from core.tools.sweep.study import ATTR_KEY, StudyRecords

GRID_CLAIM = f"{ATTR_KEY}:grid"  # study system attributes "<GRID_CLAIM>:<point>:<attempt>"


class GridClaims:
    """Every point of the grid, handed out once across all workers of a study.

    A worker claims point i for its trial by writing the study system attribute
    ``<GRID_CLAIM>:<i>:<attempt>`` (value: the trial's id) and reading it back: the database's
    unique key on (study, key) lets exactly one writer create it, the others' inserts are
    dropped, so they read someone else's trial id and move on. A point whose trial failed
    (cancelled, killed) is claimed again with the next attempt number. Points are visited in an
    order shuffled by the sampler seed (a seeded grid sweep is reproducible).
    """

    def __init__(self, study, records: StudyRecords, space: Sequence[ParamRange], seed: int):
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
