"""Bounded history: long races fit in fixed memory and keep their spikes and their best point."""

from __future__ import annotations

import numpy as np

from core.history import FIELDS, RunSeries


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
