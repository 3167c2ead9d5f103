"""The imbalance lesson's claim kinds (core/teaching/lessons/class_claims.py) judge the real race:
their numbers are scikit-learn's on the run's validation predictions, and false claims fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, recall_score

from core.errors import LabError
from core.teaching.lessons.check import evaluate_claims
from core.teaching.lessons.loader import load_lesson
from core.teaching.lessons.trace import trace_labs
from core.teaching.lessons.validate import claim_from_dict

RUNS = {"Plain": True, "Balanced weights": True}


@pytest.fixture(scope="module")
def lesson_traces():
    lesson = load_lesson("imbalance")
    return lesson, trace_labs(lesson.labs)


def _judge(traces, **claim):
    return evaluate_claims([claim_from_dict(claim, 0, RUNS, {})], traces)[0]


def _predictions(lab, label):
    """The run's validation predictions recomputed from its final weights by hand."""
    from core.engine.network_race import NetworkRace

    race = NetworkRace(lab)
    for _ in race.records():
        pass
    i = race.labels.index(label)
    with torch.no_grad():
        pred = race.models[i](torch.as_tensor(race.data.x_val)).argmax(1).numpy()
    return race.data.y_val, pred


def test_recall_and_f1_are_scikit_learns_on_the_runs_predictions(lesson_traces):
    lesson, traces = lesson_traces
    for lab, label in zip(lesson.labs, ("Plain", "Balanced weights")):
        target, pred = _predictions(lab, label)
        recall = _judge(traces, kind="class_recall", run=label, **{"class": 1}, at_least=0)
        f1 = _judge(traces, kind="val_f1", run=label, at_least=0)
        assert recall.values["recall"] == pytest.approx(recall_score(target, pred), abs=1e-12)
        assert f1.values["f1"] == pytest.approx(f1_score(target, pred, average="macro"),
                                                abs=1e-12)
    plain = traces["Plain"]
    assert np.trace(plain.val_confusion) / plain.val_confusion.sum() >= 0.985


@pytest.mark.parametrize("claim", [
    {"kind": "class_recall", "run": "Balanced weights", "class": 1, "at_most": 0.05},
    {"kind": "class_recall", "run": "Plain", "class": 1, "at_least": 0.5},
    {"kind": "val_f1", "run": "Plain", "at_least": 0.6},
    {"kind": "class_recall", "run": "Plain", "class": 0, "at_most": 0.9},
])
def test_false_claims_fail(lesson_traces, claim):
    assert not _judge(lesson_traces[1], **claim).holds


@pytest.mark.parametrize("claim,field", [
    ({"kind": "class_recall", "run": "Plain", "class": 10, "at_most": 0.1}, "claims[0].class"),
    ({"kind": "class_recall", "run": "Plain", "class": 1, "at_most": 1.5},
     "claims[0].at_most"),
    ({"kind": "val_f1", "run": "Plain"}, "claims[0].at_least"),
])
def test_bad_claim_fields_are_named(claim, field):
    with pytest.raises(LabError) as info:
        claim_from_dict(claim, 0, RUNS, {})
    assert info.value.field == field
