"""Curvature of a model's loss: Hessian-vector products, top eigenpairs, sharpness.

`sharpness` (the top Hessian eigenvalue, compared with 2/lr in edge-of-stability plots) and
`hessian_directions` (the top-2 eigenvectors, a plane for core/landscape/surfaces.py) use double
backward (``torch.autograd.grad`` with ``create_graph=True``) for Hessian-vector products, fed to
Lanczos for the largest *algebraic* eigenvalues (`hessian_top_eigen`, `core.landscape.eigensolver`)
with a tolerance and a product budget; a solve that does not converge gives NaN ("not
converged"), never a number. `SharpnessTracker` measures it again every few training steps,
warm-started from the previous eigenvector (``problem.sharpness_every``).

The loss here is a `ModelLoss` ``(model) -> scalar loss at its current weights``, which these
functions differentiate through the model; build one with `model_loss(x, y, criterion)` from a
`Criterion` ``(output, target) -> scalar mean loss`` (core/landscape/engines.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from core.landscape.directions import default_generator, fix_sign
from core.landscape.eigensolver import EIGEN_TOL, KRYLOV, WARM_KRYLOV, TopEigen, top_eigenpairs
from core.landscape.engines import Criterion
from core.landscape.params import eval_mode

ModelLoss = Callable[[nn.Module], Tensor]


def model_loss(x: Tensor, y: Tensor, criterion: Criterion) -> ModelLoss:
    """The `ModelLoss` of ``criterion`` on the data ``(x, y)``."""
    return lambda model: criterion(model(x), y)


def _hvp_operator(model: nn.Module, loss_fn: ModelLoss) -> Callable[[Tensor], Tensor] | None:
    """v ↦ H·v at the model's current weights, by double backward; None when H = 0 (the loss
    is linear in the weights).

    The gradient graph is built once; each product is one more backward pass through it.
    """
    params = list(model.parameters())
    with torch.enable_grad():
        loss = loss_fn(model)
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True,
                                    materialize_grads=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])
    if not flat_grad.requires_grad:
        return None

    def hvp(vector: Tensor) -> Tensor:
        products = torch.autograd.grad(flat_grad, params, grad_outputs=vector, retain_graph=True,
                                       allow_unused=True, materialize_grads=True)
        return torch.cat([h.reshape(-1) for h in products]).detach()

    return hvp


# Hessian-vector products a curvature solve may use before it is reported as not converged
# (core.landscape.eigensolver: Lanczos, tolerance EIGEN_TOL). Measured on the MLPs of the benches and of
# tests/core/test_sharpness.py, indefinite points included: cold top-1 and top-2 solves converge
# at ARPACK's first check (21 products), warm ones in 4-10 (docs/surfaces.md). The caps leave
# room for harder spectra (larger models, clustered eigenvalues) and bound hopeless solves.
SHARPNESS_MAX_PRODUCTS = 300
HESSIAN_MAX_PRODUCTS = 500


def _random_start(size: int, generator: torch.Generator | None) -> np.ndarray:
    return torch.randn(size, generator=default_generator(generator),
                       dtype=torch.float64).numpy()


def hessian_top_eigen(
    model: nn.Module,
    loss_fn: ModelLoss,
    k: int = 1,
    max_products: int = SHARPNESS_MAX_PRODUCTS,
    generator: torch.Generator | None = None,
    tol: float = EIGEN_TOL,
    start: Tensor | None = None,
    krylov: int = KRYLOV,
    scale: Tensor | None = None,
) -> TopEigen:
    """The ``k`` largest algebraic eigenpairs of the Hessian of ``loss_fn`` at the model's
    weights (`core.landscape.eigensolver.top_eigenpairs` on float64 vectors; each product is one torch
    Hessian-vector product in the model's dtype, on its device). Eval mode; the parameters'
    ``.grad`` are left untouched. Not converged: NaN values, ``converged=False``.

    ``scale`` (flat, one entry per weight): the eigenpairs of D·H·D, D = diag(scale), instead;
    with scale = P^{-1/2} its eigenvalues are those of P⁻¹H, an adaptive optimizer's
    preconditioned curvature (core/landscape/adaptive_edge.py)."""
    with eval_mode(model):
        like = next(model.parameters())
        size = sum(p.numel() for p in model.parameters())
        first = (start.detach().to(device="cpu", dtype=torch.float64).numpy()
                 if start is not None else _random_start(size, generator))
        hvp = _hvp_operator(model, loss_fn)
        if hvp is None:  # H = 0: every eigenvalue is 0, any orthonormal vectors are eigenvectors
            vectors, _ = np.linalg.qr(np.column_stack(
                [first] + [_random_start(size, generator) for _ in range(k - 1)]))
            return TopEigen(np.zeros(k), vectors, True, 0)

        d = None if scale is None else scale.detach().to(device=like.device, dtype=like.dtype)

        def matvec(x: np.ndarray) -> np.ndarray:
            vector = torch.from_numpy(x).to(device=like.device, dtype=like.dtype)
            if d is None:
                return hvp(vector).to(device="cpu", dtype=torch.float64).numpy()
            return (d * hvp(d * vector)).to(device="cpu", dtype=torch.float64).numpy()

        return top_eigenpairs(matvec, size, k, first, tol, max_products, krylov)


def _as_param_vector(vectors: np.ndarray, j: int, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(vectors[:, j])).to(like)


def sharpness(
    model: nn.Module,
    loss_fn: ModelLoss,
    max_products: int = SHARPNESS_MAX_PRODUCTS,
    generator: torch.Generator | None = None,
    tol: float = EIGEN_TOL,
) -> float:
    """The top (most positive) eigenvalue λ_max of the Hessian of ``loss_fn`` at the model's
    weights, or NaN when the solve did not converge within ``max_products`` Hessian-vector
    products (`hessian_top_eigen`). For gradient descent at learning rate η, λ_max ≈ 2/η is the
    edge of stability. Evaluated in eval mode (no dropout noise in the Hessian)."""
    return float(hessian_top_eigen(model, loss_fn, 1, max_products, generator, tol).values[0])


SHARPNESS_SAMPLES = 2048  # training samples the tracked sharpness is measured on (the first ones)


class SharpnessTracker:
    """Each run's sharpness (top Hessian eigenvalue), measured again every few training steps.

    Cheap because the eigenvector moves slowly while training: each measurement starts Lanczos
    from the run's previous eigenvector with a small basis (`WARM_KRYLOV` products before the
    first convergence test, where a cold start builds `KRYLOV`). A measurement that does not
    converge within ``max_products`` is NaN (records carry it; the GUI shows "not converged"),
    and the next one starts cold-sized from its best approximation. Each run has its own fixed
    random stream for its first start, so measuring never touches torch's global RNG (dropout
    masks and batches stay as they were). ``products[i]``: what run i's last measurement cost.
    """

    def __init__(self, count: int, max_products: int = SHARPNESS_MAX_PRODUCTS,
                 tol: float = EIGEN_TOL):
        self.vectors: list[Tensor | None] = [None] * count
        self.warm: list[bool] = [False] * count  # the vector is a converged eigenvector
        self.products: list[int] = [0] * count
        self.max_products, self.tol = max_products, tol

    def measure(self, index: int, model: nn.Module, loss_fn: ModelLoss,
                scale: Tensor | None = None) -> float:
        """Run ``index``'s λ_max at the model's current weights (NaN: not converged); with
        ``scale`` = P^{-1/2}, the preconditioned λ₁(P⁻¹H) (`hessian_top_eigen`; keep one tracker
        per kind, as each warm-starts from its own eigenvector)."""
        previous = self.vectors[index]
        size = sum(p.numel() for p in model.parameters())
        if previous is None or previous.numel() != size:
            previous, warm = None, False
        else:
            warm = self.warm[index]
        result = hessian_top_eigen(
            model, loss_fn, 1, self.max_products, torch.Generator().manual_seed(1 + index),
            self.tol, start=previous, krylov=WARM_KRYLOV if warm else KRYLOV, scale=scale)
        self.vectors[index] = torch.from_numpy(np.ascontiguousarray(result.vectors[:, 0]))
        self.warm[index] = result.converged
        self.products[index] = result.products
        return float(result.values[0])


def hessian_directions(
    model: nn.Module,
    loss_fn: ModelLoss,
    max_products: int = HESSIAN_MAX_PRODUCTS,
    generator: torch.Generator | None = None,
    tol: float = EIGEN_TOL,
) -> tuple[Tensor, Tensor, np.ndarray]:
    """The top-2 Hessian eigenvectors (orthonormal) and their eigenvalues [λ1, λ2], λ1 ≥ λ2.

    One Lanczos solve for the two largest algebraic eigenvalues (`hessian_top_eigen`, k = 2).
    When it does not converge within ``max_products`` products the eigenvalues are NaN (show
    "not converged") and the directions are the solver's best orthonormal approximations, so a
    plane can still be drawn, labelled as such."""
    like = next(model.parameters())
    result = hessian_top_eigen(model, loss_fn, 2, max_products, default_generator(generator),
                               tol)
    d1, d2 = (fix_sign(_as_param_vector(result.vectors, j, like)) for j in range(2))
    return d1.detach(), d2.detach(), np.asarray(result.values, dtype=np.float64)
