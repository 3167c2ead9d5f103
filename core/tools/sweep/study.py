"""The Optuna study of a sweep: what it searches, opening it, and its rows by id.

A study remembers what it searches (`study_identity`: space, objective, steps, seeds and a digest
of the lab): `open_study` refuses to add trials made with other settings. The sampler and the
pruner a sweep uses are made here (`make_sampler`, `make_pruner`), and `StudyRecords` reaches the
study's rows through Optuna's public storage API.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import replace

from core.errors import LabError
from core.lab.format import Lab, RunSpec
from core.tools.sweep.space import ParamRange
from core.tools.sweep.spec import SweepSpec, pick_run
from core.tools.sweep.storage import open_storage, shown_url, storage_url

ATTR_KEY = "descent_lab"


def study_identity(spec: SweepSpec, run: RunSpec, space: Sequence[ParamRange]) -> dict:
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
    run = pick_run(spec.lab, spec.run)
    return f"{spec.lab.name}:{run.label}:{spec.objective}"


def make_sampler(name: str, space: Sequence[ParamRange], seed: int, trials: int):
    import optuna

    if name in ("grid", "random"):
        # grid: `GridClaims` picks every trial's point (shared safely between workers); the
        # sampler is never asked for a grid trial's values.
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=min(5, trials),
                                            warn_independent_sampling=False)
    with warnings.catch_warnings():  # constant_liar is "experimental" in Optuna's words
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True,
                                          n_startup_trials=min(10, max(2, trials // 3)))


def make_pruner(enabled: bool, steps: int):
    import optuna

    if not enabled:
        return optuna.pruners.NopPruner()
    # 5 finished trials before any pruning; never judge a trial in its first tenth of steps,
    # where every run still looks alike.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup_steps(steps))


def warmup_steps(steps: int) -> int:
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


class StudyRecords:
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
