"""The largest algebraic eigenvalues of a symmetric operator given only by its products.

`top_eigenpairs` is what `core.landscape.curvature` measures curvature with (sharpness, Hessian
directions, tracked sharpness): the operator is a Hessian-vector product, so the matrix is never
formed. It runs implicitly restarted Lanczos (ARPACK, through ``scipy.sparse.linalg.eigsh`` with
``which="LA"``) on a float64 `LinearOperator`, with

- a convergence test: ARPACK stops when every wanted Ritz pair (θ, y) has the residual estimate
  ‖A·y − θ·y‖ ≤ ``tol``·|θ|; the nearest eigenvalue is then within ``tol``·|θ| of θ, usually far
  closer;
- a budget: at most ``max_products`` products, counted here, whatever ARPACK's restarts do.

"Largest algebraic" matters: the power iteration this replaced finds the largest *magnitude*,
and where the most negative eigenvalue is about as large as the most positive one (initial
weights of a ReLU/tanh network) 20 products converge to neither.

A solve that does not converge (budget spent, ARPACK gives up) returns ``converged=False`` and
NaN eigenvalues — never a number that looks like a measurement — with the best vectors it has
(Rayleigh–Ritz on the last products), which callers may use as approximate directions and must
label as not converged. Where the space is no larger than the Lanczos basis would be, the matrix
is built column by column and diagonalised in float64 (exact, same budget).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.errors import LabError

EIGEN_TOL = 1e-4  # relative residual of each wanted Ritz pair (ARPACK's own test)
KRYLOV = 20  # Lanczos basis of a cold solve (scipy's default for k ≤ 9)
WARM_KRYLOV = 3  # ... of a solve started at a good guess (the previous eigenvector): 4 products


class _BudgetSpent(Exception):
    """Raised from inside the operator once ``max_products`` products were used, or when a
    product is not finite (weights that overflowed): no eigenvalue can be trusted then."""


@dataclass(frozen=True)
class TopEigen:
    """The ``k`` largest algebraic eigenpairs of a symmetric operator.

    ``values`` is (k,), λ1 ≥ λ2 ≥ …; all NaN when the solve did not converge. ``vectors`` is
    (n, k), orthonormal columns in the order of ``values``: eigenvectors when converged, else
    the best approximations (not eigenvectors). ``products`` counts operator applications."""

    values: np.ndarray
    vectors: np.ndarray
    converged: bool
    products: int


class _Counted:
    """The operator with a product budget, remembering its last few (x, A·x) pairs."""

    def __init__(self, matvec: Callable[[np.ndarray], np.ndarray], max_products: int,
                 keep: int):
        self.matvec, self.max_products = matvec, max_products
        self.products = 0
        self.pairs: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=keep)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.products >= self.max_products:
            raise _BudgetSpent
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        image = np.asarray(self.matvec(x), dtype=np.float64).reshape(-1)
        self.products += 1
        if not np.all(np.isfinite(image)):
            raise _BudgetSpent
        self.pairs.append((x.copy(), image))
        return image


def _rayleigh_ritz(pairs, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k Ritz pairs (values, vectors (n, ≤k)) of A on the span of the recorded x's: exact
    eigenpairs when the x's span the whole space."""
    xs = np.stack([x for x, _ in pairs], axis=1)
    images = np.stack([ax for _, ax in pairs], axis=1)
    u, s, vt = np.linalg.svd(xs, full_matrices=False)
    rank = int(np.sum(s > 1e-10 * s[0])) if s.size and s[0] > 0 else 0
    basis = u[:, :rank]  # orthonormal basis of span(xs); A·basis follows from the images
    image_basis = images @ (vt[:rank].T / s[:rank])
    projected = basis.T @ image_basis
    values, small = np.linalg.eigh(0.5 * (projected + projected.T))
    order = np.argsort(values)[::-1][:k]
    return values[order], basis @ small[:, order]


