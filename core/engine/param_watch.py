"""Watching a network race's parameters: each run's norm against its start, the weights before
the latest update (to name the tensor that blew up), and telling an out-of-memory error apart.

`ParamWatch` is what the per-seed race (core/engine/seed_race.py) checks before every step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.engine.stacked import StackedMLP

# A run whose parameter norm passes PARAM_NORM_FACTOR × (its norm at step 0 + 1) has diverged:
# weights a thousand times their initial size scale a deep network's outputs by far more, which
# no useful model needs and which is on its way to Inf anyway (and caught a step or more before
# the loss turns NaN). The + 1 keeps a zero-initialised model checkable.
PARAM_NORM_FACTOR = 1e3


class ParamWatch:
    """Each run's parameter norm against its start, and a copy of every run's weights from
    before the latest update, to tell which tensor that update blew up.

    Cheap by design: on the stacked path every run's parameters are rows of one (R, P) tensor,
    so a step costs one norm over R rows and one copy; on the per-run path one foreach norm and
    one foreach copy over every run's tensors (all runs share the architecture).
    """

    def __init__(self, models: list[nn.Module], stack: StackedMLP | None):
        self.named = [list(m.named_parameters()) for m in models]
        self.count = len(models)
        self.limit: torch.Tensor | None = None  # set by the first `blown` (step 0)
        self.start: np.ndarray | None = None
        self.has_before = False  # no update yet: nothing to compare with
        flat = stack.flat if stack is not None else None
        shares = flat is not None and all(
            p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
            for named in self.named for _, p in named)
        self._flat = flat if shares else None
        # Detached views share the parameters' storage: reading them records no autograd graph,
        # without torch.no_grad(), whose context switch cost more than the norm itself.
        self._params = [p.detach() for named in self.named for _, p in named]
        if self._flat is not None:
            # The copy has flat's layout, so each parameter's twin is the same view of it.
            self._before_flat = torch.empty_like(self._flat)
            base = self._flat.storage_offset()
            before = [self._before_flat.as_strided(p.shape, p.stride(), p.storage_offset() - base)
                      for p in self._params]
        else:
            before = [p.detach().clone() for p in self._params]
        self._before_list = before
        per_run = len(self._params) // max(1, self.count)
        self.before = [before[r * per_run:(r + 1) * per_run] for r in range(self.count)]

    def norms(self) -> torch.Tensor:
        """(R,) every run's parameter norm (NaN/Inf when a parameter is)."""
        if self._flat is not None:
            return torch.linalg.vector_norm(self._flat, dim=1)
        if not self._params:
            return torch.zeros(self.count)
        per_tensor = torch.stack(torch._foreach_norm(self._params))
        return torch.linalg.vector_norm(per_tensor.view(self.count, -1), dim=1)

    def snapshot(self) -> None:
        """Remember every run's weights before an update."""
        if self._flat is not None:
            self._before_flat.copy_(self._flat)
        else:
            torch._foreach_copy_(self._before_list, self._params)
        self.has_before = True

    @torch.no_grad()
    def restore(self, i: int) -> None:
        """Put run i's weights back to the copy of `snapshot` (before the latest update): a
        run whose update faulted (core/engine/faults.py) stops on its last good state."""
        if not self.has_before:
            return
        for (_, p), w in zip(self.named[i], self.before[i]):
            p.copy_(w)

    def blown(self, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Live runs whose norm passed its limit (or is not finite), and every run's norm.

        The first call (step 0, before any update) sets the limits instead."""
        norms = self.norms()
        if self.limit is None:
            self.start = norms.cpu().numpy().astype(np.float64)
            self.limit = PARAM_NORM_FACTOR * (norms + 1.0)
            return np.empty(0, dtype=int), self.start
        within = (norms <= self.limit).cpu().numpy()  # NaN compares False: it counts as blown
        flagged = np.flatnonzero(~within & alive)
        return flagged, (norms.cpu().numpy().astype(np.float64) if flagged.size else None)

    @torch.no_grad()
    def blame(self, i: int) -> tuple[str | None, float | None, str]:
        """(tensor name, its ‖ΔW‖ / ‖W‖, a sentence) for run i's latest update: the first
        non-finite tensor, else the largest relative update. Before any update: the first
        non-finite tensor, else the one with the largest entries."""
        named = self.named[i]
        if not named:
            return None, None, ""
        for name, p in named:
            if not torch.isfinite(p).all():
                return name, None, f"parameter {name} became NaN/Inf"
        if not self.has_before:
            name, p = max(named, key=lambda item: float(item[1].abs().max()))
            return name, None, f"largest weights in {name} (max |w| = {float(p.abs().max()):.3g})"
        ratios = [
            (name, float((p - w).norm() / w.norm().clamp(min=1e-12)))
            for (name, p), w in zip(named, self.before[i])
        ]
        name, ratio = max(ratios, key=lambda item: item[1])
        return name, ratio, f"the update of {name} was the largest ({ratio:.3g} × its norm)"
