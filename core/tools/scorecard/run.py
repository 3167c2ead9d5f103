"""A scorecard: entries × workloads under a ruleset, on Optuna, to scorecard.json.

Rulesets (docs/scorecard.md):

* ``external`` — each entry's one search space is its ``lr`` over the catalog's search range
  (log scale; `Entry`); every workload gets S independent studies of O quasirandom trials
  (Optuna's `QMCSampler`, scrambled Sobol, seeded by the scorecard seed + the study index; its
  first point comes from its seeded independent sampler, as Optuna does). Study s trains on the
  lab's seed + s. Per study the fastest trial to the target counts; per workload the median over
  the studies; a miss is infinite.
* ``self`` — the entry's default lr only, 1.5× the budget, one trial per seed (S seeds), median.

Trials train side by side as runs of one race (core/tools/scorecard/workloads.py): study s of
every entry on a workload trains on the same lab (seed + s), so all entries' trials of that
study share ONE race where that changes no number (`_shares_a_race`; the others one race per
study), and scorecard.json is byte for byte what one race per study gives (`BATCH_ENTRIES`).
A network's studies are not batched with each other: each has its own seed (data, initial
weights, batches), and a race has one; a function race reads its seed only for runs that keep
their own race anyway, so on a function workload every study of every entry shares one race.
Each study lives in the Optuna storage (a SQLite file by default), named by the scorecard seed,
ruleset, entry, workload, target and budget; a study that already holds O finished trials is
read, not rerun, so re-running the same command after a kill completes the scorecard: the trials
of a killed worker (same host, process gone) are failed and their points asked again, and a
finished trial is never trained twice. With ``heldout``, each base workload gets one held-out
variant drawn by the seed (as AlgoPerf draws one per workload); missing it voids the base.

`run_scorecard` returns the JSON-ready result; `wall_times` are kept apart from it, since the
result must be identical for the same seed.
"""

from __future__ import annotations

import math
import random
import statistics
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from core.errors import LabError
from core.lab.format import RunSpec
from core.tools.scorecard import profiles
from core.tools.scorecard.curves import CURVE_STEPS, CURVE_VALUES, thin_curve
from core.tools.scorecard.workloads import Workload, heldout_variants, time_to_target

RULESETS = ("external", "self")
SELF_BUDGET_MULTIPLE = 1.5
FORMAT = "descent-lab-scorecard/1"
# Entries' trials of one workload and study share a race where that gives the same numbers
# (`_shares_a_race`); False: every study its own race, as before (tests compare the two).
BATCH_ENTRIES = True


@dataclass(frozen=True)
class StudyDone:
    """What `run_scorecard`'s ``on_study`` hears after each entry's study: the study's fastest
    time (``inf`` for a miss) and its row of ``studies_detail`` (the trial and its lr, or the
    reason of the miss). core/tools/scorecard/live.py builds the partial tables from these."""

    entry: str
    workload: str  # a held-out variant's name is "base~kind"
    base: str | None  # a held-out variant's base workload, None for a base workload
    study: int
    steps: float
    grad_evals: float
    row: dict


@dataclass(frozen=True)
class Entry:
    """One optimizer of the scorecard and its one search space (lr on a log scale)."""

    name: str  # as the user wrote it
    optimizer: str  # the catalog name
    low: float
    high: float
    default: float


def entry(name: str, optimizer: str) -> Entry:
    """The entry of catalog optimizer ``optimizer`` (named ``name`` on the command line), or a
    `LabError` naming --entries when it has no valid lr search range."""
    from core.optim.catalog import get_optimizer_info

    info = get_optimizer_info(optimizer, field="--entries")
    hp = next((h for h in info.hyperparams if h.name == "lr"), None)
    if hp is None:
        raise LabError("--entries", f"{name}: has no 'lr' hyperparameter to search "
                                    "(its search space is empty)")
    search = hp.search or (hp.low, hp.high)
    low, high = (search if search else (None, None))
    default = hp.default
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high, default)) \
            or not 0 < low < high:
        raise LabError("--entries", f"{name}: invalid lr search space {search!r} "
                                    "(needs 0 < low < high, finite, and a default)")
    return Entry(name, optimizer, float(low), float(high), float(default))


