"""Which adapters an optimizer class needs, found by running it on a tiny problem.

A signature cannot say whether ``step()`` insists on a closure (SAM, L-BFGS), whether the
update differentiates the gradient again so the backward pass needs ``create_graph=True``
(AdaHessian, Sophia-H), or whether it only accepts 2-D weight matrices (Muon-type). So
`probe_adapters` runs three steps of a small least-squares fit with the cheapest loop first and
adds adapters only when the plainer loop fails. It runs the class's code: only for the shipped
zoo (core/optim/zoo.py) or a user's code they consented to run (core/optim/user_code.py).

The loop here is the one a trainer runs (core/engine/training_step.py): zero the gradients,
forward, backward, then ``step()`` or ``step(closure)`` with the gradients already computed
(SAM's documentation asks for that; the closure runs with gradients enabled, as torch's L-BFGS
makes sure), with ``train()`` before and ``eval()`` after for a
Schedule-Free-style optimizer. Three steps, because an optimizer may keep its first step
special; a Hessian estimate that is first taken on a later step would be missed.

While probing, printed output and warnings are silenced process-wide (``redirect_stdout``,
``catch_warnings``), inside the global generator's lock (core/optim/global_rng.py), so probes
in two threads never interleave their redirections. A class that hangs in ``step`` hangs the
probe: there is no time limit here.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from core.optim.global_rng import forked_global_rng

PROBE_STEPS = 3

# (closure, create_graph), cheapest first.
_MODES = ((False, False), (True, False), (False, True), (True, True))


@dataclass(frozen=True)
class Adapters:
    needs_closure: bool = False
    create_graph: bool = False
    min_param_ndim: int = 0


def probe_adapters(make: Callable[[list], torch.optim.Optimizer], train_eval: bool) -> Adapters:
    """The adapters ``make`` (tensors → optimizer) needs; RuntimeError when nothing works.

    Leaves torch's global random state as it found it (a Hessian estimate draws from it).
    """
    with (
        forked_global_rng(),
        warnings.catch_warnings(),
        torch.enable_grad(),
        contextlib.redirect_stdout(io.StringIO()),  # some print on train()/eval() (SPlus)
    ):
        warnings.simplefilter("ignore")
        errors = []
        for closure, create_graph in _MODES:
            error = run_tiny(make, 2, closure, create_graph, train_eval)
            if error is None:
                vector_ok = run_tiny(make, 1, closure, create_graph, train_eval) is None
                return Adapters(closure, create_graph, 0 if vector_ok else 2)
            if error not in errors:
                errors.append(error)
    raise RuntimeError(f"fails on a tiny least-squares problem: {'; '.join(errors)}")


def run_tiny(
    make: Callable[[list], torch.optim.Optimizer],
    ndim: int,
    closure: bool,
    create_graph: bool,
    train_eval: bool,
    steps: int = PROBE_STEPS,
) -> str | None:
    """Run ``steps`` steps on a fixed small problem; None if they ran and stayed finite, else why."""
    generator = torch.Generator().manual_seed(0)
    shape, x_shape = ((4, 3), (3, 5)) if ndim == 2 else ((4,), (4,))
    weight = torch.nn.Parameter(0.5 * torch.randn(shape, generator=generator))
    x = torch.randn(x_shape, generator=generator)
    target = torch.randn((4, 5) if ndim == 2 else (4,), generator=generator)

    def loss_fn() -> torch.Tensor:
        prediction = weight @ x if ndim == 2 else weight * x
        return (torch.tanh(prediction) - target).square().mean()

    try:
        optimizer = make([weight])
        if train_eval:
            optimizer.train()

        @torch.enable_grad()  # some steps call the closure under no_grad (AliG), as torch's L-BFGS guards
        def evaluate() -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn()
            loss.backward(create_graph=create_graph)
            return loss

        for _ in range(steps):
            evaluate()
            if closure:
                optimizer.step(evaluate)
            else:
                optimizer.step()
        if train_eval:
            optimizer.eval()
    except Exception as err:  # any failure means "not this way"; the message is the evidence
        return f"{type(err).__name__}: {err}".strip()
    if not bool(torch.isfinite(weight).all()):
        return "the weights became NaN or infinite"
    return None
