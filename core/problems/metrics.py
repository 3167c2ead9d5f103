"""Losses and metrics for the network lab, computed with torch on the run's device.

Classification: accuracy, macro precision / recall / F1 and the confusion matrix (rows = true
class, columns = predicted). A class that is never predicted has precision 0 by convention (as
scikit-learn's ``zero_division=0``), so macro scores never turn NaN. Regression: MSE, MAE, R².
"""

from __future__ import annotations

from collections.abc import Callable

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


def confusion_matrix(pred: Tensor, target: Tensor, n_classes: int) -> Tensor:
    """(n_classes, n_classes) int64 counts; rows are true classes, columns predictions."""
    index = target.long() * n_classes + pred.long()
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(logits: Tensor, target: Tensor, n_classes: int) -> dict[str, float]:
    pred = logits.argmax(dim=1)
    cm = confusion_matrix(pred, target, n_classes).double()
    true_pos = cm.diag()
    predicted = cm.sum(dim=0)
    actual = cm.sum(dim=1)
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    present = actual > 0  # macro over the classes that occur in this split
    count = max(int(present.sum()), 1)
    return {
        "accuracy": float(true_pos.sum() / cm.sum().clamp(min=1)),
        "precision": float(precision[present].sum() / count),
        "recall": float(recall[present].sum() / count),
        "f1": float(f1[present].sum() / count),
    }


def regression_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    err = pred - target
    mse = float((err**2).mean())
    total = float(((target - target.mean()) ** 2).mean())
    return {
        "mse": mse,
        "mae": float(err.abs().mean()),
        # R² of a constant target is undefined; 0 says "no better than the mean".
        "r2": 1.0 - mse / total if total > 0 else 0.0,
    }
