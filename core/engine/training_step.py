"""THE training step of a network run, its optimizers and the one mini-batch order of a race.

`train_step` is one run's forward, data loss + L1/L2 penalty, backward, gradient norm and
clipping, up to (not including) the update; the race's per-run path (core/engine/seed_race.py)
and the LR range test (core/tools/lr_finder.py) both train through it, and the stacked fast path
(core/engine/stacked.py) is its batched twin. `optimizers_for` builds a run's optimizers and
`BatchOrder` the seeded permutation every run of a seed sees.

`RunUpdate` is the update that follows, whatever the optimizer needs beyond ``step()``
(`OptimizerInfo`'s adapter flags, core/optim/optimizers.py): a closure that recomputes the loss
and gradients on the same batch (L-BFGS, SAM), a backward with ``create_graph=True`` (AdaHessian,
Sophia-H; `train_step`'s ``create_graph``), and Schedule-Free's two points: the optimizer is
switched to ``train()`` (the weights at y, where gradients are taken) only for the forward,
backward and update, and back to ``eval()`` (the weights at x, the ones it answers with) right
after, so every loss, boundary, surface and exported weight read between steps is x's.
A create_graph optimizer's Hessian estimate draws random vectors from torch's global generator;
each such run draws them from its own `RandomStream`, so a race is reproducible and one run's
draws do not depend on the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.lab.format import RunSpec
from core.optim.catalog import build_optimizer, get_optimizer_info
from core.optim.global_rng import GLOBAL_RNG_LOCK
from core.problems.models import linear_layers


class BatchOrder:
    """The one mini-batch order every run sees: a fresh seeded permutation per epoch."""

    def __init__(self, n: int, batch_size: int | None, seed: int):
        self.n = n
        self.batch_size = n if batch_size is None else min(batch_size, n)
        self.per_epoch = math.ceil(n / self.batch_size)
        self._generator = torch.Generator().manual_seed(seed)
        self._epoch = -1
        self._perm: torch.Tensor | None = None

    def batch(self, step: int) -> torch.Tensor | None:
        """Indices of the batch used at ``step`` (None for full batch: use everything)."""
        if self.batch_size >= self.n:
            return None
        epoch, within = divmod(step, self.per_epoch)
        while self._epoch < epoch:  # steps only move forward
            self._perm = torch.randperm(self.n, generator=self._generator)
            self._epoch += 1
        start = within * self.batch_size
        return self._perm[start : start + self.batch_size]


def _penalized_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights L1/L2 act on: linear and conv weight matrices, not biases or batch norm."""
    return [m.weight for _, m in linear_layers(model)]


def _penalty(run: RunSpec, model: nn.Module) -> torch.Tensor | float:
    """The run's L1/L2 penalty on the model's weight matrices (0.0 when it has none)."""
    penalty: torch.Tensor | float = 0.0
    if run.l1:
        penalty = penalty + run.l1 * sum(w.abs().sum() for w in _penalized_weights(model))
    if run.l2:
        penalty = penalty + run.l2 * sum((w * w).sum() for w in _penalized_weights(model))
    return penalty


def train_step(run: RunSpec, model: nn.Module, optimizers: list[torch.optim.Optimizer],
               criterion, xb: torch.Tensor, yb: torch.Tensor,
               create_graph: bool = False) -> tuple[float, float, torch.Tensor]:
    """THE training step of one run's model on one batch, up to (not including) the update:
    forward in train mode, data loss + L1/L2 penalty, zero the grads, backward, the total
    gradient norm, then clipping by norm and by value. Returns (data loss, gradient norm before
    clipping, penalised loss). The race's per-run path and the LR range test
    (core/tools/lr_finder.py) both train through it; the stacked fast path (core/engine/stacked.py) is its
    batched twin, checked against it by the tests. Dropout masks come from the model's own
    generator (`core.problems.models.set_dropout_generator`). ``create_graph`` keeps the
    backward's graph for an optimizer that differentiates the gradient again (`RunUpdate`)."""
    model.train()
    out = model(xb)
    data_loss = criterion(out, yb)
    total = data_loss + _penalty(run, model)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    total.backward(create_graph=create_graph)
    params = [p for p in model.parameters() if p.grad is not None]
    grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    if run.clip_norm is not None:
        torch.nn.utils.clip_grads_with_norm_(params, run.clip_norm, torch.tensor(grad_norm))
    if run.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, run.clip_value)
    return data_loss.item(), grad_norm, total


def clip_fired(runs, grad_norms, alive):
    """(R,) whether each live run's norm clipping fired at this step (its gradient norm before
    clipping exceeded its ``clip_norm``), for the records; None when no run clips."""
    limits = np.array([math.inf if r.clip_norm is None else r.clip_norm for r in runs])
    return (grad_norms > limits) & alive if np.isfinite(limits).any() else None


