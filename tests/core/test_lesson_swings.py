"""The ravine lesson's words about momentum match its drawn path (resources/lessons/ravine).

Its text once said momentum "sways much less than SGD" and checked it by counting reversals,
while the arena showed momentum's path swinging far wider than SGD's. The `swings_wider` claim
measures what the eye sees, the width of the swing across the valley; these tests check it
against a plain float64 recurrence of the two optimizers, show that it fails where the width
does not hold, and that it measures width, not reversals.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import LabError
from core.lab.format import Lab
from core.teaching.lessons.check import check_claims, evaluate_claims
from core.teaching.lessons.loader import LESSON_FILE, LESSONS_DIR, lesson_from_dict, load_lesson
from core.teaching.lessons.trace import RunTrace

RAVINE = LESSONS_DIR / "ravine"


def _ravine_paths(steps: int = 100) -> dict[str, np.ndarray]:
    """SGD and heavy-ball y on f = ½(x² + 100y²) from y = 1, as torch.optim.SGD steps:
    v ← μv + ∇f, y ← y − lr·v (μ = 0 for plain SGD), in float64."""
    runs = json.loads((RAVINE / "lesson.lab.json").read_text())["runs"]
    paths = {}
    for run in runs[:2]:
        lr, mu = run["params"]["lr"], run["params"].get("momentum", 0.0)
        y, v, ys = 1.0, 0.0, [1.0]
        for _ in range(steps):
            v = mu * v + 100.0 * y
            y -= lr * v
            ys.append(y)
        paths[run["label"]] = np.asarray(ys)
    return paths


def _ravine_with(claims: list[dict]):
    data = json.loads((RAVINE / LESSON_FILE).read_text())
    return lesson_from_dict({**data, "claims": claims}, RAVINE, "ravine")


def _claim(run, than, **more) -> dict:
    return {"kind": "swings_wider", "run": run, "than": than, "axis": "y", **more}


def test_the_ravine_swing_claims_hold_with_the_numbers_of_a_plain_recurrence():
    paths = _ravine_paths()
    widest = {label: lambda a, b, y=y: np.abs(np.diff(y[a: b + 1])).max()
              for label, y in paths.items()}
    lesson = load_lesson("ravine")
    swings = [r for r in check_claims(lesson) if r.claim.kind == "swings_wider"]
    assert len(swings) == 2 and all(r.holds for r in swings)
    early, late = swings
    assert (early.claim.params["run"], early.claim.params["within"]) == ("Momentum", 20)
    assert early.values["swing"] == pytest.approx(widest["Momentum"](0, 20), rel=1e-9)
    assert early.values["other_swing"] == pytest.approx(widest["SGD"](0, 20), rel=1e-9)
    assert widest["Momentum"](0, 20) > 3 * widest["SGD"](0, 20)  # 7.15 against 1.98
    assert (late.claim.params["run"], late.claim.params["after"]) == ("SGD", 30)
    assert late.values["swing"] == pytest.approx(widest["SGD"](30, 100), rel=1e-9)
    assert late.values["other_swing"] == pytest.approx(widest["Momentum"](30, 100), rel=1e-9)


@pytest.mark.parametrize("claim", [
    _claim("SGD", "Momentum", within=20),  # the early swings, run and than swapped
    _claim("SGD", "Momentum", within=100),  # the old words: momentum sways less than SGD
    _claim("Momentum", "SGD", after=30, within=100),  # the late swings, swapped
    _claim("Momentum", "SGD", within=20, factor=10),  # wider, but not ten times wider
])
def test_a_swing_claim_fails_where_the_drawn_path_says_otherwise(claim):
    [result] = check_claims(_ravine_with([claim]))
    assert not result.holds
    assert "widest move along y in steps" in result.measured
    assert result.line().startswith("✗ ")


def _trace(label: str, ys) -> RunTrace:
    trace = RunTrace(label, Lab(name="t"), network=False)
    trace.points = [(0.1 * k, float(y)) for k, y in enumerate(ys)]
    return trace


def test_the_claim_measures_the_width_of_the_swing_not_the_number_of_reversals():
    # "busy" reverses on every step but narrowly; "wide" reverses twice, far up the walls.
    busy = _trace("busy", [0.2 * (-1) ** k for k in range(21)])
    wide = _trace("wide", [0.0, 3.0, -3.0, -2.9, -2.8] + [-2.8] * 16)
    traces = {"busy": busy, "wide": wide}
    lesson = _ravine_with([_claim("Momentum", "SGD", within=20)])
    claim = lesson.claims[0]
    [wide_wins] = evaluate_claims([type(claim)(claim.kind, {**claim.params, "run": "wide",
                                                            "than": "busy"}, 0)], traces)
    [busy_wins] = evaluate_claims([type(claim)(claim.kind, {**claim.params, "run": "busy",
                                                            "than": "wide"}, 0)], traces)
    assert wide_wins.holds and wide_wins.values == {"swing": 6.0, "other_swing": 0.4}
    assert not busy_wins.holds


def test_an_after_step_at_or_past_within_is_refused_naming_the_field():
    with pytest.raises(LabError) as caught:
        _ravine_with([_claim("Momentum", "SGD", after=20, within=20)])
    assert caught.value.field == "claims[0].after"
    assert "must be < within (20)" in caught.value.message
