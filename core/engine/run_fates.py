"""How a run of one seed's network race ends: divergence, a faulted update, out of memory,
early stopping — each freezes the run and says why, while the other runs go on.

`RunFates` is the part of `core.engine.seed_race.SeedRace` that decides and records a run's end;
it works on the race's own state: ``models``, ``optimizers``, ``device``, ``runs``, ``labels``,
``step``, ``alive``, ``diverged``, ``stopped``, the parameter watch ``_watch``
(core/engine/param_watch.py), the faults and out-of-memory errors of the latest update
(``_faults``, ``_out_of_memory``; core/engine/faults.py), the last finite loss, gradient norm and
lr of each run, and the early-stopping bookkeeping (``best_val``, ``best_val_step``,
``_evals_since_best``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from core.engine.faults import FAILED, Fault
from core.engine.function_race import EXPLODE_FACTOR, Divergence, finite_or_none
from core.engine.network_records import EarlyStop, Evaluation
from core.engine.param_watch import PARAM_NORM_FACTOR


class RunFates:
    """Divergence checks, faults and early stopping of a `SeedRace` (see the module text)."""

    def _release(self, i: int) -> None:
        """Free what run i holds beyond its weights: gradients and optimizer state."""
        self.models[i].zero_grad(set_to_none=True)
        for opt in self.optimizers[i]:
            opt.zero_grad(set_to_none=True)
            for state in opt.state.values():
                state.clear()  # the dict itself may be shared with the stack's stepper
        self._free_cache()

    def _free_cache(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _check_divergence(self, i: int, loss: float, grad_norm: float) -> Divergence | None:
        """NaN/Inf or an exploding loss or gradient: run i's divergence (see `_diverge`)."""
        reason = None
        if not math.isfinite(loss):
            reason = "the loss became NaN" if math.isnan(loss) else "the loss became infinite"
        elif abs(loss) > EXPLODE_FACTOR * (self._start_loss[i] + 1.0):
            reason = f"the loss exploded to {loss:.3g}"
        elif not math.isfinite(grad_norm):
            reason = "the gradient became NaN/Inf"
        if reason is None:
            return None
        return self._diverge(i, reason)

    def _check_parameters(self) -> list[Divergence]:
        """Before this step uses the weights: runs whose latest update ran out of memory or
        blew their parameter norm up (one batched norm per step, `ParamWatch`)."""
        events = self._take_faults() + self._take_out_of_memory()
        flagged, norms = self._watch.blown(self.alive)
        for i in flagged:
            norm = float(norms[i])
            if math.isfinite(norm):
                reason = (f"the parameter norm blew up to {norm:.3g} (more than "
                          f"{PARAM_NORM_FACTOR:g} × (start norm {self._watch.start[i]:.3g} + 1))")
            else:
                reason = "the parameters became NaN/Inf"
            events.append(self._diverge(int(i), reason, param_norm=norm))
        return events

    def _take_out_of_memory(self) -> list[Divergence]:
        """Runs that ran out of memory: frozen as failed (not diverged: their numbers were
        fine), their memory given back."""
        events = []
        for i, message in self._out_of_memory.items():
            if self.alive[i]:
                reason = f"out of memory: {message}"
                events.append(self._diverge(i, reason, blame=False, fault=Fault(FAILED, reason)))
                self._release(i)
        self._out_of_memory.clear()
        return events

    def _take_faults(self) -> list[Divergence]:
        """Runs whose latest update faulted: their weights back from before it, their memory
        given back, each frozen with the fault's kind and traceback."""
        events = []
        for i, fault in self._faults.items():
            if self.alive[i]:
                self._watch.restore(i)
                events.append(self._diverge(i, fault.reason, blame=False, fault=fault))
                self._release(i)
        self._faults.clear()
        return events

    def _diverge(self, i: int, reason: str, param_norm: float | None = None,
                 blame: bool = True, fault: Fault | None = None) -> Divergence:
        """Freeze run i with its forensics: the tensor its latest update blew up (named in the
        reason too), the last finite loss and gradient norm (step - 1) and that update's lr."""
        layer, ratio = None, None
        if blame:
            layer, ratio, culprit = self._watch.blame(i)
            if culprit:
                reason = f"{reason}; {culprit}"
        if param_norm is None:
            param_norm = float(self._watch.norms()[i])
        first = self.step == 0  # no update yet: nothing before it is known
        event = Divergence(
            i, self.labels[i], self.step, reason, layer=layer,
            lr=None if first else finite_or_none(self._last_lr[i]),
            last_loss=None if first else finite_or_none(self._last_loss[i]),
            last_grad_norm=None if first else finite_or_none(self._last_grad[i]),
            update_ratio=finite_or_none(ratio), param_norm=finite_or_none(param_norm),
        )
        if fault is not None:
            event = replace(event, kind=fault.kind, traceback=fault.traceback)
        self.alive[i] = False
        self.diverged[i] = event
        return event

    def _early_stopping(self, evaluation: Evaluation) -> list[EarlyStop]:
        events = []
        val_loss = evaluation.val.get("loss")
        if val_loss is None:
            return events
        for i in np.flatnonzero(self.alive):
            rule = self.runs[i].early_stopping
            value = float(val_loss[i])
            min_delta = rule.get("min_delta", 0.0) if rule else 0.0
            if value < self.best_val[i] - min_delta:
                self.best_val[i] = value
                self.best_val_step[i] = self.step
                self._evals_since_best[i] = 0
            else:
                self._evals_since_best[i] += 1
            if rule and self._evals_since_best[i] > rule["patience"]:
                self.alive[i] = False
                event = EarlyStop(int(i), self.labels[i], self.step, int(self.best_val_step[i]),
                                  float(self.best_val[i]))
                self.stopped[i] = event
                events.append(event)
        return events
