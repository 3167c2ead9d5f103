"""Loss surfaces of real networks: the batched surface computation, 1-D slices, projections of
trajectories, and the engine choice.

Everything works on *flat parameter vectors* (core/landscape/params.py). A *plane* is a centre θ
and two directions d1, d2 (core/landscape/directions.py: random filter-normalised, PCA of the
trajectories, two points; core/landscape/curvature.py: top Hessian eigenvectors); the surface is
``L(α, β) = loss(θ + α·d1 + β·d2)`` on a grid.

Surfaces are evaluated in *batched* passes, many weight vectors at once, never one forward pass per
point (what the loss-landscape scripts do, and what `surface_point_by_point` does as the
reference). Three engines, picked per model (`_engine`; the torch ones live in
core/landscape/engines.py):

- Small float32 MLPs on the CPU: a fused C kernel, one pass per block of samples with every
  activation in L1 (`core.landscape.fused`; compiled on first use, see `core.landscape.native`). Where it
  does not apply or cannot be built, the two torch engines below give the same numbers.
- MLPs (``nn.Sequential`` of Linear, element-wise activations, Dropout, Flatten): one ``bmm``
  per layer for the whole chunk of points, activations laid out feature-major ``(points,
  features, samples)`` in two reused buffers, the samples cut into tiles of ≤ 256 so a chunk
  stays in the core's cache. On a plane the first layer is linear in the weights, so
  ``W(α, β)·x = W_θ·x + α·D1·x + β·D2·x`` is one K = 3 product with three maps precomputed
  once; a bias and the ReLU after it are one fused pass; with two-class cross entropy the last
  layer computes only the logit margin z1 − z0 (CE = softplus(±margin)), the samples sorted by
  class so the sign folds into that layer's weights.
- Anything else (conv, batch norm, ...): ``torch.func.functional_call`` + ``torch.vmap`` over
  stacked parameter dicts.

The torch engines run on the model's device; all run in eval mode (dropout off, batch norm uses
its running statistics), without autograd. Memory is bounded by evaluating *chunks* of points: see
`default_chunk` for the bound. Losses are computed in float32 like the model and returned as
float64 numpy arrays; a non-finite loss (a far point of an exploding regression) is returned as it
is (``nan``/``inf``) for the caller to mask. The surface functions take the data ``x, y`` and a
`Criterion` ``(output, target) -> scalar mean loss``, e.g. ``F.cross_entropy``.

Following the training: `SurfaceFollower` recomputes a coarse surface around a run's current
weights every N steps of a `core.engine.network_race.NetworkRace`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from core.landscape.directions import default_generator, filter_normalize, two_point_direction
from core.landscape.engines import Criterion, MlpEngine, ParamLayout, VmapEngine
from core.landscape.fused import fused_mlp_engine
from core.landscape.params import device_dtype, eval_mode, flatten, unflatten_into

# Per-chunk memory budgets (bytes of the widest activation of a whole chunk). The MLP engine's
# chunk is sized to stay in the CPU's L3 cache (measured: 32-64 points of a 2-16-16-2 MLP on 512
# samples are fastest; smaller chunks pay more per-call overhead, larger ones stream from memory);
# vmap has more per-call overhead, so it gets bigger chunks.
MLP_CHUNK_BYTES = 1 << 20
VMAP_CHUNK_BYTES = 8 << 20
MAX_CHUNK = 256
YIELD_POINTS = 512  # points per yield of the chunked evaluation (stop is checked per chunk)
PROGRESSIVE_STRIDES = (4, 2, 1)
DEFAULT_INTERPOLATION = (-0.5, 1.5, 41)  # Goodfellow et al. 2015 plot α from −0.5 to 1.5


def _engine(model: nn.Module, x: Tensor, y: Tensor, loss_fn: Criterion):
    """The fastest engine that can evaluate ``model`` (built in eval mode, without autograd)."""
    layout = ParamLayout.of(model)
    device, dtype = device_dtype(model)
    x = torch.as_tensor(x).to(device)
    x = x.to(dtype) if x.is_floating_point() else x
    y = torch.as_tensor(y).to(device)
    with eval_mode(model), torch.no_grad():
        # The fused native kernel where it applies (small float32 MLPs on the CPU, a C
        # compiler present).
        engine = fused_mlp_engine(model, x, y, loss_fn, layout)
        if engine is None:
            engine = MlpEngine.build(model, x, y, loss_fn, layout)
        return engine if engine is not None else VmapEngine(model, x, y, loss_fn, layout)


def default_chunk(engine) -> int:
    """Points per batched pass, so that peak extra memory stays bounded.

    A chunk of k points holds k weight vectors (k·P floats) and, at most, two activations of the
    widest layer for all samples (MLP engine, 2·k·width·n floats) or about three (vmap engine).
    k is the largest number (≤ 256) keeping the widest activation of the chunk within 2 MiB (MLP:
    cache-sized, fastest) or 8 MiB (vmap), and at least 1: peak extra memory ≈ 3 × that budget +
    k·P·4 bytes — about 6–24 MiB, plus a single point's needs when one point alone is larger.
    """
    budget = MLP_CHUNK_BYTES if isinstance(engine, MlpEngine) else VMAP_CHUNK_BYTES
    return int(max(1, min(MAX_CHUNK, budget // max(1, engine.bytes_per_point()))))


def _chunk_losses(
    engine,
    count: int,
    losses_of: Callable[[int, int], Tensor],
    chunk: int | None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(start, losses) per group of chunks of ``count`` points; ``losses_of(a, b)`` evaluates
    points a..b−1 in one batched pass. Checks ``stop`` before each chunk.

    Chunks are grouped up to `YIELD_POINTS` per yield: entering eval/inference mode and
    converting to numpy once per chunk measured ~10 % of a small MLP's surface.
    """
    size = chunk if chunk is not None else default_chunk(engine)
    if size < 1:
        raise ValueError(f"chunk must be at least 1, got {size}")
    group = max(size, YIELD_POINTS // size * size)
    for group_start in range(0, count, group):
        group_end = min(count, group_start + group)
        parts = []
        # Eval and inference mode per group, never across a yield: while this generator is
        # suspended the caller (maybe training this very model) must see its own modes.
        with eval_mode(engine.model), torch.inference_mode():
            for start in range(group_start, group_end, size):
                if stop is not None and stop.is_set():
                    break
                parts.append(losses_of(start, min(group_end, start + size)))
            if parts:
                losses = torch.cat(parts).double().cpu().numpy()
        if parts:
            yield group_start, losses
        if len(parts) * size < group_end - group_start:
            return  # stopped


def _as_vector(model: nn.Module, vector: Tensor) -> Tensor:
    device, dtype = device_dtype(model)
    return torch.as_tensor(vector).detach().to(device=device, dtype=dtype).reshape(-1)


def _plane_losses(model, center, d1, d2, coords: np.ndarray, x, y, loss_fn, chunk=None,
                  stop=None, engine=None) -> Iterator[tuple[int, np.ndarray]]:
    device, dtype = device_dtype(model)
    center, d1, d2 = (_as_vector(model, v) for v in (center, d1, d2))
    engine = engine or _engine(model, x, y, loss_fn)
    with torch.no_grad():
        engine.prepare_plane(center, d1, d2)
    coord_t = torch.as_tensor(coords, dtype=dtype, device=device).reshape(-1, 2)
    yield from _chunk_losses(engine, len(coord_t), lambda a, b: engine.plane_losses(coord_t[a:b]),
                             chunk, stop)


def evaluate_points(model: nn.Module, center: Tensor, d1: Tensor, d2: Tensor,
                    coords: np.ndarray, x: Tensor, y: Tensor, loss_fn: Criterion,
                    chunk: int | None = None) -> np.ndarray:
    """Loss at θ + α·d1 + β·d2 for each row (α, β) of ``coords`` (N, 2), batched."""
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    out = np.empty(len(coords))
    for start, losses in _plane_losses(model, center, d1, d2, coords, x, y, loss_fn, chunk):
        out[start:start + len(losses)] = losses
    return out


def evaluate_weights(model: nn.Module, weights: Tensor, x: Tensor, y: Tensor,
                     loss_fn: Criterion, chunk: int | None = None) -> np.ndarray:
    """Loss of each of the (N, P) weight vectors (a trajectory, say), batched."""
    device, dtype = device_dtype(model)
    weights = torch.as_tensor(weights).detach().to(device=device, dtype=dtype)
    weights = weights.reshape(len(weights), -1)
    out = np.empty(len(weights))
    engine = _engine(model, x, y, loss_fn)
    for start, losses in _chunk_losses(engine, len(weights),
                                       lambda a, b: engine.losses(weights[a:b]), chunk):
        out[start:start + len(losses)] = losses
    return out


def _grid_coords(alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    grid_b, grid_a = np.meshgrid(betas, alphas, indexing="ij")  # row j = β_j, column i = α_i
    return np.column_stack([grid_a.ravel(), grid_b.ravel()])


def evaluate_surface(model: nn.Module, center: Tensor, d1: Tensor, d2: Tensor,
                     alphas: Sequence[float], betas: Sequence[float], x: Tensor, y: Tensor,
                     loss_fn: Criterion, chunk: int | None = None) -> np.ndarray:
    """The loss grid Z[j, i] = loss(center + alphas[i]·d1 + betas[j]·d2), shape (len(betas),
    len(alphas)) — rows are β, as an image is drawn. Batched and chunked (`default_chunk`)."""
    alphas = np.asarray(alphas, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    losses = evaluate_points(model, center, d1, d2, _grid_coords(alphas, betas), x, y, loss_fn,
                             chunk)
    return losses.reshape(len(betas), len(alphas))


def surface_point_by_point(model: nn.Module, center: Tensor, d1: Tensor, d2: Tensor,
                           alphas: Sequence[float], betas: Sequence[float], x: Tensor, y: Tensor,
                           loss_fn: Criterion) -> np.ndarray:
    """The reference: what the loss-landscape scripts do — for each grid point, load the weights
    into the model, run a forward pass, read the loss. Slow; for tests and benchmarks. The model's
    weights are restored afterwards."""
    center, d1, d2 = (_as_vector(model, v) for v in (center, d1, d2))
    saved = flatten(model)
    out = np.empty((len(betas), len(alphas)))
    try:
        with eval_mode(model), torch.no_grad():
            for j, beta in enumerate(betas):
                for i, alpha in enumerate(alphas):
                    unflatten_into(model, center + float(alpha) * d1 + float(beta) * d2)
                    out[j, i] = float(loss_fn(model(x), y))
    finally:
        unflatten_into(model, saved)
    return out


def grid_axes(grid: int, span: float | tuple[float, float] = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """α and β axes of ``grid`` points each over [−span, span] (or per-axis half-widths)."""
    span_a, span_b = (span, span) if np.isscalar(span) else span
    return (np.linspace(-span_a, span_a, grid), np.linspace(-span_b, span_b, grid))


def _level_indices(grid: int, stride: int) -> np.ndarray:
    # Every stride-th index, plus the last, so even the coarsest level covers the whole extent.
    return np.union1d(np.arange(0, grid, stride), [grid - 1])


def surface_progressive(
    model: nn.Module,
    center: Tensor,
    d1: Tensor,
    d2: Tensor,
    x: Tensor,
    y: Tensor,
    loss_fn: Criterion,
    grid: int = 51,
    span: float | tuple[float, float] = 1.0,
    strides: Sequence[int] = PROGRESSIVE_STRIDES,
    chunk: int | None = None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Coarse to fine: yields ``(level, alphas, betas, Z)`` with Z always the full (grid, grid).

    Level 0 computes every ``strides[0]``-th point (and the last row/column); each later level
    computes only the points it adds; points not computed yet show their nearest computed
    neighbour. The last level is the full evaluation (== `evaluate_surface`). ``stop`` is checked
    between chunks: once set, the generator ends without yielding a partial level.
    """
    if grid < 2:
        raise ValueError(f"grid must be at least 2, got {grid}")
    alphas, betas = grid_axes(grid, span)
    known = np.zeros((grid, grid), dtype=bool)
    values = np.full((grid, grid), np.nan)
    strides = sorted({int(s) for s in strides if s >= 1} | {1}, reverse=True)
    engine = _engine(model, x, y, loss_fn)
    level = 0
    for stride in strides:
        rows = _level_indices(grid, stride)
        wanted = np.zeros_like(known)
        wanted[np.ix_(rows, rows)] = True
        new = wanted & ~known
        if not new.any():
            continue
        js, is_ = np.nonzero(new)
        coords = np.column_stack([alphas[is_], betas[js]])
        finished = 0
        for start, losses in _plane_losses(model, center, d1, d2, coords, x, y, loss_fn,
                                           chunk, stop, engine):
            values[js[start:start + len(losses)], is_[start:start + len(losses)]] = losses
            finished += len(losses)
        if finished < len(coords):
            return  # stopped
        known |= new
        nearest = _nearest(rows, grid)
        yield level, alphas, betas, values[np.ix_(nearest, nearest)].copy()
        level += 1


def _nearest(indices: np.ndarray, grid: int) -> np.ndarray:
    """For each of 0..grid−1 the nearest of the sorted ``indices``."""
    positions = np.arange(grid)
    right = np.clip(np.searchsorted(indices, positions), 0, len(indices) - 1)
    left = np.clip(right - 1, 0, len(indices) - 1)
    take_left = np.abs(positions - indices[left]) <= np.abs(indices[right] - positions)
    return np.where(take_left, indices[left], indices[right])


# --------------------------------------------------------------------------------------------
# 1-D slices


def default_interpolation_ts() -> np.ndarray:
    low, high, count = DEFAULT_INTERPOLATION
    return np.linspace(low, high, count)


def interpolate_1d(model: nn.Module, a: Tensor, b: Tensor, ts: Sequence[float] | None,
                   x: Tensor, y: Tensor, loss_fn: Criterion,
                   chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation (Goodfellow et al. 2015): loss((1−t)·a + t·b) for each t.

    ``ts`` None means t from −0.5 to 1.5 (41 points), so the plot shows both minima and beyond.
    Returns (ts, losses).
    """
    ts = default_interpolation_ts() if ts is None else np.asarray(ts, dtype=np.float64)
    a = _as_vector(model, a)
    direction = two_point_direction(a, _as_vector(model, b))
    coords = np.column_stack([ts, np.zeros_like(ts)])
    losses = evaluate_points(model, a, direction, torch.zeros_like(direction), coords, x, y,
                             loss_fn, chunk)
    return ts, losses


def random_slice_1d(model: nn.Module, center: Tensor, x: Tensor, y: Tensor, loss_fn: Criterion,
                    generator: torch.Generator | None = None, span: float = 1.0, count: int = 51,
                    include_bias_bn: bool = False,
                    chunk: int | None = None) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """loss(center + α·d) along one filter-normalised random direction d (normalised against
    ``center``), α over [−span, span]. Returns (alphas, losses, d)."""
    center = _as_vector(model, center)
    layout = ParamLayout.of(model)
    raw = torch.randn(layout.size, generator=default_generator(generator), dtype=torch.float32)
    direction = filter_normalize(raw.to(center), center, layout, include_bias_bn)
    alphas = np.linspace(-span, span, count)
    coords = np.column_stack([alphas, np.zeros_like(alphas)])
    losses = evaluate_points(model, center, direction, torch.zeros_like(direction), coords, x, y,
                             loss_fn, chunk)
    return alphas, losses, direction


# --------------------------------------------------------------------------------------------
# Trajectories on the plane


def project_trajectory(points: Tensor, center: Tensor, d1: Tensor,
                       d2: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each (T, P) point's plane coordinates (α, β) and its distance from the plane.

    Least squares: (α, β) minimise ‖p − (center + α·d1 + β·d2)‖, which is the orthogonal
    projection even when d1 and d2 are not orthogonal (random directions); the off-plane
    distance is the norm of what is left. Computed in float64.
    """
    basis = torch.stack([d1.detach().reshape(-1), d2.detach().reshape(-1)]).double()
    offsets = points.detach().reshape(len(points), -1).double() - center.detach().double()
    gram = basis @ basis.T
    # pinv: a degenerate plane (d2 ∥ d1) still gives the least-norm answer instead of failing.
    coords = (torch.linalg.pinv(gram) @ (basis @ offsets.T)).T  # (T, 2)
    residual = offsets - coords @ basis
    off_plane = residual.norm(dim=1)
    coords = coords.cpu().numpy()
    return coords[:, 0].copy(), coords[:, 1].copy(), off_plane.cpu().numpy()


def true_vs_surface_loss(model: nn.Module, points: Tensor, center: Tensor, d1: Tensor,
                         d2: Tensor, x: Tensor, y: Tensor, loss_fn: Criterion,
                         chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(true_loss, surface_loss) of each (T, P) point.

    The true loss is the loss at the point itself; the surface loss is the loss at its projection
    center + α·d1 + β·d2 — exactly what the surface shows at (α, β), evaluated there rather than
    read off the grid, so it holds for points outside the grid too. They differ by what the
    plane leaves out (see the off-plane distance of `project_trajectory`).
    """
    alpha, beta, _ = project_trajectory(points, center, d1, d2)
    true_loss = evaluate_weights(model, points, x, y, loss_fn, chunk)
    surface_loss = evaluate_points(model, center, d1, d2, np.column_stack([alpha, beta]), x, y,
                                   loss_fn, chunk)
    return true_loss, surface_loss


# --------------------------------------------------------------------------------------------
# Following the training

FOLLOW_SAMPLES = 2048  # training samples a followed surface is evaluated on (the first ones)


@dataclass(frozen=True)
class FollowedSurface:
    """One surface around a run's weights at ``step``: Z[j, i] = loss(center + α_i·d1 + β_j·d2).

    ``center`` (P,) and the directions are detached copies, so the trajectory code can project
    onto this very plane after the training has moved on.
    """

    step: int
    run_index: int
    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray  # (len(betas), len(alphas))
    center: Tensor
    d1: Tensor
    d2: Tensor
    seconds: float  # time spent computing it


class SurfaceFollower:
    """Recompute the loss surface around a run's *current* weights every ``every`` steps.

    ``race`` is a `core.engine.network_race.NetworkRace` (or anything with ``models``, ``x_train``,
    ``y_train`` and ``criterion``): the followed model is ``race.models[run_index]`` (seed 0's),
    the loss its training loss (the first `FOLLOW_SAMPLES` samples). ``directions`` is
    ``"random"`` — the same Gaussian draw each time, filter-normalised against the current
    weights, so consecutive pictures are comparable — or a fixed pair (d1, d2) (e.g. the race's
    PCA plane). The grid is coarse on purpose (21×21 by default): a follow-up costs
    ``grid²`` batched points, a few per cent of 50 training steps of a small MLP
    (``BENCH surface-follow``).

    Call `maybe_update` with each step (or iterate `follow`): it returns a `FollowedSurface` at
    steps 0, every, 2·every, ... and None otherwise. It only reads the weights (in eval mode,
    without autograd), so training continues unchanged.
    """

    def __init__(self, race, every: int = 50, grid: int = 21, span: float | tuple = 1.0,
                 run_index: int = 0, directions: str | tuple[Tensor, Tensor] = "random",
                 include_bias_bn: bool = False, seed: int = 0, chunk: int | None = None):
        if every < 1:
            raise ValueError(f"every must be at least 1 step, got {every}")
        if grid < 2:
            raise ValueError(f"grid must be at least 2, got {grid}")
        models = race.models
        if not 0 <= run_index < len(models):
            raise ValueError(f"run_index must be in [0, {len(models) - 1}], got {run_index}")
        if isinstance(directions, str) and directions != "random":
            raise ValueError(
                f"directions must be 'random' or a pair of tensors, got {directions!r}")
        self.model = models[run_index]
        self.run_index, self.every, self.grid = run_index, every, grid
        self.alphas, self.betas = grid_axes(grid, span)
        self.coords = _grid_coords(self.alphas, self.betas)
        self.chunk = chunk
        self.include_bias_bn = include_bias_bn
        self.layout = ParamLayout.of(self.model)
        device, dtype = device_dtype(self.model)
        if isinstance(directions, str):
            raw = torch.randn(2, self.layout.size, generator=torch.Generator().manual_seed(seed))
            self._raw = raw.to(device=device, dtype=dtype)
            self._fixed = None
        else:
            self._raw = None
            self._fixed = tuple(_as_vector(self.model, d) for d in directions)
        self.x = race.x_train[:FOLLOW_SAMPLES]
        self.y = race.y_train[:FOLLOW_SAMPLES]
        self.loss_fn = race.criterion
        # Built once: the engine's data layout (tiles, transposed inputs) does not change.
        self._engine = _engine(self.model, self.x, self.y, self.loss_fn)
        self.last: FollowedSurface | None = None

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def maybe_update(self, step: int) -> FollowedSurface | None:
        """The surface around the current weights when ``step`` is due, else None."""
        if not self.due(step):
            return None
        started = time.perf_counter()
        center = flatten(self.model)
        if self._fixed is not None:
            d1, d2 = self._fixed
        else:
            d1, d2 = (filter_normalize(raw, center, self.layout, self.include_bias_bn)
                      for raw in self._raw)
        values = np.empty(len(self.coords))
        for start, losses in _plane_losses(self.model, center, d1, d2, self.coords, self.x,
                                           self.y, self.loss_fn, self.chunk,
                                           engine=self._engine):
            values[start:start + len(losses)] = losses
        self.last = FollowedSurface(
            step=step, run_index=self.run_index, alphas=self.alphas, betas=self.betas,
            losses=values.reshape(len(self.betas), len(self.alphas)), center=center, d1=d1,
            d2=d2, seconds=time.perf_counter() - started,
        )
        return self.last

    def follow(self, records: Iterator) -> Iterator[tuple[object, FollowedSurface | None]]:
        """(record, surface or None) for each record of ``race.records()``."""
        for record in records:
            yield record, self.maybe_update(record.step)
