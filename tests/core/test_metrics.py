"""The network lab's metrics (core/problems/metrics.py): one implementation over a run axis.

One model's metrics (the race's per-model evaluation) and R models' metrics at once (the stacked
evaluation) must be the very same numbers, bit for bit, and both must be scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from core.problems.metrics import (
    classification_metrics,
    classification_metrics_of,
    confusion_matrices,
    confusion_matrix,
    regression_metrics,
    regression_metrics_of,
)


def _splits(seed: int):
    """Small splits of many classes: classes go missing from the targets and the predictions,
    where the macro averages and their zero-division conventions matter."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(60):
        k = int(torch.randint(2, 12, (), generator=gen))
        n = int(torch.randint(4, 40, (), generator=gen))
        runs = int(torch.randint(1, 5, (), generator=gen))
        logits = torch.randn(runs, n, k, generator=gen)
        target = torch.randint(0, k, (n,), generator=gen)
        yield k, logits, target


def test_one_models_classification_metrics_are_the_stacked_ones_bit_for_bit():
    for k, logits, target in _splits(0):
        matrices = confusion_matrices(logits.argmax(dim=2), target, k)
        stacked = classification_metrics_of(matrices)
        for r in range(len(logits)):
            one = classification_metrics(logits[r], target, k)
            assert one.keys() == stacked.keys()
            for key, value in one.items():
                assert value == float(stacked[key][r]), (key, k, r)
            assert torch.equal(confusion_matrix(logits[r].argmax(dim=1), target, k), matrices[r])


def test_classification_metrics_are_scikit_learns():
    for k, logits, target in _splits(1):
        for run_logits in logits:
            pred = run_logits.argmax(dim=1).numpy()
            truth = target.numpy()
            mine = classification_metrics(run_logits, target, k)
            # Macro over the classes present in the split; a class never predicted scores 0.
            present = np.unique(truth)
            precision, recall, f1, _ = sk.precision_recall_fscore_support(
                truth, pred, labels=present, average="macro", zero_division=0)
            assert mine["accuracy"] == pytest.approx(sk.accuracy_score(truth, pred), abs=1e-15)
            assert mine["precision"] == pytest.approx(precision, abs=1e-15)
            assert mine["recall"] == pytest.approx(recall, abs=1e-15)
            assert mine["f1"] == pytest.approx(f1, abs=1e-15)
            np.testing.assert_array_equal(
                confusion_matrix(run_logits.argmax(dim=1), target, k).numpy(),
                sk.confusion_matrix(truth, pred, labels=list(range(k))))


@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_metrics_are_scikit_learns_and_the_stacked_ones_bit_for_bit(outputs):
    gen = torch.Generator().manual_seed(2)
    pred = torch.randn(4, 50, outputs, generator=gen)
    target = torch.randn(50, outputs, generator=gen)
    stacked = regression_metrics_of(pred, target)
    for r in range(len(pred)):
        one = regression_metrics(pred[r], target)
        assert one == {key: float(values[r]) for key, values in stacked.items()}
        p, t = pred[r].double().numpy().ravel(), target.double().numpy().ravel()
        assert one["mse"] == pytest.approx(sk.mean_squared_error(t, p), rel=1e-6)
        assert one["mae"] == pytest.approx(sk.mean_absolute_error(t, p), rel=1e-6)
        assert one["r2"] == pytest.approx(sk.r2_score(t, p), rel=1e-5)
    # A constant target has no R²: 0 says "no better than the mean".
    assert regression_metrics(pred[0], torch.ones(50, outputs))["r2"] == 0.0
