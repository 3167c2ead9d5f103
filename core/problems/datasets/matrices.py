"""Matrix data sets: regression problems whose solution is a weight *matrix*, where matrix
optimizers (Muon, Shampoo, SOAP; core/optim/catalog.py) behave differently from Adam.

A network fits the targets B from the inputs A (one row per sample), so training a linear layer
minimises ‖AW − B‖² over the matrix W; every draw comes from the data set's own seeded
``numpy.random.Generator`` (core/problems/datasets/build.py).

``matrix_regression``  ill-conditioned matrix regression: inputs A = √n · U diag(s) Vᵀ with U
                       (n × d) and V (d × d) random orthonormal and s geometric from 1 down to
                       1/``condition``, so the whole input matrix has condition number exactly
                       ``condition`` (the training split, a subset of its rows, about that). The
                       targets are B = A W* + ``noise``·ε with W* Gaussian (d × d)/√d. Gradient
                       descent's progress along the smallest direction is κ² times slower than
                       along the largest; a single linear layer is the model.
``low_rank``           low-rank matrix regression (matrix sensing with Gaussian measurements):
                       inputs Gaussian (n × d), targets B = A W* + ``noise``·ε with W* = P Qᵀ of
                       rank ``rank`` (P, Q Gaussian d × r / √r). A deep linear network (linear
                       layers without activations) is the classic model: its product has to find
                       the low-rank W*.

Both have ``dims`` inputs and ``dims`` outputs. `MATRIX_GENERATORS` maps the names to their
generators; `check_matrix_spec` checks what a key's range alone cannot (rank ≤ dims).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.errors import LabError

MIN_DIMS, MAX_DIMS, DEFAULT_DIMS = 2, 256, 16
MIN_CONDITION, MAX_CONDITION, DEFAULT_CONDITION = 1.0, 1e6, 100.0
MIN_RANK, DEFAULT_RANK = 1, 2


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """rows × cols with orthonormal columns (QR of a Gaussian, signs fixed so it is unique)."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q * np.sign(np.diag(r))


def conditioned_inputs(n: int, d: int, condition: float, rng: np.random.Generator) -> np.ndarray:
    """(n, d) inputs whose singular values fall geometrically from √n to √n / ``condition``."""
    u = _orthonormal(rng, n, d)
    v = _orthonormal(rng, d, d)
    s = np.sqrt(n) * condition ** (-np.linspace(0.0, 1.0, d))
    return (u * s) @ v.T


def _matrix_regression(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, d = spec["n"], spec["dims"]
    a = conditioned_inputs(n, d, spec["condition"], rng)
    w = rng.standard_normal((d, d)) / np.sqrt(d)
    return a, a @ w + spec["noise"] * rng.standard_normal((n, d))


def _low_rank(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, d, r = spec["n"], spec["dims"], spec["rank"]
    a = rng.standard_normal((n, d))
    w = (rng.standard_normal((d, r)) @ rng.standard_normal((r, d))) / np.sqrt(r * d)
    return a, a @ w + spec["noise"] * rng.standard_normal((n, d))


MATRIX_GENERATORS = {"matrix_regression": _matrix_regression, "low_rank": _low_rank}


def check_matrix_spec(cleaned: Mapping, field: str) -> None:
    """The limits that depend on two keys: a rank at most the matrix size, n at least dims."""
    if cleaned["name"] == "low_rank" and cleaned["rank"] > cleaned["dims"]:
        raise LabError(
            f"{field}.rank",
            f"must be in [{MIN_RANK}, dims] = [{MIN_RANK}, {cleaned['dims']}] "
            f"(a {cleaned['dims']}×{cleaned['dims']} matrix has at most that rank), "
            f"got {cleaned['rank']}",
        )
    if cleaned["n"] < cleaned["dims"]:
        raise LabError(
            f"{field}.n",
            f"must be at least dims = {cleaned['dims']} (fewer samples than inputs leave the "
            f"matrix undetermined), got {cleaned['n']}",
        )
