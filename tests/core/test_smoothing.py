"""TensorBoard's debiased EMA (core/engine/smoothing.py) against the formula written out as a plain
Python loop: all at once, point by point, in uneven chunks, with non-finite points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.engine.smoothing import DebiasedEma, debiased_ema
from core.errors import LabError


def _reference(values, weight: float) -> list[float]:
    """TensorBoard's resmoothDataset as a loop (without its constant-series shortcut, which only
    differs by rounding): non-finite points stay raw and do not count."""
    last, n, out = 0.0, 0, []
    for x in values:
        x = float(x)
        if not math.isfinite(x):
            out.append(x)
            continue
        last = last * weight + (1 - weight) * x
        n += 1
        out.append(last / (1 - weight**n))
    return out


def _noisy_loss(n: int, seed: int = 0) -> np.ndarray:
    """A mini-batch-like loss: decays from ~2 to ~0.05 with multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (0.05 + 2.0 * np.exp(-t / 300)) * np.exp(rng.normal(0, 0.5, n))


def _close(a, b) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    same_kind = (np.isnan(a) == np.isnan(b)) & (np.isinf(a) == np.isinf(b))
    assert same_kind.all()
    finite = np.isfinite(a)
    assert (a[~finite & ~np.isnan(a)] == b[~finite & ~np.isnan(b)]).all()  # same infinities
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 1000, 5000])
def test_matches_the_formula_as_a_loop(weight, n):
    values = _noisy_loss(n)
    _close(debiased_ema(values, weight), _reference(values, weight))


def test_first_point_is_the_first_value_and_early_points_are_not_dragged_to_it():
    values = _noisy_loss(400)
    shown = debiased_ema(values, 0.99)
    assert shown[0] == pytest.approx(values[0], rel=1e-15)
    # At step 100 the mean of the 101 points so far weighs the first one by 0.6 %, while an average
    # started at it (s₀ = x₀, no debiasing) still weighs it by 0.99**100 = 37 %.
    weights = 0.99 ** np.arange(100, -1, -1)
    assert shown[100] == pytest.approx(np.sum(weights * values[:101]) / np.sum(weights), rel=1e-12)


def test_weight_zero_is_the_raw_series_exactly():
    values = _noisy_loss(300)
    values[[5, 17]] = [np.nan, np.inf]
    shown = debiased_ema(values, 0.0)
    assert np.array_equal(shown, values, equal_nan=True)


@pytest.mark.parametrize("weight", [0.6, 0.97])
def test_incremental_extends_equal_all_at_once(weight):
    values = _noisy_loss(3000, seed=1)
    values[[0, 10, 11, 700, 2999]] = [np.nan, np.inf, -np.inf, np.nan, np.nan]
    whole = debiased_ema(values, weight)
    rng = np.random.default_rng(2)
    cuts = np.sort(rng.choice(np.arange(1, len(values)), size=40, replace=False))
    state, parts = DebiasedEma(weight), []
    for chunk in np.split(values, cuts):  # uneven frames, some a single point, one 0-length
        parts.append(state.extend(chunk))
        parts.append(state.extend(np.empty(0)))
    _close(np.concatenate(parts), whole)
    _close(whole, _reference(values, weight))
    one = DebiasedEma(weight)
    _close([one.push(v) for v in values], whole)


def test_non_finite_points_keep_their_raw_value_and_do_not_move_the_average():
    values = np.array([1.0, np.nan, 3.0, np.inf, -np.inf, 2.0, np.nan])
    shown = debiased_ema(values, 0.5)
    assert math.isnan(shown[1]) and math.isnan(shown[6])
    assert shown[3] == math.inf and shown[4] == -math.inf
    # The finite points are smoothed as if the others were not there (n counts 1, 2, 3).
    _close(shown[[0, 2, 5]], debiased_ema([1.0, 3.0, 2.0], 0.5))
    assert shown[2] == pytest.approx((0.5 * 1.0 + 3.0) / 1.5)  # (w·x₁ + x₂) / (1 + w)
    assert np.isnan(debiased_ema([np.nan, np.nan], 0.6)).all()


def test_a_constant_series_stays_exactly_flat_until_it_changes():
    values = np.full(500, 0.1)
    shown = debiased_ema(values, 0.9)
    assert np.array_equal(shown, values)  # no rounding noise for an auto-ranged axis to show
    values[300:] = 0.2
    state = DebiasedEma(0.9)
    shown = np.concatenate([state.extend(values[:200]), state.extend(values[200:])])
    assert np.array_equal(shown[:300], values[:300])
    _close(shown, _reference(values, 0.9))
    assert 0.1 < shown[300] < shown[320] < 0.2


def test_inputs_are_left_untouched_and_results_are_new_arrays():
    values = _noisy_loss(100)
    before = values.copy()
    shown = debiased_ema(values, 0.0)
    shown[:] = 0
    debiased_ema(values, 0.8)
    assert np.array_equal(values, before)


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5, math.nan, "a", True])
def test_a_weight_outside_0_1_is_refused_naming_the_field(weight):
    with pytest.raises(LabError, match=r"smoothing.*\[0, 1\)"):
        DebiasedEma(weight)


def test_a_two_dimensional_series_is_refused():
    with pytest.raises(LabError, match="values"):
        debiased_ema(np.ones((3, 2)), 0.5)