def optimizers_for(run: RunSpec, model: nn.Module) -> list[torch.optim.Optimizer]:
    """The run's optimizer; a matrix optimizer (Muon, a zoo Muon-type: ``min_param_ndim`` 2)
    gets the weight matrices and AdamW the rest, as their authors advise (the AdamW part at
    the run's lr)."""
    info = get_optimizer_info(run.optimizer)
    params = list(model.parameters())
    if info.min_param_ndim <= 1:
        return [build_optimizer(run.optimizer, run.params, params)]
    matrices = [p for p in params if p.ndim == info.min_param_ndim]
    others = [p for p in params if p.ndim != info.min_param_ndim]
    optimizers = [build_optimizer(run.optimizer, run.params, matrices)]
    if others:
        optimizers.append(build_optimizer("adamw", {"lr": run.params.get("lr", 1e-3)}, others))
    return optimizers


# Offset of the Hessian-estimate streams from the dropout streams' seeds
# (core/problems/models.py `dropout_stream`), so the two never draw the same sequence.
RANDOM_STREAM_OFFSET = 1 << 32


class RandomStream:
    """Run ``run_index``'s own stream of torch's global CPU random numbers in a race seeded
    ``seed``: ``with stream:`` swaps it in for the block (an optimizer's ``step`` that draws with
    ``torch.randn_like`` and friends) and keeps where it got to. Seeded
    ``seed · 1009 + run_index + 1 + RANDOM_STREAM_OFFSET``."""

    def __init__(self, seed: int, run_index: int):
        start = seed * 1009 + run_index + 1 + RANDOM_STREAM_OFFSET
        self.state = torch.Generator().manual_seed(start).get_state()
        self._outer: torch.Tensor | None = None

    def __enter__(self) -> RandomStream:
        # Held until __exit__: no other thread's stream or probe may swap the generator between
        # our swap-in and our restore (core/optim/global_rng.py).
        GLOBAL_RNG_LOCK.acquire()
        self._outer = torch.get_rng_state()
        torch.set_rng_state(self.state)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.state = torch.get_rng_state()
            torch.set_rng_state(self._outer)
        finally:
            GLOBAL_RNG_LOCK.release()


@dataclass(frozen=True)
class RunUpdate:
    """How a run's optimizers update (module docstring): plain ``step()``, ``step(closure)``,
    a ``create_graph`` backward, Schedule-Free's train()/eval() modes."""

    closure: bool = False
    create_graph: bool = False
    train_eval: bool = False

    @classmethod
    def of(cls, name: str) -> RunUpdate:
        info = get_optimizer_info(name)
        return cls(info.needs_closure, info.create_graph, info.train_eval)

    @property
    def plain(self) -> bool:
        return not (self.closure or self.create_graph or self.train_eval)

    def to_train(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Schedule-Free: the weights to y before a forward that takes gradients."""
        if self.train_eval:
            for opt in optimizers:
                if callable(getattr(opt, "train", None)):
                    opt.train()

    def to_eval(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """Schedule-Free: the weights to x, the point it answers with."""
        if self.train_eval:
            for opt in optimizers:
                if callable(getattr(opt, "eval", None)):
                    opt.eval()

    def step(self, optimizers: list[torch.optim.Optimizer],
             closure: Callable[[], torch.Tensor] | None = None) -> None:
        """One update of every optimizer of the run, its gradients already computed (SAM's
        documented loop; L-BFGS recomputes them first itself). With a closure, the plain
        optimizers (a matrix optimizer's AdamW) step first, before the closure's re-evaluations
        overwrite their gradients."""
        if not self.closure:
            for opt in optimizers:
                opt.step()
            return
        if closure is None:
            raise ValueError("this optimizer needs a closure that re-evaluates the loss")
        plain = optimizers[1:]  # optimizers_for puts the run's own optimizer first
        for opt in plain:
            opt.step()

        @torch.enable_grad()  # an optimizer may call it under no_grad, as torch's L-BFGS guards
        def evaluate() -> torch.Tensor:
            return closure()

        optimizers[0].step(evaluate)


def run_closure(run: RunSpec, model: nn.Module, optimizers: list[torch.optim.Optimizer],
                criterion, xb: torch.Tensor, yb: torch.Tensor,
                update: RunUpdate) -> Callable[[], torch.Tensor]:
    """The closure a closure optimizer calls: `train_step` again on the same batch (zero the
    grads, forward, penalised loss, backward, clipping), returning the penalised loss."""

    def closure() -> torch.Tensor:
        return train_step(run, model, optimizers, criterion, xb, yb, update.create_graph)[2]

    return closure
