"""Claims about imbalanced classes: one class's recall and the macro F1 on validation.

class_recall, val_f1: each a check, a sentence and its `ClaimKind` entry in `CLASS_KINDS`. Both
read the run's last validation confusion matrix (`RunTrace.val_confusion`) through
core/problems/metrics.py's `per_class_metrics_of`, the numbers the Per class tab and
summary.json show. They say what accuracy hides: a network that answers the majority class
everywhere scores 99 % accuracy on a 1:99 set while it finds none of the minority.
"""

from __future__ import annotations

import numpy as np

from core.problems.metrics import per_class_metrics_of
from core.teaching.lessons.claim_kind import RUN, ClaimKind, Traces, Verdict, in_bounds
from core.teaching.lessons.wording import bounds, num

_BOUNDS = {"at_least": "fraction", "at_most": "fraction"}


def _per_class(p, traces: Traces) -> dict[str, np.ndarray] | None:
    matrix = traces[p["run"]].val_confusion
    if matrix is None:
        return None
    return {key: values[0] for key, values in per_class_metrics_of(matrix[None]).items()}


def _check_class_recall(p, traces: Traces) -> Verdict:
    scores = _per_class(p, traces)
    c = p["class"]
    if scores is None or c >= len(scores["recall"]):
        return False, f"{p['run']}: no confusion matrix with a class {c}", {"recall": None}
    recall, support = float(scores["recall"][c]), int(scores["support"][c])
    found = int(round(recall * support))
    measured = f"{p['run']}: class {c} recall {num(recall)} ({found} of {support})"
    return in_bounds(recall, p), measured, {"recall": recall, "support": support}


def _check_val_f1(p, traces: Traces) -> Verdict:
    scores = _per_class(p, traces)
    if scores is None:
        return False, f"{p['run']}: no confusion matrix", {"f1": None}
    present = scores["support"] > 0  # macro over the classes in the split, as the race's
    f1 = float(scores["f1"][present].mean()) if present.any() else 0.0
    per_class = ", ".join(num(float(v)) for v in scores["f1"])
    return in_bounds(f1, p), f"{p['run']}: macro F1 {num(f1)} (per class {per_class})", {
        "f1": f1}


CLASS_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "class_recall", {**RUN, "class": "class"}, _BOUNDS,
        lambda p: f"{p['run']} ends recalling {bounds(p)} of class {p['class']}'s "
        "validation samples",
        _check_class_recall, needs="network",
        help="recall of class `class` (found / present) on validation at the run's last "
        "evaluation",
    ),
    ClaimKind(
        "val_f1", RUN, _BOUNDS,
        lambda p: f"{p['run']} ends with a validation macro F1 of {bounds(p)}",
        _check_val_f1, needs="network",
        help="macro F1 (the mean of the classes' F1) on validation at the run's last "
        "evaluation",
    ),
)
