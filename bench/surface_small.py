"""surface-small: a 51×51 loss surface of a 2-16-16-2 MLP on 512 moons points, batched vs a loop.

Ours: ``core.landscape.surfaces.evaluate_surface`` — chunks of grid points evaluated at once, here by the
fused native kernel (core/landscape/fused.py: first layer from three precomputed maps, every
activation of a 64-sample block in L1); the note names the engine that ran.

Baseline: what the loss-landscape scripts do (Li et al.'s ``plot_surface.py``): for each of the
2,601 grid points, load the weights into the model (``center + α·d1 + β·d2``, parameter by
parameter), run one forward pass over the data, read the loss, next point. Eval mode and
``torch.no_grad()`` for both, so the baseline pays no autograd cost.

Same model (briefly trained with Adam so the surface is a real one), same filter-normalised
random directions, same data, one thread (``core.engine.devices.configure_threads``), interleaved, best
of ``REPEATS``. Value: grid points per second of ours; ratio: baseline time / ours (wall clock).
The note adds the same ratio in the thread's CPU time: on a loaded shared machine the long loop
loses more wall time to other processes than our short surface does, so the two differ; on a
quiet one they agree. The two grids must agree to 1e-5.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import report
from core.engine.devices import configure_threads
from core.landscape import directions, engines
from core.landscape import fused as landscape_fused
from core.landscape import surfaces as landscape
from core.landscape.params import flatten
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

GRID = 51
REPEATS = 3
BUDGET_S = 60.0  # a very loaded machine: stop repeating after this much time
TOLERANCE = 1e-5
MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}


def _problem():
    data = make_dataset({"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.0}, 0)
    spec = validate_model(MLP, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(0))
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):  # a trained network: the surface around a minimum, as users see it
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


def _loop(model, center, params_d1, params_d2, axis, x, y) -> tuple[float, np.ndarray]:
    """Li et al.'s loop: per point, set every parameter to w + α·d1 + β·d2, forward, loss."""
    params = list(model.parameters())
    base = [p.detach().clone() for p in params]
    out = np.empty((len(axis), len(axis)))
    cpu = time.thread_time()
    started = time.perf_counter()
    model.eval()
    with torch.no_grad():
        for j, beta in enumerate(axis):
            for i, alpha in enumerate(axis):
                for p, w, a, b in zip(params, base, params_d1, params_d2):
                    p.copy_(w + float(alpha) * a + float(beta) * b)
                out[j, i] = F.cross_entropy(model(x), y).item()
        for p, w in zip(params, base):
            p.copy_(w)
    _CPU.append(time.thread_time() - cpu)
    return time.perf_counter() - started, out


def _ours(model, center, d1, d2, axis, x, y) -> tuple[float, np.ndarray]:
    cpu = time.thread_time()
    started = time.perf_counter()
    out = landscape.evaluate_surface(model, center, d1, d2, axis, axis, x, y, F.cross_entropy)
    _CPU.append(time.thread_time() - cpu)
    return time.perf_counter() - started, out


_CPU: list[float] = []  # the thread's CPU time of each _ours / _loop call, newest last


def run() -> dict:
    threads = torch.get_num_threads()
    configure_threads()
    try:
        model, x, y = _problem()
        center = flatten(model)
        d1, d2 = directions.random_directions(model, torch.Generator().manual_seed(1))
        layout = engines.ParamLayout.of(model)
        per_param_d1 = list(layout.split(d1).values())
        per_param_d2 = list(layout.split(d2).values())
        axis = np.linspace(-1.0, 1.0, GRID)
        small = axis[::10]  # warm-up: lazy initialisation, first-call paths
        _ours(model, center, d1, d2, small, x, y), _loop(model, center, per_param_d1,
                                                         per_param_d2, small, x, y)
        ours_times, loop_times, ours_cpu, loop_cpu = [], [], [], []
        began = time.perf_counter()
        for i in range(REPEATS):
            if i >= 2 and time.perf_counter() - began > BUDGET_S:
                break
            t, ours = _ours(model, center, d1, d2, axis, x, y)
            ours_times.append(t)
            ours_cpu.append(_CPU[-1])
            t, baseline = _loop(model, center, per_param_d1, per_param_d2, axis, x, y)
            loop_times.append(t)
            loop_cpu.append(_CPU[-1])
    finally:
        torch.set_num_threads(threads)
    ours_s, loop_s = min(ours_times), min(loop_times)
    engine = landscape_fused.describe_engine(landscape._engine(model, x, y, F.cross_entropy))
    deviation = float(np.max(np.abs(ours - baseline)))
    if not deviation <= TOLERANCE:
        print(f"WARNING surface-small: batched and point-by-point grids differ by {deviation:.3g} "
              f"(> {TOLERANCE:g})", flush=True)
    points = GRID * GRID
    return report(
        "surface-small", points / ours_s, "points/s", loop_s / ours_s,
        f"point-by-point loop, {GRID}x{GRID} grid, 2-16-16-2 MLP, 512 moons points",
        note=(f"max |dloss| {deviation:.1e}; CPU-time ratio "
              f"x{min(loop_cpu) / min(ours_cpu):.1f}; {engine}"),
        ours_s=ours_s, baseline_s=loop_s, max_loss_deviation=deviation, grid=GRID,
        cpu_ratio=min(loop_cpu) / min(ours_cpu), engine=engine,
    )