@dataclass
class ScorecardSpec:
    entries: list[Entry]
    workloads: list[Workload]
    ruleset: str = "external"
    trials: int = 5
    studies: int = 5
    heldout: bool = True
    seed: int = 0
    storage: str | None = None
    wall_times: dict = field(default_factory=dict)  # filled: entry -> workload -> seconds

    def check(self) -> None:
        if self.ruleset not in RULESETS:
            raise LabError("--ruleset", f"must be one of {', '.join(RULESETS)}, "
                                        f"got {self.ruleset!r}")
        for flag, value in (("--trials", self.trials), ("--studies", self.studies)):
            if not (isinstance(value, int) and 1 <= value <= 1000):
                raise LabError(flag, f"must be a whole number in [1, 1000], got {value!r}")
        if not self.entries:
            raise LabError("--entries", "name at least one optimizer")
        if len({e.name for e in self.entries}) != len(self.entries):
            raise LabError("--entries", "each entry may appear once")
        if not self.workloads:
            raise LabError("--workloads", "name at least one workload")


def _heldout_pick(spec: ScorecardSpec) -> dict[str, Workload]:
    """One held-out variant per base workload, drawn by the seed (stable across runs)."""
    picked = {}
    for w in spec.workloads:
        variants = heldout_variants(w)
        if variants:
            picked[w.name] = random.Random(f"{spec.seed}:{w.name}").choice(variants)
    return picked


def study_budget(spec: ScorecardSpec, w: Workload) -> int:
    """The step budget of ``w``'s studies under ``spec``'s ruleset (self-tuning: 1.5×)."""
    return (int(math.ceil(w.budget * SELF_BUDGET_MULTIPLE)) if spec.ruleset == "self"
            else w.budget)


def study_name(spec: ScorecardSpec, e: Entry, w: Workload, s: int) -> str:
    """The Optuna study name of study ``s`` of ``e`` on ``w`` (core/tools/scorecard/curves.py
    reads the trials back by it)."""
    return (f"scorecard:{spec.ruleset}:seed {spec.seed}:{e.optimizer}:{w.name}:"
            f"target {w.target!r}:budget {study_budget(spec, w)}:study {s}")


