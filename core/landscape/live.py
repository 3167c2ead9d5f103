"""Loss surfaces of a *live* network race: weight snapshots and cancellable surface generators.

The GUI's Surface view needs the weights of a race that trains on another thread. `WeightTap`
wraps ``NetworkRace.records`` on the race's own thread and keeps, per run, the flat weights every
``every`` steps (step 0 and the last step always), exactly as `core.landscape.race_surface` keeps
them for ``main.py surface``. `WeightTap.snapshot` hands any other thread a consistent copy of those
trajectories plus every run's *current* weights: training happens only while the tap holds its
lock, so a reader either waits for the step in progress to end or (paused, finished race) reads
at once; a waiting reader is let in before the next step starts, so a fast race cannot starve it.

The work itself is plain generators over such a `RaceWeights` snapshot, each checking a
``threading.Event`` between chunks (the app runs them in a worker thread; tests iterate them):

- `surface_updates`: directions, every run's projected path, then the grid coarse to fine
  (`core.landscape.surfaces.surface_progressive`): every update holds the full grid, so the picture appears
  at once and is refined in place; the last update adds each path point's true loss and the loss
  of the surface at its projection.
- `slice_updates`: 1-D slices — linear interpolation (Goodfellow et al. 2015) from the initial
  weights to each run's weights, or from run A to run B, or a random filter-normalised direction.
- `sharpness_updates`: the top Hessian eigenvalue along each run's kept trajectory, on demand.
- `TrainingFollower`: "Follow training" — one coarse random-direction surface per snapshot,
  reusing one `core.landscape.surfaces.SurfaceFollower` (engine and directions) from call to call.

`race_surface` turns a finished surface into `core.landscape.race_surface.RaceSurface`, so the
GUI's .npz export writes the same keys as ``main.py surface``.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from core.errors import LabError
from core.landscape import curvature, directions, params
from core.landscape import surfaces as landscape
from core.landscape.race_surface import (
    AUTO_SPAN_MARGIN,
    TRAJECTORY_POINTS,
    RaceSurface,
    check_grid,
)

# Plane directions: the CLI's three, plus the two-point planes (init → final of one run, run A →
# run B), which contain both points: α = −1 is the first point, α = +1 the second.
DIRECTIONS = ("random", "pca", "hessian", "init_final", "runs")
SLICE_KINDS = ("init_final", "runs", "random")
TWO_POINT_SPAN = 1.5  # α over [−1.5, 1.5]: both points and half their distance beyond
DEFAULT_SLICE_POINTS = 41
SHARPNESS_POINTS = 12  # snapshots per run measured by `sharpness_updates`
SNAPSHOT_WAIT_S = 1.0  # longest the race waits for a reader it let in
FOLLOW_GRID = 21  # points a side of a followed surface: coarse on purpose (cheap)


def coarse_strides(grid: int) -> tuple[int, ...]:
    """Coarse-to-fine strides: the first level has ~13 points a side whatever the grid size."""
    strides = [1]
    while (grid - 1) // (strides[-1] * 2) >= 12:
        strides.append(strides[-1] * 2)
    return tuple(reversed(strides))


# --------------------------------------------------------------------------------------------
# Weights of a race


@dataclass
class RaceWeights:
    """A consistent copy of a race's weights: everything a surface computation reads.

    ``model`` is a private copy of the race's architecture (its weights are overwritten freely);
    ``paths[i]`` is run i's (T, P) stack of finite snapshots with their ``steps[i]`` and the
    learning rate each one was taken at, ``lrs[i]``; the last row is the run's current weights.
    """

    labels: tuple[str, ...]
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    criterion: object
    steps: list[np.ndarray]
    paths: list[torch.Tensor]
    lrs: list[np.ndarray]
    step: int  # the race's latest record
    seed: int = 0

    def current(self, run: int) -> torch.Tensor | None:
        """Run ``run``'s latest finite weights (None when it never had finite ones)."""
        return self.paths[run][-1] if len(self.paths[run]) else None

    def initial(self, run: int) -> torch.Tensor | None:
        return self.paths[run][0] if len(self.paths[run]) else None

    def model_at(self, weights: torch.Tensor) -> nn.Module:
        params.unflatten_into(self.model, weights)
        return self.model


