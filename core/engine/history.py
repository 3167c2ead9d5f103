"""Bounded per-run series that the plots read: fixed-capacity numpy buffers, decimated when full.

The GUI appends the engine's records here once per batch and each plot calls ``setData`` with
views of these arrays. Memory stays bounded on long races: when a run's series reaches
``capacity`` points, its older part is thinned by buckets of four, keeping each bucket's lowest
and highest loss in time order — spikes and the best point stay visible, as with pyqtgraph's
peak downsampling. The newest points are always at full resolution.

Every buffer is allocated once, at its full size, and written in place. Buffers that grow by
doubling, or many small arrays kept for a long time between large temporary ones (the
evaluations' tensors), leave holes the C allocator keeps but cannot reuse: a network race of 8
runs grew its resident memory by ~2.2 MB per 1,000 steps that way while the memory in use stayed
flat (measured with glibc's mallinfo2 over 35,000 steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from core.engine.function_race import StepRecord

FIELDS = ("step", "x", "y", "loss", "lr", "grad_norm")
# Points kept per run before the older half is thinned: 16x a wide screen's pixels, so the views
# lose nothing, while 8-12 runs stay within the soak's memory budget (at 100,000 a network race
# of 8 runs grew its resident memory by 68 MB over 10^5 steps, the budget is 50 MB).
DEFAULT_CAPACITY = 32_768
SHARPNESS_FIELDS = ("step", "sharpness", "lr")  # NetworkHistory.sharpness_series
# NetworkHistory.edge_series: Adam/RMSprop's preconditioned sharpness and each run's own edge of
# stability (core/landscape/adaptive_edge.py), NaN where it has none.
EDGE_FIELDS = ("preconditioned", "edge")
INTERNALS_STEPS = 1_000  # newest steps whose optimizer internals RaceHistory keeps


class RunSeries:
    """One run's columns (``fields``, by default `FIELDS`), as one growable 2-D array.

    Decimation keeps the extremes of the ``peak_field`` column (the loss).
    """

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        fields: tuple[str, ...] = FIELDS,
        peak_field: str = "loss",
    ):
        if capacity < 64 or capacity % 4:
            raise ValueError("capacity must be a multiple of 4 and at least 64")
        self.capacity = capacity
        self.fields = fields
        self._peak_row = fields.index(peak_field)
        # The whole capacity at once: np.empty only reserves address space (pages count as
        # resident once written), whereas growing by doubling freed a copy at every doubling that
        # the allocator kept: a network race of 8 runs grew ~2x its buffers' size over 10^5 steps.
        self._data = np.empty((len(fields), capacity), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column (no copy)."""
        view = self._data[self.fields.index(name), : self._size]
        view.flags.writeable = False
        return view

    def last(self, name: str) -> float:
        return float(self._data[self.fields.index(name), self._size - 1])

    def extend(self, rows: np.ndarray) -> None:
        """Append rows shaped (len(fields), n)."""
        n = rows.shape[1]
        if self._size + n > self.capacity:
            self._decimate(n)
        self._data[:, self._size : self._size + n] = rows
        self._size += n

    def _decimate(self, needed: int) -> None:
        """Halve the oldest part until ``needed`` more rows fit, keeping min and max loss."""
        loss_row = self._peak_row
        width = len(self.fields)
        while self.capacity - self._size < needed:
            # Thin the older half; keep the newer half at full resolution.
            old = (self._size // 2) // 4 * 4
            if old < 4:
                raise ValueError("capacity too small for one batch")
            block = self._data[:, :old].reshape(width, old // 4, 4)
            losses = block[loss_row]
            lo = np.argmin(losses, axis=1)
            hi = np.argmax(losses, axis=1)
            first, second = np.minimum(lo, hi), np.maximum(lo, hi)
            # Buckets whose min and max are one point keep that point and the bucket's last.
            second = np.where(first == second, 3, second)
            first = np.where(first == second, 0, first)
            idx = np.arange(old // 4)
            kept = np.stack([block[:, idx, first], block[:, idx, second]], axis=2)
            kept = kept.reshape(width, old // 2)
            rest = self._data[:, old : self._size].copy()
            self._data[:, : old // 2] = kept
            self._data[:, old // 2 : old // 2 + rest.shape[1]] = rest
            self._size = old // 2 + rest.shape[1]

    @property
    def nbytes(self) -> int:
        return self._data.nbytes


class RaceHistory:
    """Every run's series, filled from engine records (diverged runs stop growing).

    Records that carry optimizer internals (the GUI's races) keep them for the newest
    ``internals_steps`` steps only (~1 KB per run and step), for the overlay and the timeline.
    """

    def __init__(self, labels: Sequence[str], capacity: int = DEFAULT_CAPACITY,
                 internals_steps: int = INTERNALS_STEPS):
        self.labels = tuple(labels)
        self.runs = [RunSeries(capacity) for _ in self.labels]
        self.last_step = -1
        self.divergences: dict[int, object] = {}
        self.internals_steps = internals_steps
        self._internals: dict[int, tuple] = {}  # step → per-run Internals (insertion = step order)
        # Per run, the first step whose record is appended: a run kept whole while the race
        # starts over for another run ignores its recomputed rows (core/engine/continuation.py).
        self.keep_from = np.zeros(len(self.labels))

    def internals_at(self, step: int) -> list | None:
        """Each run's `core.optim.internals.Internals` for the update that led to ``step`` (None for a
        run without one, e.g. at step 0); None when that step's internals were not kept."""
        kept = self._internals.get(int(step))
        return None if kept is None else list(kept)

    def _keep_internals(self, records: list) -> None:
        for rec in records:
            if getattr(rec, "internals", None) is not None:
                self._internals[rec.step] = rec.internals
        while len(self._internals) > self.internals_steps:
            del self._internals[next(iter(self._internals))]

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
                if event.step >= self.keep_from[event.run]:
                    self.divergences[event.run] = event
        for i, series in enumerate(self.runs):
            keep = alive[:, i] & (steps >= self.keep_from[i])
            if not keep.any():
                continue
            rows = np.stack(
                [steps[keep], points[keep, i, 0], points[keep, i, 1], loss[keep, i], lr[keep, i],
                 grad[keep, i]]
            )
            series.extend(rows)
        self._keep_internals(records)
        self.last_step = records[-1].step


NETWORK_FIELDS = ("step", "epoch", "wall", "loss", "lr", "grad_norm")
LAYER_STATS_KEPT = 4_096  # evaluations whose per-layer statistics NetworkHistory keeps
SEED_FIELDS = ("loss_std",)  # added to the step series of a race over several seeds


class LayerStatsRing:
    """The newest `LAYER_STATS_KEPT` evaluations' per-layer statistics: (step, epoch, wall)
    and each run's gradient norm and update/weight ratio per layer, in ring buffers allocated
    at the first evaluation. ``total`` counts every evaluation ever added, so a view that
    redraws less often than the race evaluates reads all it missed with `since`."""

    def __init__(self, capacity: int = LAYER_STATS_KEPT):
        self.capacity = capacity
        self.total = 0
        self._xs = self._grad = self._ratio = None

    def __len__(self) -> int:
        return min(self.total, self.capacity)

    def append(self, step: float, epoch: float, wall: float, grad: np.ndarray,
               ratio: np.ndarray) -> None:
        """Add one evaluation's (runs, layers) gradient norms and update ratios."""
        if self._grad is None or self._grad.shape[1:] != grad.shape:
            self._xs = np.empty((self.capacity, 3))
            self._grad = np.empty((self.capacity, *grad.shape))
            self._ratio = np.empty((self.capacity, *grad.shape))
            self.total = 0
        row = self.total % self.capacity
        self._xs[row] = (step, epoch, wall)
        self._grad[row] = grad
        self._ratio[row] = ratio
        self.total += 1

    def since(self, seen: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the (xs, grad, ratio) rows added after the first ``seen`` evaluations,
        oldest first (at most the `capacity` newest)."""
        count = min(max(self.total - seen, 0), len(self))
        if count == 0 or self._grad is None:
            return np.empty((0, 3)), np.empty((0, 0, 0)), np.empty((0, 0, 0))
        rows = np.arange(self.total - count, self.total) % self.capacity
        return self._xs[rows], self._grad[rows], self._ratio[rows]

    def in_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xs, grad, ratio) of every evaluation kept, oldest first: read-only views of the
        buffers (no copy) until the ring first wraps, then copies (`since`). For a view that
        redraws the kept evaluations at every new one."""
        if self.total > self.capacity:
            return self.since(0)
        if self._grad is None:
            return np.empty((0, 3)), np.empty((0, 0, 0)), np.empty((0, 0, 0))
        views = (self._xs[: self.total], self._grad[: self.total], self._ratio[: self.total])
        for view in views:
            view.flags.writeable = False
        return views


class NetworkHistory:
    """A network race's series: per-step training numbers and per-evaluation metrics.

    ``steps[i]`` has `NETWORK_FIELDS` (plus ``loss_std`` when the race has several seeds: then
    ``loss`` is the mean over the seeds); ``evals[i]`` has step, epoch, wall and one column per
    metric ("train_loss", "val_loss", "train_accuracy", "val_f1", ...), created on the first
    evaluation, followed by their standard deviations over the seeds ("train_loss_std",
    "val_accuracy_std", ...) when the race has several seeds. ``last_evaluation`` is the newest
    `Evaluation` (boundaries, confusion matrices, per-layer statistics) for the views that show a
    snapshot rather than a curve.
    """

    def __init__(self, labels: Sequence[str], capacity: int = DEFAULT_CAPACITY):
        self.labels = tuple(labels)
        self.capacity = capacity
        self.step_fields: tuple[str, ...] = NETWORK_FIELDS
        self.steps = [RunSeries(capacity, NETWORK_FIELDS) for _ in self.labels]
        self.evals: list[RunSeries] | None = None
        self.eval_fields: tuple[str, ...] = ()
        self.last_evaluation = None
        self.last_evaluation_step = -1
        # Every evaluation's per-layer statistics (the newest `LAYER_STATS_KEPT`).
        self.layer_stats = LayerStatsRing()
        # Recurrent networks: every evaluation's (step, ‖∂L/∂h_t‖ (R, T), spectral radius
        # (R, L_rec)) (core/engine/sequence_probe.py), the newest `LAYER_STATS_KEPT`, for the
        # sequence tab (app/network/sequence_tab.py).
        self.sequence_stats: list[tuple[float, np.ndarray, np.ndarray]] = []
        # Every evaluation's (step, per run per weight matrix the singular values of the step's
        # update) (core/engine/update_spectra.py), the newest `LAYER_STATS_KEPT`, for the
        # spectra tab (app/network/spectra_tab.py).
        self.update_spectra: list[tuple[float, tuple]] = []
        # Per run, the steps where norm clipping fired (NetworkRecord.clipped).
        self.clip_steps: list[list[float]] = [[] for _ in self.labels]
        self.last_step = -1
        self.divergences: dict[int, object] = {}
        self.stops: dict[int, object] = {}
        # Per run (step, sharpness, lr) rows, created by the first record that carries
        # sharpness (problem.sharpness_every > 0); None while the race measures none.
        self.sharpness: list[RunSeries] | None = None

    @property
    def has_seeds(self) -> bool:
        """True when the series carry standard deviations over several seeds."""
        return "loss_std" in self.step_fields

    def extend(self, records) -> None:
        records = list(records)
        if not records:
            return

        steps = np.array([r.step for r in records], dtype=np.float64)
        epochs = np.array([r.epoch for r in records], dtype=np.float64)
        walls = np.array([r.wall_time for r in records], dtype=np.float64)
        loss = np.stack([r.loss for r in records])
        lr = np.stack([r.lr for r in records])
        grad = np.stack([r.grad_norm for r in records])
        alive = np.stack([r.alive for r in records])
        columns = [steps, epochs, walls, loss, lr, grad]
        seeded = getattr(records[0], "loss_std", None) is not None
        if seeded and not self.has_seeds and all(len(s) == 0 for s in self.steps):
            self.step_fields = NETWORK_FIELDS + SEED_FIELDS
            self.steps = [RunSeries(self.capacity, self.step_fields) for _ in self.labels]
        if self.has_seeds:
            columns.append(np.stack([r.loss_std if r.loss_std is not None
                                     else np.zeros_like(r.loss) for r in records]))
        for i, series in enumerate(self.steps):
            keep = alive[:, i]
            if keep.any():
                series.extend(np.stack([c[keep] if c.ndim == 1 else c[keep, i] for c in columns]))
        for k, record in enumerate(records):
            for event in record.diverged:
                self.divergences[event.run] = event
            for event in record.stopped:
                self.stops[event.run] = event
            if record.evaluation is not None:
                self._add_evaluation(record, steps[k], epochs[k], walls[k], alive[k])
            if getattr(record, "sharpness", None) is not None:
                self._add_sharpness(record)
            if getattr(record, "clipped", None) is not None:
                for i in np.flatnonzero(record.clipped):
                    self.clip_steps[i].append(float(record.step))
        self.last_step = records[-1].step

    def _add_sharpness(self, record) -> None:
        if self.sharpness is None:
            self.sharpness = [RunSeries(DEFAULT_CAPACITY, SHARPNESS_FIELDS + EDGE_FIELDS,
                                        "sharpness") for _ in self.labels]
        alive = getattr(record, "alive", None)
        nan = np.full(len(self.labels), np.nan)
        preconditioned = getattr(record, "preconditioned_sharpness", None)
        preconditioned = nan if preconditioned is None else preconditioned
        edge = getattr(record, "edge", None)
        edge = nan if edge is None else edge
        for i, series in enumerate(self.sharpness):
            value = float(record.sharpness[i])
            # A live run's NaN is a measurement whose eigensolver did not converge: kept, so the
            # plot can leave a gap there and say so. A run not alive adds nothing.
            if np.isfinite(value) or (alive is not None and bool(alive[i])):
                series.extend(np.array([[record.step], [value], [float(record.lr[i])],
                                        [float(preconditioned[i])], [float(edge[i])]]))

    def sharpness_series(self, run_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run ``run_index``'s measured (steps, sharpness, lr) — empty arrays when none; plot
        sharpness against 2/lr, the edge of stability of gradient descent. NaN sharpness: that
        measurement did not converge."""
        if self.sharpness is None:
            empty = np.empty(0)
            return empty, empty, empty
        series = self.sharpness[run_index]
        return tuple(series.column(name) for name in SHARPNESS_FIELDS)

    def edge_series(self, run_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run ``run_index``'s (steps, preconditioned sharpness, edge of stability), aligned with
        `sharpness_series`: NaN preconditioned for a run that is not Adam/RMSprop (and before its
        first update), NaN edge where its optimizer has no known edge."""
        if self.sharpness is None:
            empty = np.empty(0)
            return empty, empty, empty
        series = self.sharpness[run_index]
        return tuple(series.column(name) for name in ("step",) + EDGE_FIELDS)

    def last_sharpness(self, run_index: int) -> float:
        """Run ``run_index``'s newest sharpness, NaN when it has none or when the newest
        measurement did not converge (an older converged value would be a stale number)."""
        if self.sharpness is None or len(self.sharpness[run_index]) == 0:
            return float("nan")
        return self.sharpness[run_index].last("sharpness")

    def _add_evaluation(self, record, step, epoch, wall, alive) -> None:
        ev = record.evaluation
        columns = {f"train_{k}": v for k, v in ev.train.items()}
        columns.update({f"val_{k}": v for k, v in ev.val.items()})
        columns.update({f"train_{k}_std": v for k, v in getattr(ev, "train_std", {}).items()})
        columns.update({f"val_{k}_std": v for k, v in getattr(ev, "val_std", {}).items()})
        if self.evals is None:
            self.eval_fields = ("step", "epoch", "wall", *columns)
            self.evals = [RunSeries(DEFAULT_CAPACITY, self.eval_fields, peak_field=self.eval_fields[3])
                          for _ in self.labels]
        for i, series in enumerate(self.evals):
            if alive[i]:
                row = [step, epoch, wall] + [float(columns[f][i]) for f in self.eval_fields[3:]]
                series.extend(np.array(row, dtype=np.float64)[:, None])
        self.last_evaluation = ev
        self.last_evaluation_step = record.step
        if getattr(ev, "update_spectra", None) is not None:
            self.update_spectra.append((float(record.step), ev.update_spectra))
            del self.update_spectra[:-LAYER_STATS_KEPT]
        if getattr(ev, "hidden_grad", None) is not None:
            self.sequence_stats.append((float(record.step), ev.hidden_grad, ev.recurrent_radius))
            del self.sequence_stats[:-LAYER_STATS_KEPT]
        if ev.layer_grad_norm is not None:
            self.layer_stats.append(float(record.step), epoch, wall, ev.layer_grad_norm,
                                    ev.update_ratio)
