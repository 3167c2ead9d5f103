"""Performance profiles and the score B (core/tools/scorecard/profiles.py) against closed forms
computed by hand here."""

from __future__ import annotations

import math

import pytest

from core.tools.scorecard.profiles import apply_heldout, profile_steps, ratios, rho, score, scores

INF = math.inf
# Three entries on four workloads. Best per workload: w1 10 (a), w2 50 (b), w3 30 (c), w4: none.
TIMES = {
    "a": {"w1": 10, "w2": 100, "w3": 60, "w4": INF},
    "b": {"w1": 25, "w2": 50, "w3": INF, "w4": INF},
    "c": {"w1": 50, "w2": 150, "w3": 30, "w4": INF},
}


def test_ratios_to_the_best_with_misses_infinite():
    r = ratios(TIMES)
    assert r["a"] == {"w1": 1.0, "w2": 2.0, "w3": 2.0, "w4": INF}
    assert r["b"] == {"w1": 2.5, "w2": 1.0, "w3": INF, "w4": INF}
    assert r["c"] == {"w1": 5.0, "w2": 3.0, "w3": 1.0, "w4": INF}


def test_rho_and_b_equal_their_closed_forms():
    r = ratios(TIMES)
    # a: ratios 1, 2, 2, inf -> rho = 1/4 on [1, 2), 3/4 on [2, 4]
    assert rho(r["a"], 1.0) == 0.25
    assert rho(r["a"], 1.999) == 0.25
    assert rho(r["a"], 2.0) == 0.75
    assert rho(r["a"], 4.0) == 0.75
    # B_a = (1/3)(1/4·1 + 3/4·2) = (1/4 + 3/2)/3 = 7/12
    assert score(r["a"]) == pytest.approx(7 / 12, abs=1e-15)
    # b: ratios 2.5, 1, inf, inf -> rho 1/4 on [1, 2.5), 2/4 on [2.5, 4]
    # B_b = (1/3)(1/4·1.5 + 1/2·1.5) = (0.375 + 0.75)/3 = 0.375
    assert score(r["b"]) == pytest.approx(0.375, abs=1e-15)
    # c: ratios 5 (beyond 4: never counts), 3, 1, inf -> 1/4 on [1, 3), 2/4 on [3, 4]
    # B_c = (1/3)(1/4·2 + 1/2·1) = 1/3
    assert score(r["c"]) == pytest.approx(1 / 3, abs=1e-15)
    assert profile_steps(r["c"]) == [(1.0, 0.25), (3.0, 0.5)]


def test_b_matches_a_fine_riemann_sum():
    r = ratios(TIMES)
    n = 300_000
    for entry in TIMES:
        riemann = sum(rho(r[entry], 1 + 3 * (i + 0.5) / n) for i in range(n)) / n
        assert score(r[entry]) == pytest.approx(riemann, abs=1e-4)


def test_best_everywhere_scores_one_and_missing_everything_zero():
    times = {"best": {"w1": 5, "w2": 7}, "slow": {"w1": 10, "w2": 21},
             "never": {"w1": INF, "w2": INF}}
    s = scores(times)
    assert s["best"] == 1.0
    assert s["never"] == 0.0
    # slow: ratios 2 and 3 -> (2 + 1)/3/2 = 1/2
    assert s["slow"] == pytest.approx(0.5)


def test_a_missed_heldout_variant_voids_the_base_workload():
    times = {"a": {"w1": 10, "w2": 20}, "b": {"w1": 20, "w2": 20}}
    heldout = {"a": {"w1": [12, INF]}, "b": {"w1": [25, 30]}}
    voided = apply_heldout(times, heldout)
    assert voided["a"] == {"w1": INF, "w2": 20}
    assert voided["b"] == {"w1": 20, "w2": 20}
    s = scores(voided)
    # a: w1 void, w2 ratio 1 -> 1/2; b now best on both -> 1
    assert s == {"a": 0.5, "b": 1.0}
    assert scores(times)["a"] == 1.0  # without the rule a would look best everywhere
