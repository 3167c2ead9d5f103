"""Bounded per-run series that the plots read: growable numpy buffers, decimated when full.

The GUI appends the engine's records here once per batch and each plot calls ``setData`` with
views of these arrays. Memory stays bounded on long races: when a run's series reaches
``capacity`` points, its older part is thinned by buckets of four, keeping each bucket's lowest
and highest loss in time order — spikes and the best point stay visible, as with pyqtgraph's
peak downsampling. The newest points are always at full resolution.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from core.engine import StepRecord

FIELDS = ("step", "x", "y", "loss", "lr", "grad_norm")
DEFAULT_CAPACITY = 200_000


class RunSeries:
    """One run's columns (see `FIELDS`), as one growable 2-D array."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 64 or capacity % 4:
            raise ValueError("capacity must be a multiple of 4 and at least 64")
        self.capacity = capacity
        self._data = np.empty((len(FIELDS), 1024), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column (no copy)."""
        view = self._data[FIELDS.index(name), : self._size]
        view.flags.writeable = False
        return view

    def last(self, name: str) -> float:
        return float(self._data[FIELDS.index(name), self._size - 1])

    def extend(self, rows: np.ndarray) -> None:
        """Append rows shaped (len(FIELDS), n)."""
        n = rows.shape[1]
        if self._size + n > self._data.shape[1]:
            if self._size + n > self.capacity:
                self._decimate(self._size + n - self.capacity)
            if self._size + n > self._data.shape[1]:
                grown = max(self._size + n, min(self.capacity, 2 * self._data.shape[1]))
                data = np.empty((len(FIELDS), grown), dtype=np.float64)
                data[:, : self._size] = self._data[:, : self._size]
                self._data = data
        self._data[:, self._size : self._size + n] = rows
        self._size += n

    def _decimate(self, needed: int) -> None:
        """Halve the oldest part until ``needed`` slots are free, keeping min and max loss."""
        loss_row = FIELDS.index("loss")
        while self.capacity - self._size < needed:
            # Thin the older half; keep the newer half at full resolution.
            old = (self._size // 2) // 4 * 4
            if old < 4:
                raise ValueError("capacity too small for one batch")
            block = self._data[:, :old].reshape(len(FIELDS), old // 4, 4)
            losses = block[loss_row]
            lo = np.argmin(losses, axis=1)
            hi = np.argmax(losses, axis=1)
            first, second = np.minimum(lo, hi), np.maximum(lo, hi)
            # Buckets whose min and max are one point keep that point and the bucket's last.
            second = np.where(first == second, 3, second)
            first = np.where(first == second, 0, first)
            idx = np.arange(old // 4)
            kept = np.stack([block[:, idx, first], block[:, idx, second]], axis=2)
            kept = kept.reshape(len(FIELDS), old // 2)
            rest = self._data[:, old : self._size].copy()
            self._data[:, : old // 2] = kept
            self._data[:, old // 2 : old // 2 + rest.shape[1]] = rest
            self._size = old // 2 + rest.shape[1]

    @property
    def nbytes(self) -> int:
        return self._data.nbytes


class RaceHistory:
    """Every run's series, filled from engine records (diverged runs stop growing)."""

    def __init__(self, labels: Sequence[str], capacity: int = DEFAULT_CAPACITY):
        self.labels = tuple(labels)
        self.runs = [RunSeries(capacity) for _ in self.labels]
        self.last_step = -1
        self.divergences: dict[int, object] = {}

    def extend(self, records: Iterable[StepRecord]) -> None:
        """Append a batch of records: one array operation per run, not one per record."""
        records = list(records)
        if not records:
            return
        steps = np.array([r.step for r in records], dtype=np.float64)
        points = np.stack([r.point for r in records])  # (n, R, 2)
        loss = np.stack([r.loss for r in records])  # (n, R)
        lr = np.stack([r.lr for r in records])
        grad = np.stack([r.grad_norm for r in records])
        alive = np.stack([r.alive for r in records])
        for rec in records:
            for event in rec.diverged:
                self.divergences[event.run] = event
        for i, series in enumerate(self.runs):
            keep = alive[:, i]
            if not keep.any():
                continue
            rows = np.stack(
                [steps[keep], points[keep, i, 0], points[keep, i, 1], loss[keep, i], lr[keep, i],
                 grad[keep, i]]
            )
            series.extend(rows)
        self.last_step = records[-1].step
