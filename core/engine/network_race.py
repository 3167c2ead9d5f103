"""The network engine: trains every run of a network lab side by side and yields plain records.

Fairness is the point of a race, so every run starts from the *same* initial weights (one model
is built from the lab's seed by `core.engine.race_setup.initial_model` and copied) and sees the
*same* mini-batches in the same order (one seeded generator draws each epoch's permutation once
for all runs, `core.engine.training_step.BatchOrder`). Dropout masks come from a per-run
``torch.Generator`` (`core.problems.models.dropout_stream`) that the run's model owns, so adding
or removing a run never changes another run's numbers. Nothing here draws from or reseeds
torch's process-global generator: a race gives the same numbers alone or beside other work in
other threads (sweeps, range tests, surfaces).

Each step ``t`` (0 … steps), for every live run, in the order a plain PyTorch script uses::

    out = model(x_batch_t); loss = criterion(out, y_batch_t) + l1·Σ|W| + l2·ΣW²
    opt.zero_grad(); loss.backward(); clip; record; opt.step(); schedule.step(loss)

(no update after the last record). So the record of step t holds the loss of batch t at the
weights after t updates — the same convention as the function engine. Every ``eval_every`` steps
(and at the first and last step) the record also carries validation and full-train metrics, the
per-layer gradient norms and update/weight ratios, and, for 2-D data, each run's decision boundary
on a grid. Records hold numpy arrays and floats only.

Seeds. A problem with ``"seeds": S`` > 1 trains every run S times, in lockstep: seed s (0 … S−1)
is a complete race of its own (`core.engine.seed_race.SeedRace`: its models, optimizers,
schedules, batch order and stacked fast path) whose initial weights, batch order and dropout streams come from
``lab.seed + s·SEED_STRIDE`` (1000); the data set is the same for all seeds (its own seed). For a
given seed every run shares the initial weights and the batches, so fairness holds per seed. Each
step `NetworkRace.records` yields ONE record whose per-run arrays are the mean over the seeds
still alive for that run, with the standard deviation (numpy's, ddof = 0: 0 when one seed is
left) in ``loss_std`` and ``Evaluation.train_std`` / ``val_std``; ``seed_loss`` has each seed's
own loss. Decision boundaries, fitted curves, confusion matrices and weights are seed 0's (the
first seed still training once seed 0 has ended). A run is alive while any of its seeds is; each
seed diverges or stops early on its own, and when the last one ends the run's event names every
seed's fate. `NetworkRace.models`, ``stack`` and `state_dicts` are seed 0's. With S = 1 the race
is exactly the single-seed race, record for record.

Where the pieces live: this module holds the lockstep race over the seeds (`NetworkRace`); one
seed's race is core/engine/seed_race.py, THE training step core/engine/training_step.py, the
initial model and shared setup core/engine/race_setup.py, the parameter watch and out-of-memory
detection core/engine/param_watch.py, evaluations core/engine/network_evaluation.py, and the
records and events core/engine/network_records.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from torch import nn

from core.engine.faults import DEFAULT_STEP_TIME_LIMIT
from core.engine.function_race import Divergence
from core.engine.network_records import EarlyStop, Evaluation, NetworkRecord
from core.engine.race_setup import RaceSetup
from core.engine.seed_race import SeedRace
from core.engine.stacked import StackedMLP
from core.engine.training_step import BatchOrder
from core.lab.format import SEED_STRIDE, Lab


class NetworkRace:
    """State of a network race over ``lab.problem.seeds`` seeds; `records()` advances it.

    With one seed this is exactly that seed's `SeedRace` (the same arrays and records). With S
    seeds the S races step in lockstep and each record holds per-run means and stds over the
    seeds still alive (module docstring). ``models``, ``stack``, ``optimizers``, ``order`` and
    `state_dicts` are seed 0's; ``alive`` / ``diverged`` / ``stopped`` / ``best_val`` /
    ``wall_s`` are per run over all seeds (``best_val``: the best mean validation loss;
    ``wall_s``: the compute time of all its seeds). Setting ``alive[i] = False`` between records
    (core.tools.sweep's pruning) stops run i on every seed. A relative CSV path in the lab is
    read from the lab file's folder (``lab.base_path``). Build one with core/engine/factory.py.
    """

    def __init__(self, lab: Lab, step_time_limit: float | None = DEFAULT_STEP_TIME_LIMIT):
        self.lab = lab
        self.seed_count = int(getattr(lab.problem, "seeds", 1))
        setup = RaceSetup.of(lab)
        # step_time_limit: seconds one run's optimizer step may take (core/engine/faults.py).
        self.seed_races = [SeedRace(lab, setup, s, step_time_limit)
                           for s in range(self.seed_count)]
        first = self.seed_races[0]
        self.runs, self.labels = first.runs, first.labels
        self.device, self.notices = setup.device, setup.notices
        self.data, self.model_spec, self.task = setup.data, setup.model_spec, first.task
        self.criterion = setup.criterion
        self.x_train, self.y_train = setup.x_train, setup.y_train
        self.x_val, self.y_val = setup.x_val, setup.y_val
        count = len(self.runs)
        # Every seed's own events (named by seed), in the order they happened.
        self.seed_events: list[Divergence | EarlyStop] = []
        # Per run, each ended seed's event (None: stopped early) and its fate in words.
        self._fates: list[list[tuple[Divergence | None, str]]] = [[] for _ in range(count)]
        if self.seed_count == 1:
            # The very same arrays: whoever reads or writes them sees the one race.
            self.alive, self.diverged, self.stopped = first.alive, first.diverged, first.stopped
            self.best_val, self.best_val_step = first.best_val, first.best_val_step
            self.wall_s = first.wall_s
        else:
            self.alive = np.ones(count, dtype=bool)
            self.diverged = [None] * count
            self.stopped = [None] * count
            self.best_val = np.full(count, np.inf)
            self.best_val_step = np.zeros(count, dtype=int)
            self.wall_s = np.zeros(count)
        self._step = 0
        self._last_evaluation: Evaluation | None = None
        self._last = {name: np.zeros(count) for name in ("loss", "lr", "grad", "loss_std")}
        self._started = time.perf_counter()

    # Seed 0's pieces, for the code that looks inside one race (landscape, bench, tests).
    @property
    def models(self) -> list[nn.Module]:
        return self.seed_races[0].models

    @property
    def stack(self) -> StackedMLP | None:
        return self.seed_races[0].stack

    @property
    def optimizers(self):
        return self.seed_races[0].optimizers

    @property
    def schedules(self):
        return self.seed_races[0].schedules

    @property
    def order(self) -> BatchOrder:
        return self.seed_races[0].order

    @property
    def has_dropout(self) -> bool:
        return self.seed_races[0].has_dropout

    @property
    def step(self) -> int:
        return self.seed_races[0].step if self.seed_count == 1 else self._step

    @property
    def last_evaluation(self) -> Evaluation | None:
        if self.seed_count == 1:
            return self.seed_races[0].last_evaluation
        return self._last_evaluation

    def state_dicts(self) -> dict[str, dict]:
        """Seed 0's weights of every run (``weights/<label>.pt``)."""
        return self.seed_races[0].state_dicts()

    def records(self, stop: threading.Event | None = None) -> Iterator[NetworkRecord]:
        if self.seed_count == 1:
            yield from self.seed_races[0].records(stop)
            return
        steps = self.lab.steps
        while True:
            if stop is not None and stop.is_set():
                return
            active = []
            for race in self.seed_races:
                race.alive &= self.alive  # a run pruned from outside stops on every seed
                if race.alive.any():
                    active.append(race)
            if not active:
                return
            diverged = [race.train_phase() for race in active]
            evaluate = (active[0].scheduled_evaluation() or any(diverged))
            seed_records = [(race.seed_index, race.finish_phase(evaluate)) for race in active]
            yield self._combine(seed_records)
            if self._step >= steps or not self.alive.any():
                return
            self._step += 1
            for race in active:
                race.step += 1

    # -- combining the seeds -----------------------------------------------------------------

    def _combine(self, seed_records: list[tuple[int, NetworkRecord]]) -> NetworkRecord:
        """One record of per-run means/stds over the seeds whose run is alive in their record."""
        count = len(self.runs)
        first = seed_records[0][1]
        owned = np.stack([rec.alive for _, rec in seed_records])  # (S_active, R)
        record_alive = owned.any(axis=0)
        seeds_alive = owned.sum(axis=0)

        def stats(values: np.ndarray, previous: tuple | None = None):
            mean, std = _masked_mean_std(values, owned)
            if previous is not None:  # a run no seed owns keeps its last numbers
                mean = np.where(record_alive, mean, previous[0])
                std = np.where(record_alive, std, previous[1])
            return mean, std

        last = self._last
        loss, loss_std = stats(np.stack([rec.loss for _, rec in seed_records]),
                               (last["loss"], last["loss_std"]))
        lr, _ = stats(np.stack([rec.lr for _, rec in seed_records]), (last["lr"], last["lr"]))
        grad, _ = stats(np.stack([rec.grad_norm for _, rec in seed_records]),
                        (last["grad"], last["grad"]))
        self._last = {"loss": loss, "lr": lr, "grad": grad, "loss_std": loss_std}
        seed_loss = np.full((self.seed_count, count), np.nan)
        for (s, rec), mask in zip(seed_records, owned):
            seed_loss[s, mask] = rec.loss[mask]

        evaluation = None
        if first.evaluation is not None:
            evaluation = self._combine_evaluations(
                [rec.evaluation for _, rec in seed_records], owned)
            self._last_evaluation = evaluation
            val_loss = evaluation.val.get("loss")
            if val_loss is not None:
                better = record_alive & (val_loss < self.best_val)
                self.best_val[better] = val_loss[better]
                self.best_val_step[better] = first.step

        # Seed events, then the runs whose last seed ended at this step.
        for s, rec in seed_records:
            name = f"seed {s} (seed {self.lab.seed + SEED_STRIDE * s})"
            for event in rec.diverged:
                self.seed_events.append(replace(event, reason=f"{name}: {event.reason}"))
                self._fates[event.run].append(
                    (event, f"seed {s} {event.verb} at step {event.step} ({event.reason})"))
            for event in rec.stopped:
                self.seed_events.append(EarlyStop(
                    event.run, event.label, event.step, event.best_step, event.best_val_loss,
                    f"{name} stopped early at step {event.step}"))
                self._fates[event.run].append(
                    (None, f"seed {s} stopped early at step {event.step}"))
        was_alive = self.alive.copy()
        self.alive[:] = np.any([race.alive for race in self.seed_races], axis=0)
        self.wall_s[:] = np.sum([race.wall_s for race in self.seed_races], axis=0)
        diverged, stopped = [], []
        for i in np.flatnonzero(was_alive & ~self.alive):
            event = self._run_event(int(i), first.step)
            if event is None:
                continue
            if isinstance(event, Divergence):
                self.diverged[i] = event
                diverged.append(event)
            else:
                self.stopped[i] = event
                stopped.append(event)
        return NetworkRecord(
            step=first.step,
            epoch=first.epoch,
            loss=loss,
            lr=lr,
            grad_norm=grad,
            alive=record_alive,
            wall_time=time.perf_counter() - self._started,
            evaluation=evaluation,
            diverged=tuple(diverged),
            stopped=tuple(stopped),
            loss_std=loss_std,
            seed_loss=seed_loss,
            seeds_alive=seeds_alive,
            sharpness=self._combine_sharpness(seed_records),
            preconditioned_sharpness=self._combine_sharpness(seed_records,
                                                             "preconditioned_sharpness"),
            edge=self._combine_sharpness(seed_records, "edge"),
            clipped=(None if first.clipped is None
                     else np.any([rec.clipped for _, rec in seed_records], axis=0)),
        )

    def _combine_sharpness(self, seed_records: list[tuple[int, NetworkRecord]],
                           field: str = "sharpness"):
        """Per run: the mean sharpness over the seeds that measured it (None when none did);
        ``field`` another of the record's sharpness columns (preconditioned, edge).

        A seed whose run was alive but whose solve did not converge (NaN) makes the run's mean
        NaN too ("not converged"): a mean over the other seeds would pass for a measured value."""
        measured = [rec for _, rec in seed_records if getattr(rec, field, None) is not None]
        if not measured:
            return None
        stacked = np.stack([getattr(rec, field) for rec in measured])
        alive = np.stack([rec.alive for rec in measured])
        finite = np.isfinite(stacked)
        failed = (alive & ~finite).any(axis=0)
        total = np.where(finite, stacked, 0.0).sum(axis=0)
        count = finite.sum(axis=0)
        return np.where((count > 0) & ~failed, total / np.maximum(count, 1), np.nan)

    def _run_event(self, i: int, step: int) -> Divergence | EarlyStop | None:
        """Run i's last seed ended at ``step``: one event naming every seed's fate.

        A divergence of any seed makes the run "diverged", a fault of any seed's optimizer
        (core/engine/faults.py) "failed" / "too slow" with the first such seed's traceback;
        otherwise it stopped early (with the best mean validation loss). A run pruned from
        outside has no event.
        """
        fates = self._fates[i]
        if not fates:
            return None
        text = f"all {self.seed_count} seeds ended: " + "; ".join(text for _, text in fates)
        label = self.labels[i]
        ended = [event for event, _ in fates if event is not None]
        faulty = [event for event in ended if event.kind != "diverged"]
        if faulty:
            return Divergence(i, label, step, text, kind=faulty[0].kind,
                              traceback=faulty[0].traceback)
        if ended:
            return Divergence(i, label, step, text)
        return EarlyStop(i, label, step, int(self.best_val_step[i]), float(self.best_val[i]), text)

    def _combine_evaluations(self, evaluations: list[Evaluation], owned: np.ndarray) -> Evaluation:
        """Means/stds of the metrics and per-layer statistics; pictures from the first seed."""
        anyone = owned.any(axis=0)
        # A run no seed owns (already ended everywhere) is averaged over all seeds evaluated.
        mask = np.where(anyone[None, :], owned, True)

        def split(name: str) -> tuple[dict, dict]:
            means, stds = {}, {}
            for key in getattr(evaluations[0], name):
                values = np.stack([getattr(ev, name)[key] for ev in evaluations])
                means[key], stds[key] = _masked_mean_std(values, mask)
            return means, stds

        train, train_std = split("train")
        val, val_std = split("val")

        def layers(name: str) -> np.ndarray:
            values = np.stack([getattr(ev, name) for ev in evaluations])  # (S, R, L)
            weight = mask[:, :, None].astype(np.float64)
            total = np.where(weight > 0, values, 0.0).sum(axis=0)
            return total / np.maximum(weight.sum(axis=0), 1.0)

        picture = evaluations[0]
        return Evaluation(
            train=train, val=val,
            layer_grad_norm=layers("layer_grad_norm"),
            update_ratio=layers("update_ratio"),
            confusion=picture.confusion, boundary=picture.boundary,
            boundary_class=picture.boundary_class, curve=picture.curve,
            weights=picture.weights, neurons=picture.neurons, train_std=train_std,
            val_std=val_std,
            val_scores=picture.val_scores,
            hidden_grad=picture.hidden_grad, recurrent_radius=picture.recurrent_radius,
            weight_spectra=picture.weight_spectra, update_spectra=picture.update_spectra,
        )


def _masked_mean_std(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (S, R) ``values``: mean and std (ddof 0) over the rows where ``mask``.

    Columns without a masked row give NaN (callers replace them)."""
    n = mask.sum(axis=0)
    safe = np.maximum(n, 1)
    picked = np.where(mask, values, 0.0)
    mean = picked.sum(axis=0) / safe
    dev = np.where(mask, values - mean[None, :], 0.0)
    std = np.sqrt((dev * dev).sum(axis=0) / safe)
    empty = n == 0
    if empty.any():
        mean = np.where(empty, np.nan, mean)
        std = np.where(empty, np.nan, std)
    return mean, std
