"""Singular values of each weight matrix and of each optimizer's update, at every evaluation.

Matrix optimizers differ from Adam in the *shape* of their update's spectrum: Muon replaces a
matrix's momentum by its Newton–Schulz orthogonalisation, so every singular value of its update
ΔW is about the same (lr times a constant), while Adam's element-wise update keeps the gradient's
spread. `update_spectra` measures that: for every run and every linear/conv weight matrix
(core/problems/models.py `linear_layers`; a conv kernel as out × (in·k·k), as Muon sees it) the
singular values of W at the evaluated step and of ΔW = W_{t+1} − W_t of the step's update,
largest first, with ``torch.linalg.svdvals`` in float64. core/engine/seed_race.py calls it when
an evaluation is due, with the weights copied before the update (`network_evaluation.linear_weights`);
the network window's Spectra tab (app/network/spectra_tab.py) draws them.

A model whose SVDs would cost more than `SPECTRA_MAX_WORK` (Σ rows·cols·min(rows, cols) over its
weight matrices: one 256 × 256 matrix is 1.7·10⁷) gets none: two SVDs per matrix per run at every
evaluation would then cost more than the evaluation itself. A run whose weights are not finite
gets NaN rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from core.engine.network_records import Evaluation
from core.problems.models import linear_layers

SPECTRA_MAX_WORK = 20_000_000

# Per run, per weight matrix: its singular values, largest first (float64).
Spectra = tuple[tuple[np.ndarray, ...], ...]


def singular_values(matrix: torch.Tensor) -> np.ndarray:
    """The singular values of a weight (a conv kernel flattened to out × rest), largest first;
    NaN where the matrix is not finite."""
    # On the CPU: a GPU SVD of a small matrix costs more in launches than it computes.
    m = matrix.detach().to("cpu", torch.float64).reshape(matrix.shape[0], -1)
    if not bool(torch.isfinite(m).all()):
        return np.full(min(m.shape), np.nan)
    return torch.linalg.svdvals(m).cpu().numpy()


def svd_work(model: nn.Module) -> int:
    """Σ rows·cols·min(rows, cols) over the model's weight matrices: what its SVDs cost."""
    work = 0
    for _, m in linear_layers(model):
        rows, cols = m.weight.shape[0], m.weight[0].numel()
        work += rows * cols * min(rows, cols)
    return work


def _small_enough(models: list[nn.Module]) -> bool:
    return all(svd_work(model) <= SPECTRA_MAX_WORK for model in models)


@torch.no_grad()
def update_spectra(models: list[nn.Module], before: list[list[torch.Tensor]] | None
                   ) -> tuple[Spectra | None, Spectra | None]:
    """(weight spectra, update spectra) of every run: the singular values of each weight matrix
    at ``before`` (the evaluated step; the models' current weights when ``before`` is None) and of
    the update ΔW = current − ``before`` (None when ``before`` is None: no update followed)."""
    if not models or not _small_enough(models):
        return None, None
    if before is None:
        weights = tuple(tuple(singular_values(m.weight) for _, m in linear_layers(model))
                        for model in models)
        return weights, None
    weights = tuple(tuple(singular_values(w) for w in run) for run in before)
    updates = tuple(
        tuple(singular_values(m.weight - w) for (_, m), w in zip(linear_layers(model), run))
        for model, run in zip(models, before)
    )
    return weights, updates


def with_spectra(evaluation: Evaluation, models: list[nn.Module],
                 before: list[list[torch.Tensor]] | None) -> Evaluation:
    """``evaluation`` with its weight and update spectra (`update_spectra`) filled in."""
    weights, updates = update_spectra(models, before)
    return replace(evaluation, weight_spectra=weights, update_spectra=updates)


def spread(values: np.ndarray) -> float:
    """Largest over smallest singular value (inf when the smallest is 0): how far from flat."""
    values = np.asarray(values, dtype=np.float64)
    smallest = float(values.min())
    return float(values.max()) / smallest if smallest > 0 else float("inf")


def middle_spread(values: np.ndarray) -> float:
    """σ_1 / σ_m, the largest singular value over the middle one (m = ⌈r/2⌉ of r): how far from
    flat the leading half of a spectrum is (inf when σ_m is 0, NaN when not finite). Unlike
    `spread` it ignores the smallest directions, which a few steps of Muon on an ill-conditioned
    problem have not yet lifted (tests/core/test_matrix_problems.py)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        return float("nan")
    middle = float(values[(len(values) - 1) // 2])
    return float(values[0]) / middle if middle > 0 else float("inf")