class WeightTap:
    """Keeps a network race's weights as it trains (on the race's thread), for other threads.

    ``every`` None keeps ~`TRAJECTORY_POINTS` snapshots a run (steps/100), as ``main.py surface``.
    """

    def __init__(self, every: int | None = None):
        if every is not None and every < 1:
            raise LabError("every", f"must be a whole number >= 1, got {every}")
        self.every = every
        self._lock = threading.Lock()  # held while the race trains a step
        self._wanted = threading.Event()  # a reader is waiting for the lock
        self._served = threading.Event()
        self._race = None
        self._template: nn.Module | None = None
        self._steps: list[list[int]] = []
        self._weights: list[list[torch.Tensor]] = []
        self._lrs: list[list[float]] = []
        self._last_lr: np.ndarray | None = None
        self._step = -1

    @property
    def started(self) -> bool:
        return self._race is not None

    @property
    def step(self) -> int:
        """The race's latest record (−1 before the first)."""
        return self._step

    def records(self, race, stop: threading.Event | None = None):
        """``race.records(stop)``, keeping snapshots. Runs on the race's thread."""
        with self._lock:
            self._race = race
            # A private copy for the readers' evaluations: they must never touch the models
            # the race trains (eval mode, loaded weights).
            self._template = copy.deepcopy(race.models[0])
            every = self.every or max(1, race.lab.steps // TRAJECTORY_POINTS)
            self.every = every
            self._steps = [[0] for _ in race.models]
            self._weights = [[params.flatten(m)] for m in race.models]
            self._lrs = [[math.nan] for _ in race.models]
        inner = race.records(stop)
        total = race.lab.steps
        while True:
            if self._wanted.is_set():
                self._served.wait(SNAPSHOT_WAIT_S)  # let the waiting reader in first
            with self._lock:
                try:
                    record = next(inner)
                except StopIteration:
                    return
                self._step = record.step
                self._last_lr = np.asarray(record.lr, dtype=np.float64)
                if record.step == 0:
                    for i, lr in enumerate(self._last_lr):
                        self._lrs[i][0] = float(lr)
                # After the record of step t the live runs hold θ_(t+1) (landscape_cli's rule).
                after = record.step + 1
                if record.step < total and (after % every == 0 or after == total):
                    for i in np.flatnonzero(race.alive):
                        self._steps[i].append(after)
                        self._weights[i].append(params.flatten(race.models[i]))
                        self._lrs[i].append(float(self._last_lr[i]))
            yield record

    def _current_step(self, i: int) -> int:
        race = self._race
        event = race.stopped[i] or race.diverged[i]
        if event is not None:
            return int(event.step)
        return min(self._step + 1, race.lab.steps) if self._step >= 0 else 0

    def snapshot(self) -> RaceWeights | None:
        """A consistent copy of every run's kept trajectory plus its current weights.

        Any thread; waits at most for one training step. None before the race has started.
        """
        if self._race is None:
            return None
        self._served.clear()
        self._wanted.set()
        try:
            with self._lock:
                self._wanted.clear()
                race = self._race
                steps, paths, lrs = [], [], []
                for i, model in enumerate(race.models):
                    kept = list(self._steps[i])
                    stack = list(self._weights[i])
                    rates = list(self._lrs[i])
                    now = self._current_step(i)
                    if kept[-1] != now:
                        kept.append(now)
                        stack.append(params.flatten(model))
                        rates.append(float(self._last_lr[i]) if self._last_lr is not None
                                     else math.nan)
                    matrix = torch.stack(stack)
                    finite = torch.isfinite(matrix).all(dim=1)
                    keep = finite.cpu().numpy()
                    steps.append(np.asarray(kept, dtype=np.int64)[keep])
                    paths.append(matrix[finite])
                    lrs.append(np.asarray(rates, dtype=np.float64)[keep])
                return RaceWeights(
                    labels=tuple(race.labels), model=copy.deepcopy(self._template),
                    x=race.x_train, y=race.y_train, criterion=race.criterion,
                    steps=steps, paths=paths, lrs=lrs, step=max(self._step, 0),
                    seed=int(race.lab.seed),
                )
        finally:
            self._served.set()


# --------------------------------------------------------------------------------------------
# The 2-D surface


@dataclass(frozen=True)
class SurfaceRequest:
    """What the user asked for. ``run_a`` is the centre (random / pca / hessian), the run whose
    init → final plane it is (init_final), or run A (runs); ``span`` None picks one."""

    directions: str = "random"
    grid: int = 41
    span: float | None = None
    include_bias_bn: bool = False
    run_a: int = 0
    run_b: int = 1

    def validated(self, run_count: int) -> SurfaceRequest:
        if self.directions not in DIRECTIONS:
            raise LabError("directions", f"must be one of {', '.join(DIRECTIONS)}, "
                                         f"got {self.directions!r}")
        check_grid(self.grid, "grid")
        if self.span is not None and not (math.isfinite(self.span) and self.span > 0):
            raise LabError("span", f"must be a positive number, got {self.span}")
        for name, run in (("run_a", self.run_a), ("run_b", self.run_b)):
            if not 0 <= run < run_count:
                raise LabError(name, f"must be a run index in [0, {run_count - 1}], got {run}")
        if self.directions == "runs" and self.run_a == self.run_b:
            raise LabError("run_b", "must be a different run from run A")
        return self


@dataclass
class SurfaceUpdate:
    """One step of a surface computation: the full (G, G) grid so far, and the paths.

    ``loss[j, i]`` is the loss at ``center + alphas[i]·d1 + betas[j]·d2``; points not computed
    yet show their nearest computed neighbour. Each path is a dict of ``step``, ``alpha``,
    ``beta``, ``off_plane`` and, once ``done``, ``true_loss`` and ``surface_loss``.
    """

    request: SurfaceRequest
    level: int
    levels: int
    progress: float  # 0 … 1: share of the work done
    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    paths: list[dict[str, np.ndarray]]
    labels: tuple[str, ...]
    span: float
    race_step: int
    center_run: int
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    center_loss: float = math.nan
    done: bool = False
    axis_names: tuple[str, str] = ("α", "β")
    # A `TrainingFollower` surface: coarse, random directions, no true / surface path losses.
    followed: bool = False


def _two_point_plane(source: RaceWeights, a: torch.Tensor, b: torch.Tensor, request):
    """Centre (a+b)/2, d1 = (b−a)/2 (so α = ±1 are the points), d2 a filter-normalised random
    direction made orthogonal to d1 and as long, so both axes have the same scale."""
    center = (a + b) / 2
    d1 = (b - a) / 2
    model = source.model_at(center)
    raw, _ = directions.random_directions(model, torch.Generator().manual_seed(source.seed),
                                         request.include_bias_bn)
    norm = float(d1.norm())
    if norm > 0:
        raw = raw - (raw @ d1) / (norm * norm) * d1
        length = float(raw.norm())
        d2 = raw * (norm / length) if length > 0 else raw
    else:
        d2 = raw
    return center, d1, d2


def _plane(source: RaceWeights, request: SurfaceRequest):
    """(center, d1, d2, extra, default span, axis names) of the requested plane."""
    run = request.run_a
    center = source.current(run)
    if center is None:
        raise LabError("run_a", f"{source.labels[run]!r} has no finite weights to look at")
    extra: dict[str, np.ndarray] = {}
    names = ("α", "β")
    kind = request.directions
    generator = torch.Generator().manual_seed(source.seed)
    if kind == "random":
        model = source.model_at(center)
        d1, d2 = directions.random_directions(model, generator, request.include_bias_bn)
        return center, d1, d2, extra, 1.0, names
    if kind == "pca":
        d1, d2, ratio = directions.pca_directions([p for p in source.paths if len(p)],
                                                 center=center)
        extra["explained_variance"] = ratio
        return center, d1, d2, extra, None, ("PC1", "PC2")
    if kind == "hessian":
        model = source.model_at(center)
        loss_fn = curvature.model_loss(source.x, source.y, source.criterion)
        # NaN eigenvalues: not converged; the plane lies along the best approximations and the
        # view says so (app.surface.info_line).
        d1, d2, values = curvature.hessian_directions(model, loss_fn, generator=generator)
        extra["eigenvalues"] = values
        if not np.all(np.isfinite(values)):
            return center, d1, d2, extra, None, ("≈ v₁ (not converged)", "≈ v₂")
        return center, d1, d2, extra, None, ("v₁ (top Hessian eigenvector)", "v₂")
    if kind == "init_final":
        start = source.initial(run)
        center, d1, d2 = _two_point_plane(source, start, center, request)
        return center, d1, d2, extra, TWO_POINT_SPAN, ("α (−1: initial, +1: current)", "β")
    other = source.current(request.run_b)
    if other is None:
        raise LabError("run_b", f"{source.labels[request.run_b]!r} has no finite weights")
    center, d1, d2 = _two_point_plane(source, center, other, request)
    return center, d1, d2, extra, TWO_POINT_SPAN, (
        f"α (−1: {source.labels[run]}, +1: {source.labels[request.run_b]})", "β")


def _auto_span(projections, center: torch.Tensor) -> float:
    """As ``main.py surface``: 1.25 × the farthest projected point, never zero."""
    reach = max((float(np.max(np.abs(np.concatenate([a, b]))))
                 for a, b, _ in projections if len(a)), default=0.0)
    return max(AUTO_SPAN_MARGIN * reach, 1e-3 * max(1.0, float(center.norm())))


def surface_updates(source: RaceWeights, request: SurfaceRequest,
                    stop: threading.Event | None = None) -> Iterator[SurfaceUpdate]:
    """Compute the requested surface coarse to fine; see the module docstring.

    Yields one update per level (the first within one coarse pass), then a last ``done`` update
    with the paths' true and surface losses. Ends early, without a ``done`` update, once ``stop``
    is set.
    """
    request = request.validated(len(source.labels))
    center, d1, d2, extra, span, names = _plane(source, request)
    projections = [landscape.project_trajectory(p, center, d1, d2) if len(p)
                   else (np.zeros(0), np.zeros(0), np.zeros(0)) for p in source.paths]
    if request.span is not None:
        span = request.span
    elif span is None:
        span = _auto_span(projections, center)
    paths = [{"step": steps, "alpha": a, "beta": b, "off_plane": off}
             for steps, (a, b, off) in zip(source.steps, projections)]
    strides = coarse_strides(request.grid)
    grid = request.grid
    sizes = [len(np.union1d(np.arange(0, grid, s), [grid - 1])) ** 2 for s in strides]
    # The trajectories' exact losses count as one more coarse level of work.
    work = sizes[-1] + sizes[0]
    x, y, criterion = source.x, source.y, source.criterion
    model = source.model_at(center)

    def update(level, alphas, betas, z, progress, done=False, **more) -> SurfaceUpdate:
        return SurfaceUpdate(
            request=request, level=level, levels=len(strides), progress=progress,
            alphas=alphas, betas=betas, loss=z, paths=paths, labels=source.labels,
            span=float(span), race_step=source.step, center_run=request.run_a, extra=extra,
            done=done, axis_names=names, **more,
        )

    last = None
    for level, alphas, betas, z in landscape.surface_progressive(
            model, center, d1, d2, x, y, criterion, grid=grid, span=span, strides=strides,
            stop=stop):
        last = (alphas, betas, z)
        yield update(level, alphas, betas, z, sizes[level] / work)
    if last is None or (stop is not None and stop.is_set()):
        return
    finished = []
    for path, stack in zip(paths, source.paths):
        if stop is not None and stop.is_set():
            return
        if len(stack):
            true_loss, surface_loss = landscape.true_vs_surface_loss(
                model, stack, center, d1, d2, x, y, criterion)
        else:
            true_loss = surface_loss = np.zeros(0)
        finished.append({**path, "true_loss": true_loss, "surface_loss": surface_loss})
    paths = finished
    center_loss = float(landscape.evaluate_points(model, center, d1, d2, np.zeros((1, 2)), x, y,
                                                  criterion)[0])
    yield update(len(strides) - 1, *last, 1.0, done=True, center_loss=center_loss)


class _FollowedModel:
    """What `core.landscape.surfaces.SurfaceFollower` reads from a race: here one private model copy."""

    def __init__(self, model: nn.Module, source: RaceWeights):
        self.models = [model]
        self.x_train, self.y_train, self.criterion = source.x, source.y, source.criterion


class TrainingFollower:
    """Cheap surfaces that follow a live race (the GUI's "Follow training").

    Each `updates` call takes one `RaceWeights` snapshot and yields ONE finished
    `SurfaceUpdate` (``followed=True``): a ``grid``×``grid`` surface (21×21 by default) around
    run ``run``'s current weights, along random filter-normalised directions. What makes it cheap
    is reuse, as in ``BENCH surface-follow``: the first call builds a
    `core.landscape.surfaces.SurfaceFollower` on a private copy of the model — its batched engine (data
    layout, tiles) and one Gaussian draw, filter-normalised again against every new centre, so
    consecutive pictures are comparable — and every later call only loads the new weights into
    that copy. No coarse-to-fine levels (the grid is already coarse) and no exact losses of the
    path points (a full surface computation adds them). The loss is the training loss on the
    first `core.landscape.surfaces.FOLLOW_SAMPLES` samples.

    One follower serves one race and one setting; it is not thread-safe: a caller runs at most
    one `updates` at a time (the GUI skips a follow-up while the previous one still runs).
    """

    def __init__(self, run: int = 0, span: float | None = None, include_bias_bn: bool = False,
                 grid: int = FOLLOW_GRID):
        check_grid(grid, "grid")
        self.request = SurfaceRequest("random", grid, span, include_bias_bn, run, run)
        self._follower: landscape.SurfaceFollower | None = None
        self._model: nn.Module | None = None
        self.computed = 0  # surfaces computed so far

    @property
    def settings(self) -> tuple:
        """What the follower was built for: a change means a new follower."""
        r = self.request
        return (r.grid, r.span, r.include_bias_bn, r.run_a)

    def updates(self, source: RaceWeights,
                stop: threading.Event | None = None) -> Iterator[SurfaceUpdate]:
        request = self.request.validated(len(source.labels))
        run = request.run_a
        center = source.current(run)
        if center is None:
            raise LabError("run_a", f"{source.labels[run]!r} has no finite weights to look at")
        if stop is not None and stop.is_set():
            return
        span = 1.0 if request.span is None else request.span
        if self._follower is None:
            self._model = source.model  # the snapshot's private copy: kept, reloaded each time
            self._follower = landscape.SurfaceFollower(
                _FollowedModel(self._model, source), every=1, grid=request.grid, span=span,
                include_bias_bn=request.include_bias_bn, seed=source.seed)
        params.unflatten_into(self._model, center)
        surface = self._follower.maybe_update(source.step)
        self.computed += 1
        paths = []
        for steps, stack in zip(source.steps, source.paths):
            a, b, off = (landscape.project_trajectory(stack, surface.center, surface.d1,
                                                      surface.d2) if len(stack)
                         else (np.zeros(0), np.zeros(0), np.zeros(0)))
            paths.append({"step": steps, "alpha": a, "beta": b, "off_plane": off})
        middle_a = np.flatnonzero(surface.alphas == 0)
        middle_b = np.flatnonzero(surface.betas == 0)
        center_loss = (float(surface.losses[middle_b[0], middle_a[0]])
                       if len(middle_a) and len(middle_b) else math.nan)
        yield SurfaceUpdate(
            request=request, level=0, levels=1, progress=1.0, alphas=surface.alphas,
            betas=surface.betas, loss=surface.losses, paths=paths, labels=source.labels,
            span=float(span), race_step=source.step, center_run=run, center_loss=center_loss,
            done=True, followed=True,
        )


def race_surface(update: SurfaceUpdate, every: int = 1,
                 sharpness: Sequence[float] | None = None,
                 not_converged: Sequence[bool] | None = None) -> RaceSurface:
    """The finished surface as ``main.py surface`` writes it (`write_surface_npz`);
    ``not_converged`` marks the runs whose sharpness solve did not converge (NaN there)."""
    count = len(update.labels)
    sharp = np.full(count, np.nan) if sharpness is None else np.asarray(sharpness, float)
    return RaceSurface(
        directions=update.request.directions, alphas=update.alphas, betas=update.betas,
        loss=update.loss, span=update.span, steps=update.race_step, every=int(every),
        center_run=update.center_run, center_loss=update.center_loss, labels=update.labels,
        sharpness=sharp, paths=update.paths, extra=dict(update.extra),
        sharpness_not_converged=None if not_converged is None else np.asarray(not_converged,
                                                                               dtype=bool),
    )


# --------------------------------------------------------------------------------------------
# 1-D slices and sharpness


@dataclass
class SliceUpdate:
    """One curve of a 1-D slice: loss at ``ts`` (interpolation: t = 0 is the first point, 1 the
    second; random: α along the direction, 0 is the run's weights)."""

    kind: str
    run: int  # the run the curve belongs to (its colour)
    label: str
    ts: np.ndarray
    losses: np.ndarray
    progress: float


def slice_updates(source: RaceWeights, kind: str = "init_final", run_a: int = 0, run_b: int = 1,
                  count: int = DEFAULT_SLICE_POINTS, span: float = 1.0,
                  include_bias_bn: bool = False,
                  stop: threading.Event | None = None) -> Iterator[SliceUpdate]:
    """1-D slices, one curve per run (``init_final``, ``random``) or one (``runs``: A → B)."""
    if kind not in SLICE_KINDS:
        raise LabError("slice", f"must be one of {', '.join(SLICE_KINDS)}, got {kind!r}")
    if not 3 <= count <= 1001:
        raise LabError("points", f"must be a whole number in [3, 1001], got {count}")
    x, y, criterion = source.x, source.y, source.criterion
    labels = source.labels
    if kind == "runs":
        a, b = source.current(run_a), source.current(run_b)
        if a is None or b is None or run_a == run_b:
            raise LabError("run_b", "needs two different runs with finite weights")
        ts, losses = landscape.interpolate_1d(source.model, a, b, np.linspace(-0.5, 1.5, count),
                                              x, y, criterion)
        yield SliceUpdate(kind, run_a, f"{labels[run_a]} → {labels[run_b]}", ts, losses, 1.0)
        return
    runs = [i for i in range(len(labels)) if source.current(i) is not None]
    for n, i in enumerate(runs):
        if stop is not None and stop.is_set():
            return
        if kind == "init_final":
            ts, losses = landscape.interpolate_1d(
                source.model, source.initial(i), source.current(i),
                np.linspace(-0.5, 1.5, count), x, y, criterion)
        else:
            ts, losses, _ = landscape.random_slice_1d(
                source.model, source.current(i), x, y, criterion,
                torch.Generator().manual_seed(source.seed), span, count, include_bias_bn)
        yield SliceUpdate(kind, i, labels[i], ts, losses, (n + 1) / len(runs))


@dataclass
class SharpnessUpdate:
    """Run ``run``'s top Hessian eigenvalue at some of its kept steps, and the lr at each.

    ``sharpness`` is NaN where the eigensolver did not converge (the weights of a kept step are
    always finite), so NaN here means "not converged", never "not measured"."""

    run: int
    steps: np.ndarray
    sharpness: np.ndarray
    lr: np.ndarray
    progress: float


def sharpness_updates(source: RaceWeights, points: int = SHARPNESS_POINTS,
                      max_products: int = curvature.SHARPNESS_MAX_PRODUCTS,
                      stop: threading.Event | None = None) -> Iterator[SharpnessUpdate]:
    """λ_max along each run's trajectory (≤ ``points`` evenly spaced snapshots, the last one
    included), by Lanczos on Hessian-vector products (`core.landscape.curvature.sharpness`; NaN where it
    did not converge within ``max_products``). One update per measured point."""
    loss_fn = curvature.model_loss(source.x, source.y, source.criterion)
    plans = []
    for i, steps in enumerate(source.steps):
        picks = np.unique(np.linspace(0, len(steps) - 1, min(points, len(steps))).round()
                          .astype(int)) if len(steps) else np.zeros(0, dtype=int)
        plans.append(picks)
    total = max(1, sum(len(p) for p in plans))
    done = 0
    for i, picks in enumerate(plans):
        values = []
        for k in picks:
            if stop is not None and stop.is_set():
                return
            model = source.model_at(source.paths[i][k])
            values.append(curvature.sharpness(model, loss_fn, max_products,
                                              torch.Generator().manual_seed(source.seed)))
            done += 1
            yield SharpnessUpdate(i, source.steps[i][picks[:len(values)]],
                                  np.asarray(values), source.lrs[i][picks[:len(values)]],
                                  done / total)
