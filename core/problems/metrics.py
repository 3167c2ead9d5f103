"""Losses and metrics for the network lab, computed with torch on the run's device.

Classification: accuracy, macro precision / recall / F1 and the confusion matrix (rows = true
class, columns = predicted); each class's own precision / recall / F1 / support
(`per_class_metrics_of`, what accuracy hides on imbalanced data); the precision–recall curve of a
binary task's scores (`precision_recall_curve`, numpy, scikit-learn's definition). A class that is
never predicted has precision 0 by convention (as scikit-learn's ``zero_division=0``), so macro
scores never turn NaN. Regression: MSE, MAE, R².

Class weights (``problem.class_weights``: ``"balanced"`` or one weight per class,
`class_weight_values`) make cross entropy a `WeightedCrossEntropy`: torch's
``nn.CrossEntropyLoss(weight=w)``, the batch's loss Σ w_{y_i}·ℓ_i / Σ w_{y_i}. The race uses the
one criterion for training, the training and validation losses of its evaluations, sharpness and
loss surfaces, so the validation loss is weighted too (with the weights of the training split),
and early stopping watches the loss being minimised.

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


MAX_CLASS_WEIGHT = 1e6


class WeightedCrossEntropy:
    """Cross entropy with one weight per class: torch's ``nn.CrossEntropyLoss(weight=w)``.

    Called as ``F.cross_entropy`` is (``reduction="none"`` gives w_{y_i}·ℓ_i); ``batch_mean``
    turns such per-sample values into the weighted mean, for the stacked path
    (core/engine/stacked.py)."""

    def __init__(self, weight: Tensor):
        self.weight = weight

    def _weight_for(self, logits: Tensor) -> Tensor:
        w = self.weight
        return w if w.dtype == logits.dtype and w.device == logits.device else w.to(logits)

    def __call__(self, logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        return F.cross_entropy(logits, target, weight=self._weight_for(logits),
                               reduction=reduction)

    def batch_mean(self, per_sample: Tensor, target: Tensor, dim: int) -> Tensor:
        """Σ w_{y}·ℓ / Σ w_{y} along ``dim`` of ``reduction="none"`` values."""
        return per_sample.sum(dim=dim) / self._weight_for(per_sample)[target].sum(dim=dim)


def check_class_weights(value, n_classes: int, task: str,
                        field: str = "problem.class_weights") -> str | list[float] | None:
    """A ``problem.class_weights`` value cleaned: None, ``"balanced"`` or k weights in
    (0, 1e6]; refused (naming ``field``) on a regression set or with the wrong count."""
    if value is None:
        return None
    if task != "classification":
        raise LabError(field, "applies to classification only; remove it or use null")
    if value == "balanced":
        return value
    if not isinstance(value, (list, tuple)) or len(value) != n_classes:
        raise LabError(field, f'must be "balanced", null or a list of {n_classes} weights '
                              f"(one per class), got {value!r}"[:200])
    weights = []
    for c, w in enumerate(value):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (
                0 < w <= MAX_CLASS_WEIGHT):
            raise LabError(f"{field}[{c}]", f"must be a number in (0, {MAX_CLASS_WEIGHT:g}], "
                                            f"got {w!r}")
        weights.append(float(w))
    return weights


def class_weight_values(value, y_train: np.ndarray, n_classes: int,
                        field: str = "problem.class_weights") -> np.ndarray | None:
    """The weight of each class (float64, k) for a cleaned ``value``: None stays None; a list
    is taken as given; ``"balanced"`` is n_samples / (n_classes · count_c) over the training
    labels, scikit-learn's ``compute_class_weight("balanced")``, so a class's total weight is
    the same for every class. A class missing from the training split is refused."""
    if value is None:
        return None
    if value != "balanced":
        return np.asarray(value, dtype=np.float64)
    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise LabError(field, f'"balanced" needs every class in the training split; class '
                              f"{int(missing[0])} has no sample there")
    return len(y_train) / (n_classes * counts.astype(np.float64))


def loss_function(name: str, task: str, field: str = "problem.loss",
                  class_weights: Tensor | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """The criterion for ``name`` on a ``task``; refuses a loss that does not fit the task.
    ``class_weights`` (k,) makes cross entropy a `WeightedCrossEntropy`."""
    if name not in LOSSES:
        raise LabError(field, f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    allowed = CLASSIFICATION_LOSSES if task == "classification" else REGRESSION_LOSSES
    if name not in allowed:
        raise LabError(
            field, f"{name!r} does not fit a {task} data set; use one of: {', '.join(allowed)}"
        )
    if name == "cross_entropy":
        return F.cross_entropy if class_weights is None else WeightedCrossEntropy(class_weights)
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


def _per_class(cm: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(true positives, actual counts, precision, recall, F1), each (R, k) float64, of (R, k, k)."""
    true_pos = cm.diagonal(dim1=1, dim2=2)  # (R, k)
    predicted = cm.sum(dim=1)
    actual = cm.sum(dim=2)
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), 0.0)
    return true_pos, actual, precision, recall, f1


def per_class_metrics_of(matrices: Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Each class's precision, recall, F1 and support (its true count) from R runs' confusion
    matrices (R, k, k): float64 arrays (R, k). scikit-learn's
    ``precision_recall_fscore_support(labels=range(k), zero_division=0)``: a class never
    predicted has precision 0, one absent from the split recall 0."""
    cm = torch.as_tensor(matrices).double()
    _, actual, precision, recall, f1 = _per_class(cm)
    return {"precision": precision.cpu().numpy(), "recall": recall.cpu().numpy(),
            "f1": f1.cpu().numpy(), "support": actual.cpu().numpy()}


def classification_metrics_of(matrices: Tensor) -> dict[str, np.ndarray]:
    """Accuracy and macro precision / recall / F1 of each run's confusion matrix (R, k, k), in
    float64: one array of R values per metric. Macro averages over the classes present in the
    split. THE formulas: one model's metrics (`classification_metrics`) are these with R = 1, so
    the network race's per-model and stacked evaluations give the same numbers."""
    cm = matrices.double()
    true_pos, actual, precision, recall, f1 = _per_class(cm)
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


def precision_recall_curve(target: np.ndarray, scores: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) of a binary task: class 1 is the positive class and
    ``scores`` its predicted probability. scikit-learn's ``precision_recall_curve``: one point
    per distinct score (thresholds increasing), recall decreasing to a last point (recall 0,
    precision 1); with no positive sample recall is 1 throughout. float64."""
    y = np.asarray(target).astype(np.int64) == 1
    s = np.asarray(scores, dtype=np.float64)
    desc = np.argsort(-s, kind="mergesort")  # stable: ties keep the sample order
    s, y = s[desc], y[desc]
    cut = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(y)[cut].astype(np.float64)
    fps = 1.0 + cut - tps
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return (np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], s[cut][::-1])


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """The area under a `precision_recall_curve` as scikit-learn's ``average_precision_score``:
    Σ (R_n − R_{n+1}) · P_n, with no interpolation."""
    return float(-np.sum(np.diff(recall) * np.asarray(precision)[:-1]))
