"""Bounded history: long races fit in fixed memory and keep their spikes and their best point."""

from __future__ import annotations

import numpy as np

from core.engine.history import FIELDS, RunSeries


def test_series_stays_bounded_and_keeps_extremes():
    series = RunSeries(capacity=1024)
    rng = np.random.default_rng(0)
    steps = np.arange(100_000, dtype=float)
    loss = np.exp(-steps / 30_000) + 0.01 * rng.random(len(steps))
    loss[12_345] = 50.0  # a spike somewhere in the old part
    loss[54_321] = -1.0  # the best point
    for start in range(0, len(steps), 700):
        chunk = slice(start, start + 700)
        n = len(steps[chunk])
        rows = np.zeros((len(FIELDS), n))
        rows[FIELDS.index("step")] = steps[chunk]
        rows[FIELDS.index("loss")] = loss[chunk]
        series.extend(rows)
        assert len(series) <= 1024
    kept_steps = series.column("step")
    kept_loss = series.column("loss")
    assert np.all(np.diff(kept_steps) > 0), "time order is kept"
    assert kept_loss.max() == 50.0 and kept_loss.min() == -1.0
    assert kept_steps[-1] == 99_999, "the newest point is always kept"
    assert series.nbytes <= len(FIELDS) * 8 * 1024


def test_layer_stats_ring_hands_a_view_every_evaluation_it_missed_in_order():
    """A view that redraws every few evaluations reads the ones since its last redraw, oldest
    first; one that fell more than the ring's capacity behind gets the newest `capacity`."""
    from core.engine.history import LayerStatsRing

    ring = LayerStatsRing(capacity=8)
    runs, layers = 3, 2
    for k in range(11):
        grad = np.full((runs, layers), float(k))
        ring.append(10.0 * k, k / 4, 0.5 * k, grad, -grad)
    assert ring.total == 11 and len(ring) == 8
    xs, grad, ratio = ring.since(7)  # the last four
    np.testing.assert_array_equal(xs[:, 0], [70.0, 80.0, 90.0, 100.0])
    np.testing.assert_array_equal(grad[:, 1, 1], [7.0, 8.0, 9.0, 10.0])
    np.testing.assert_array_equal(ratio, -grad)
    xs, _, _ = ring.since(0)  # 11 missed, 8 kept: the newest 8
    np.testing.assert_array_equal(xs[:, 0], 10.0 * np.arange(3, 11))
    assert len(ring.since(11)[0]) == 0
    xs[0, 0] = -1.0  # a copy: the ring keeps its numbers
    assert ring.since(10)[0][0, 0] == 100.0 and ring.since(3)[0][0, 0] == 30.0


def test_layer_stats_ring_hands_a_redrawing_view_every_kept_evaluation_oldest_first():
    """The network view's per-layer plot redraws all kept evaluations at each new one: until
    the ring wraps they are views of its buffers (no copy per frame, read-only), then the
    newest `capacity` in order."""
    from core.engine.history import LayerStatsRing

    ring = LayerStatsRing(capacity=8)
    xs, grad, ratio = ring.in_order()
    assert xs.shape == (0, 3) and len(grad) == len(ratio) == 0
    for k in range(5):
        ring.append(10.0 * k, k / 4, 0.5 * k, np.full((2, 3), float(k)), np.full((2, 3), -k))
    xs, grad, ratio = ring.in_order()
    np.testing.assert_array_equal(xs[:, 0], 10.0 * np.arange(5))
    np.testing.assert_array_equal(grad[:, 1, 2], np.arange(5.0))
    assert not grad.flags.writeable and not xs.flags.writeable
    ring.append(50.0, 1.25, 2.5, np.full((2, 3), 5.0), np.full((2, 3), -5.0))
    assert grad.base is ring.in_order()[1].base  # the same buffer, not a copy
    for k in range(6, 11):
        ring.append(10.0 * k, k / 4, 0.5 * k, np.full((2, 3), float(k)), np.full((2, 3), -k))
    xs, grad, ratio = ring.in_order()  # 11 added, 8 kept: the newest, oldest first
    np.testing.assert_array_equal(xs[:, 0], 10.0 * np.arange(3, 11))
    np.testing.assert_array_equal(ratio[:, 0, 0], -np.arange(3.0, 11.0))