class _Study:
    """One study of one entry on one workload: O trials, resumable on the storage."""

    def __init__(self, spec: ScorecardSpec, storage, e: Entry, w: Workload, s: int):
        import optuna

        from core.tools.sweep.study import StudyRecords

        self.spec, self.entry, self.workload, self.index = spec, e, w, s
        self.self_tuning = spec.ruleset == "self"
        self.budget = study_budget(spec, w)
        self.count = 1 if self.self_tuning else spec.trials
        name = study_name(spec, e, w, s)
        with warnings.catch_warnings():  # "QMCSampler is experimental": said once, in docs
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=spec.seed + s,
                warn_independent_sampling=False, warn_asynchronous_seeding=False)
        self.study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                         direction="minimize", load_if_exists=True)
        self.records = StudyRecords(storage, self.study)
        self.distribution = optuna.distributions.FloatDistribution(e.low, e.high, log=True)

    def finished(self):
        import optuna

        return [t for t in self.study.get_trials(deepcopy=False)
                if t.state == optuna.trial.TrialState.COMPLETE]

    def ask(self) -> list:
        """The trials still missing, asked and claimed (none when the study is complete)."""
        import optuna

        from core.tools.sweep.workers import WORKER_ATTR, fail_dead_workers, worker_identity

        fail_dead_workers(self.study, self.records)
        self._fail_unclaimed()
        done = self.finished()
        if len(done) >= self.count:
            return []
        trials = self.study.get_trials(deepcopy=False)
        have = {t.params.get("lr") for t in done}
        waiting = {t.params.get("lr") for t in trials
                   if t.state == optuna.trial.TrialState.WAITING}
        if self.self_tuning and not trials:
            self.study.enqueue_trial({"lr": self.entry.default})
        for t in trials:  # a killed worker's points are asked again, once
            lr = t.params.get("lr")
            if (t.state == optuna.trial.TrialState.FAIL and lr is not None
                    and lr not in have | waiting):
                self.study.enqueue_trial({"lr": lr})
                waiting.add(lr)
        worker = worker_identity()
        asked = []
        for _ in range(self.count - len(done)):
            with warnings.catch_warnings():  # the heartbeat is beaten by sweeps, not here
                warnings.simplefilter("ignore", UserWarning)
                trial = self.study.ask({"lr": self.distribution})
            # Claimed at once: a kill before this leaves an unclaimed trial (_fail_unclaimed).
            self.records.storage.set_trial_system_attr(
                self.records.trial_id(trial.number), WORKER_ATTR, worker)
            asked.append(trial)
        return asked

    def lab(self):
        """The lab this study trains on: the workload's, on the lab's seed + the study index."""
        return replace(self.workload.lab, seed=self.workload.lab.seed + self.index)

    def runs(self, asked: list) -> list[RunSpec]:
        return [RunSpec(f"{self.entry.name} trial {t.number}", self.entry.optimizer,
                        {"lr": t.params["lr"]}) for t in asked]

    def settle(self, asked: list, outcomes: list, reason: str | None,
               stop: threading.Event | None) -> float:
        """Tell the storage how ``asked`` went (``outcomes`` None: a miss for ``reason``);
        returns the wall seconds they took. Stopped: they are failed, to be asked again."""
        import optuna

        if stop is not None and stop.is_set():
            for trial in asked:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return 0.0
        wall = 0.0
        for trial, outcome in zip(asked, outcomes):
            if outcome is None:
                trial.set_user_attr("reason", reason)
                trial.set_user_attr("steps", None)
                trial.set_user_attr("grad_evals", None)
                self.study.tell(trial, float(self.budget + 1))
                continue
            wall += outcome.wall_s
            for key, value in outcome.to_dict().items():
                if key != "wall_s":
                    trial.set_user_attr(key, value)
            # The trial's curve for the window's trials plot; scorecard.json never reads it.
            curve_steps, curve_values = thin_curve(outcome.curve, self.workload.target)
            trial.set_user_attr(CURVE_STEPS, curve_steps)
            trial.set_user_attr(CURVE_VALUES, curve_values)
            self.study.tell(trial, float(outcome.steps if outcome.steps is not None
                                         else self.budget + 1))
        return wall

    def _fail_unclaimed(self) -> None:
        """Fail RUNNING trials that no worker claimed: a scorecard claims each trial right after
        asking it, so one without a claim was asked by a process killed in between."""
        import optuna

        from core.tools.sweep.workers import WORKER_ATTR

        for t in self.study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.RUNNING,)):
            if WORKER_ATTR not in t.system_attrs:
                try:
                    self.records.storage.set_trial_state_values(
                        self.records.trial_id(t.number), state=optuna.trial.TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # finished meanwhile

    def best(self, measure: str) -> tuple[float, dict | None]:
        """The fastest finished trial by ``measure`` ("steps" or "grad_evals"): (time, trial)."""
        best_time, best_row = math.inf, None
        for t in sorted(self.finished(), key=lambda t: t.number)[: self.count]:
            value = t.user_attrs.get(measure)
            if value is not None and value < best_time:
                best_time = float(value)
                best_row = {"trial": t.number, "lr": t.params["lr"], measure: value}
        return best_time, best_row


def _shares_a_race(study: _Study, asked: list) -> bool:
    """Whether ``study``'s trials may train in one race with other entries' trials of the same
    workload and study index and get exactly the numbers of their own race (module docstring).

    Same lab seed means the same data, initial weights and mini-batches, and the runs of a race
    never touch each other, except: a run's own random streams (a ``create_graph`` optimizer's
    Hessian probes, a model's dropout) are keyed by its index in the race (core/engine/
    seed_race.py, core/engine/function_race.py), so such runs keep their own race; a closure or
    Schedule-Free optimizer would send every run of a batched MLP race down the one-model-at-a-
    time path, so it keeps its own race too; and a single trial on an MLP trains alone on that
    path (core/engine/stacked.py `per_run_reason`), so it is not stacked with others."""
    from core.engine.training_step import RunUpdate

    if not BATCH_ENTRIES or not RunUpdate.of(study.entry.optimizer).plain:
        return False
    lab = study.workload.lab
    if not lab.is_network:
        return True
    layers = lab.problem.model.get("layers", [])
    return len(asked) >= 2 and not any("dropout" in layer for layer in layers)


def _train(studies: list[_Study], stop: threading.Event | None) -> list[float]:
    """Train the missing trials of ``studies`` (of one workload: one per entry and the same
    study index; on a function workload, those of every study index too): those that may share
    one race together, the others one race each. Returns each study's wall seconds (0 when it
    was complete)."""
    asked = [study.ask() for study in studies]
    shared = [i for i, (study, trials) in enumerate(zip(studies, asked))
              if trials and _shares_a_race(study, trials)]
    groups = ([shared] if shared else []) + [[i] for i, trials in enumerate(asked)
                                              if trials and i not in shared]
    walls = [0.0] * len(studies)
    for group in groups:
        outcomes, reason = _race(studies, asked, group, stop)
        if outcomes is None and len(group) > 1 and not (stop is not None and stop.is_set()):
            # A shared race that raised: each study again on its own, so a crash is charged to
            # the entry that caused it only, as when each had its own race.
            for i in group:
                outcomes_i, reason_i = _race(studies, asked, [i], stop)
                walls[i] = studies[i].settle(asked[i], outcomes_i or [None] * len(asked[i]),
                                             reason_i, stop)
            continue
        at = 0
        for i in group:
            count = len(asked[i])
            mine = outcomes[at:at + count] if outcomes is not None else [None] * count
            walls[i] = studies[i].settle(asked[i], mine, reason, stop)
            at += count
    return walls


def _race(studies: list[_Study], asked: list[list], group: list[int],
          stop: threading.Event | None) -> tuple[list | None, str | None]:
    """The outcomes of ``group``'s asked trials trained as one race (in order), or (None, the
    reason) when the race raised: any failure of a trial is a miss, not a crash."""
    first = studies[group[0]]
    runs = [run for i in group for run in studies[i].runs(asked[i])]
    try:
        return time_to_target(first.lab(), runs, first.workload.target, first.budget, stop), None
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"crashed: {text[:300]}"


def run_scorecard(spec: ScorecardSpec, stop: threading.Event | None = None,
                  on_progress: Callable[[str], None] | None = None,
                  on_study: Callable[[StudyDone], None] | None = None) -> dict:
    """Run (or complete) the scorecard; the JSON-ready result. ``on_progress`` hears a line and
    ``on_study`` a `StudyDone` after each entry's study (a study read from the storage too)."""
    from core.tools.sweep.storage import open_storage

    spec.check()
    storage = open_storage(spec.storage)
    picked = _heldout_pick(spec) if spec.heldout else {}
    workloads = list(spec.workloads) + list(picked.values())
    steps_t: dict[str, dict[str, float]] = {}
    evals_t: dict[str, dict[str, float]] = {}
    detail: dict[str, dict[str, list]] = {}
    for e in spec.entries:
        steps_t[e.name], evals_t[e.name], detail[e.name] = {}, {}, {}
        spec.wall_times[e.name] = {}
    for w in workloads:
        per_steps = {e.name: [] for e in spec.entries}
        per_evals = {e.name: [] for e in spec.entries}
        rows = {e.name: [] for e in spec.entries}
        wall = dict.fromkeys(per_steps, 0.0)
        # A function race reads its lab's seed only for create_graph runs' random streams,
        # which keep their own race (`_shares_a_race`): so there every study of every entry
        # shares one race; a network's study s trains on seed + s, one race per study.
        across = BATCH_ENTRIES and not w.lab.is_network
        trained = {}
        if across:
            grid = [[_Study(spec, storage, e, w, s) for e in spec.entries]
                    for s in range(spec.studies)]
            walls = _train([study for row in grid for study in row], stop)
            trained = {s: (row, walls[s * len(row):(s + 1) * len(row)])
                       for s, row in enumerate(grid)}
        for s in range(spec.studies):
            if across:
                studies, walls = trained[s]
            else:
                studies = [_Study(spec, storage, e, w, s) for e in spec.entries]
                walls = _train(studies, stop)
            if stop is not None and stop.is_set():
                raise InterruptedError("the scorecard was stopped")
            for e, study, spent in zip(spec.entries, studies, walls):
                wall[e.name] += spent
                t_steps, row = study.best("steps")
                t_evals, _ = study.best("grad_evals")
                per_steps[e.name].append(t_steps)
                per_evals[e.name].append(t_evals)
                rows[e.name].append(row if row is not None
                                    else {"trial": None, "reason": _reason(study)})
                if on_progress is not None:
                    on_progress(f"{e.name} on {w.name}: study {s + 1}/{spec.studies}: "
                                + (f"{t_steps:g} steps" if math.isfinite(t_steps) else "miss"))
                if on_study is not None:
                    on_study(StudyDone(e.name, w.name, w.base, s, t_steps, t_evals,
                                       row if row is not None
                                       else {"trial": None, "reason": _reason(study)}))
        for e in spec.entries:
            steps_t[e.name][w.name] = statistics.median(per_steps[e.name])
            evals_t[e.name][w.name] = statistics.median(per_evals[e.name])
            detail[e.name][w.name] = rows[e.name]
            spec.wall_times[e.name][w.name] = wall[e.name]
    bases = [w.name for w in spec.workloads]
    variants = {base: v.name for base, v in picked.items()}
    result = {"format": FORMAT, "ruleset": spec.ruleset, "seed": spec.seed,
              "trials": spec.trials if spec.ruleset == "external" else 1,
              "studies": spec.studies, "heldout": spec.heldout,
              "workloads": {w.name: {"target": w.target, "budget": w.budget,
                                     "heldout_variant": variants.get(w.name),
                                     "heldout_target": (picked[w.name].target
                                                        if w.name in picked else None)}
                            for w in spec.workloads}}
    for measure, table in (("steps", steps_t), ("grad_evals", evals_t)):
        heldout = {e: {base: [table[e][v]] for base, v in variants.items()} for e in table}
        base_table = {e: {w: table[e][w] for w in bases} for e in table}
        voided = profiles.apply_heldout(base_table, heldout)
        ratios = profiles.ratios(voided)
        key = "times" if measure == "steps" else "grad_evals"
        result[key] = {e: {w: _num(t) for w, t in row.items()} for e, row in voided.items()}
        result[f"ratios_{measure}"] = {e: {w: _num(r) for w, r in row.items()}
                                       for e, row in ratios.items()}
        result[f"score_{measure}"] = {e: profiles.score(row) for e, row in ratios.items()}
        if measure == "steps":
            result["voided"] = {e: sorted(w for w in bases if math.isfinite(base_table[e][w])
                                          and not math.isfinite(voided[e][w])) for e in table}
    if variants:
        result["heldout_times"] = {e: {v: _num(steps_t[e][v]) for v in variants.values()}
                                   for e in steps_t}
    result["entries"] = [{"name": e.name, "optimizer": e.name if ":" in e.name else e.optimizer,
                          "score": result["score_steps"][e.name],
                          "score_grad_evals": result["score_grad_evals"][e.name],
                          "search_space": ({"lr": {"low": e.low, "high": e.high, "log": True}}
                                           if spec.ruleset == "external"
                                           else {"lr": e.default})}
                         for e in spec.entries]
    result["studies_detail"] = detail
    return result


def _reason(study: _Study) -> str | None:
    reasons = [t.user_attrs.get("reason") for t in study.finished()]
    return next((r for r in reasons if r), None)


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
