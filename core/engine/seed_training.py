"""How one step of a seed's network race trains every live run: forward, backward and clipping,
in the stacked batched pass (core/engine/stacked.py) or one run at a time
(`core.engine.training_step.train_step`), with Schedule-Free's train()/eval() modes around it.

`RunTraining` is that part of `core.engine.seed_race.SeedRace`; it works on the race's own state:
``runs``, ``models``, ``optimizers``, ``updates`` (each run's `RunUpdate`), ``criterion``,
``stack`` and whether it was given up for one run at a time (``_unbatched``), the runs' L1/L2
``_penalties``, ``alive``, ``wall_s``, the runs with train()/eval() modes (``_moded``), and the
faults and out-of-memory errors of this step (``_faults``, ``_out_of_memory``), which
`core.engine.run_fates.RunFates` then turns into the runs' ends.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from core.engine.faults import fault_of, out_of_memory
from core.engine.training_step import train_step


class RunTraining:
    """The training half of a step of a `SeedRace` (see the module text)."""

    def _train_step(self, i: int, xb, yb) -> tuple[float, float, torch.Tensor]:
        """Forward + backward (+ clipping) of run i (`train_step`)."""
        return train_step(self.runs[i], self.models[i], self.optimizers[i], self.criterion, xb, yb,
                          self.updates[i].create_graph)

    def _to_train(self) -> None:
        """Schedule-Free runs to y, where the gradient is taken (`RunUpdate`)."""
        for i in self._moded:
            if self.alive[i] and i not in self._faults:
                self._switch(i, self.updates[i].to_train)

    def _to_eval(self, first: bool = False) -> None:
        """Schedule-Free runs to x, the point every evaluation reads (`RunUpdate`). Not before
        the ``first`` update: x is then the starting point, and some (SPlus) keep no average
        to evaluate at until they have stepped."""
        if first:
            return
        for i in self._moded:
            if i not in self._faults:
                self._switch(i, self.updates[i].to_eval)

    def _switch(self, i: int, switch) -> None:
        """A mode switch of run i; one that raises is run i's fault (core/engine/faults.py)."""
        try:
            switch(self.optimizers[i])
        except Exception as error:
            self._faults[i] = fault_of(error)

    def _train_all(self, xb, yb) -> list[tuple[int, float, float]]:
        """Forward + backward (+ clipping) of every live run: (run, loss, grad norm) each."""
        live = np.flatnonzero(self.alive)
        if self.stack is None or self._unbatched:
            return self._train_one_by_one(live, xb, yb)
        t0 = time.perf_counter()
        stack = self.stack
        l1, l2 = self._penalties
        try:
            losses, norms = stack.train_step(xb, yb, self.criterion, self.alive, l1, l2)
        except RuntimeError as error:
            if out_of_memory(error) is None:
                raise
            # The batched pass holds every run's activations at once, so its OOM is no run's
            # in particular. One run at a time needs 1/R of that: fall back to it for the rest
            # of the race (same optimizers and state; numbers equal to float rounding, as
            # stacked vs separate models always are). A run that still runs out of memory on
            # its own is then marked alone. (Retried outside this block: while it runs, the
            # error's traceback keeps the failed pass's tensors alive.)
            self._unbatched = True
        if self._unbatched:
            self._free_cache()
            return self._train_one_by_one(live, xb, yb)
        for i in live:
            run = self.runs[i]
            if run.clip_norm is not None:
                # torch.nn.utils.clip_grad_norm_'s own formula, on this run's row.
                coef = torch.clamp(run.clip_norm / (norms[i] + 1e-6), max=1.0)
                stack.grad[i].mul_(coef)
            if run.clip_value is not None:
                stack.grad[i].clamp_(-run.clip_value, run.clip_value)
        losses, norms = losses.tolist(), norms.tolist()
        spent = (time.perf_counter() - t0) / max(1, len(live))
        self.wall_s[live] += spent
        return [(int(i), losses[i], norms[i]) for i in live]

    def _train_one_by_one(self, live: np.ndarray, xb, yb) -> list[tuple[int, float, float]]:
        """The per-run path (and the stacked runs' fallback after a batched OOM). A run that
        runs out of memory is set aside in ``_out_of_memory``; the others go on."""
        results = []
        for i in live:
            i = int(i)
            t0 = time.perf_counter()
            try:
                if self.stack is not None:
                    self.models[i].zero_grad(set_to_none=True)  # its views' own grads
                loss, grad_norm, _total = self._train_step(i, xb, yb)
                if self.stack is not None:  # the row the run's optimizer steps
                    self.stack.grad[i].copy_(torch.cat(
                        [p.grad.reshape(-1) for p in self.models[i].parameters()]))
            except RuntimeError as error:
                message = out_of_memory(error)
                if message is None:
                    raise
                self._out_of_memory[i] = message
            finally:
                self.wall_s[i] += time.perf_counter() - t0
            if i in self._out_of_memory:
                self._release(i)  # out of the except block: the traceback is gone by now
                continue
            results.append((i, loss, grad_norm))
        return results