def _unit(n: int, j: int) -> np.ndarray:
    e = np.zeros(n)
    e[j] = 1.0
    return e


def _complete(vectors: np.ndarray, n: int, k: int, start: np.ndarray) -> np.ndarray:
    """Orthonormal (n, k): ``vectors`` plus, if there are fewer than k, unit vectors
    orthogonal to them (only a budget below k products leaves that few)."""
    columns = [vectors[:, j] for j in range(vectors.shape[1])]
    for j in range(-1, n):
        if len(columns) == k:
            break
        c = start if j < 0 else _unit(n, j)
        for q in columns:
            c = c - (q @ c) * q
        norm = np.linalg.norm(c)
        if norm > 1e-8:
            columns.append(c / norm)
    return np.stack(columns, axis=1)


def top_eigenpairs(
    matvec: Callable[[np.ndarray], np.ndarray],
    size: int,
    k: int = 1,
    start: np.ndarray | None = None,
    tol: float = EIGEN_TOL,
    max_products: int = 300,
    krylov: int = KRYLOV,
) -> TopEigen:
    """The ``k`` largest algebraic eigenpairs of the symmetric ``size``×``size`` operator
    ``matvec`` (float64 vectors in and out), by Lanczos from ``start`` (a vector of ones when
    None; callers pass a seeded random start, or the previous eigenvector to warm-start).
    ``krylov``: the Lanczos basis size (products before ARPACK's first convergence test)."""
    if not isinstance(size, int) or size < 1:
        raise LabError("size", f"must be a whole number >= 1, got {size!r}")
    if not 1 <= k <= size:
        raise LabError("k", f"must be a whole number in [1, {size}], got {k!r}")
    if not isinstance(max_products, int) or max_products < k:
        raise LabError("max_products", f"must be a whole number >= {k}, got {max_products!r}")
    if not (isinstance(tol, float | int) and 0 < tol < 1):
        raise LabError("tol", f"must be in (0, 1), got {tol!r}")
    start = np.ones(size) if start is None else np.asarray(start, np.float64).reshape(-1)
    if start.shape != (size,) or not np.all(np.isfinite(start)) or not np.any(start):
        raise LabError("start", f"must be a finite nonzero vector of length {size}")
    ncv = min(size, max(krylov, 2 * k + 1))
    counted = _Counted(matvec, max_products, keep=max(ncv, k) + 1)

    if size <= ncv + 1:  # a Lanczos basis would span (nearly) everything: build the matrix
        counted.pairs = deque(maxlen=size)
        try:
            for j in range(size):
                counted(_unit(size, j))
        except _BudgetSpent:
            pass
        values, vectors = _rayleigh_ritz(counted.pairs, k)
        if counted.products == size:
            return TopEigen(values, vectors, True, counted.products)
        return _not_converged(counted, size, k, start)

    # Imported here: scipy.sparse.linalg costs a quarter of a second, which the app would
    # otherwise pay at start-up (core.engine.seed_race imports core.landscape.curvature, which imports this).
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

    operator = LinearOperator((size, size), matvec=counted, dtype=np.float64)
    try:
        values, vectors = eigsh(operator, k=k, which="LA", v0=start, ncv=ncv, tol=tol,
                                maxiter=max_products)
    except (_BudgetSpent, ArpackNoConvergence, ArpackError):
        return _not_converged(counted, size, k, start)
    order = np.argsort(values)[::-1]
    return TopEigen(values[order], vectors[:, order], True, counted.products)


def _not_converged(counted: _Counted, size: int, k: int, start: np.ndarray) -> TopEigen:
    if counted.pairs:
        _, vectors = _rayleigh_ritz(counted.pairs, k)
    else:
        vectors = np.zeros((size, 0))
    vectors = _complete(vectors, size, k, start / np.linalg.norm(start))
    return TopEigen(np.full(k, np.nan), vectors, False, counted.products)
