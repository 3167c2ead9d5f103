"""Losses and metrics for the network lab, computed with torch on the run's device.

Classification: accuracy, macro precision / recall / F1 and the confusion matrix (rows = true
class, columns = predicted). A class that is never predicted has precision 0 by convention (as
scikit-learn's ``zero_division=0``), so macro scores never turn NaN. Regression: MSE, MAE, R².

Each metric has one implementation over a leading run axis (`classification_metrics_of`,
`regression_metrics_of`: R runs at once, as the network race's stacked evaluation needs); one
model's metrics (`classification_metrics`, `regression_metrics`) are the same formulas with R = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import LabError

LOSSES: dict[str, str] = {
    "cross_entropy": "Cross entropy: −log of the probability given to the true class (softmax)",
    "mse": "Mean squared error: mean of (prediction − target)²",
    "mae": "Mean absolute error: mean of |prediction − target|",
    "huber": "Huber: squared error near 0, absolute error beyond δ = 1 (robust to outliers)",
}
CLASSIFICATION_LOSSES = ("cross_entropy",)
REGRESSION_LOSSES = ("mse", "mae", "huber")


def loss_function(name: str, task: str, field: str = "problem.loss") -> Callable[[Tensor, Tensor], Tensor]:
    """The criterion for ``name`` on a ``task``; refuses a loss that does not fit the task."""
    if name not in LOSSES:
        raise LabError(field, f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    allowed = CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES
    if name not in allowed:
        raise LabError(
            field, f"{name!r} does not fit a {task} data set; use one of: {', '.join(allowed)}"
        )
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "mse":
        return F.mse_loss
    if name == "mae":
        return F.l1_loss
    return F.huber_loss


def confusion_matrices(pred: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """(R, n_classes, n_classes) int64 counts of R runs' (R, N) predictions against one target,
    in one bincount (run r's cells offset by r·k²); rows are true classes, columns predictions."""
    k = n_classes
    runs = pred.shape[0]
    offset = torch.arange(runs, device=pred.device)[:, None] * (k * k)
    index = offset + target.long()[None, :] * k + pred.long()
    return torch.bincount(index.flatten(), minlength=runs * k * k).reshape(runs, k, k)


def confusion_matrix(pred: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """(n_classes, n_classes) int64 counts of one model's predictions (`confusion_matrices`)."""
    return confusion_matrices(pred[None], target, n_classes)[0]


def classification_metrics_of(matrices: Tensor) -> dict[str, np.ndarray]:
    """Accuracy and macro precision / recall / F1 of each run's confusion matrix (R, k, k), in
    float64: one array of R values per metric. Macro averages over the classes present in the
    split. THE formulas: one model's metrics (`classification_metrics`) are these with R = 1, so
    the network race's per-model and stacked evaluations give the same numbers."""
    cm = matrices.double()
    true_pos = cm.diagonal(dim1=1, dim2=2)  # (R, k)
    predicted = cm.sum(dim=1)
    actual = cm.sum(dim=2)
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    present = actual > 0  # macro over the classes that occur in this split
    count = present.sum(dim=1).clamp(min=1)

    def macro(values: Tensor) -> np.ndarray:
        return (torch.where(present, values, 0.0).sum(dim=1) / count).cpu().numpy()

    return {
        "accuracy": (true_pos.sum(dim=1) / cm.sum(dim=(1, 2)).clamp(min=1)).cpu().numpy(),
        "precision": macro(precision),
        "recall": macro(recall),
        "f1": macro(f1),
    }


def classification_metrics(logits: Tensor, target: Tensor, n_classes: int) -> dict[str, float]:
    """`classification_metrics_of` one model's (N, k) logits."""
    matrices = confusion_matrices(logits.argmax(dim=1)[None], target, n_classes)
    return {key: float(values[0]) for key, values in classification_metrics_of(matrices).items()}


def regression_metrics_of(pred: Tensor, target: Tensor) -> dict[str, np.ndarray]:
    """MSE, MAE and R² of R runs' (R, N, …) predictions against one target, one float64 array of
    R values each. THE formulas: `regression_metrics` is this with R = 1."""
    err = (pred - target.unsqueeze(0)).flatten(1)
    mse = (err**2).mean(dim=1).double().cpu().numpy()
    total = float(((target - target.mean()) ** 2).mean())
    return {
        "mse": mse,
        "mae": err.abs().mean(dim=1).double().cpu().numpy(),
        # R² of a constant target is undefined; 0 says "no better than the mean".
        "r2": 1.0 - mse / total if total > 0 else np.zeros_like(mse),
    }


def regression_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """`regression_metrics_of` one model's predictions."""
    return {key: float(values[0]) for key, values in regression_metrics_of(pred[None], target).items()}
