"""surface-follow: training speed while the loss surface follows the weights.

Ours: a `core.engine.network_race.NetworkRace` (4 runs of a 2-16-16-2 MLP on 512 moons points, full batch,
500 steps) iterated through ``core.landscape.surfaces.SurfaceFollower(race, every=50, grid=21)`` — a
21×21 surface around run 0's current weights recomputed every 50 steps (11 surfaces, 4,851
grid points), in the same thread as the training, as the GUI's worker does.

Baseline: the same race without following. Value: training steps per second with following;
ratio: steps/s with / steps/s without (goal ≥ 0.7, i.e. following costs at most 30 %).
Interleaved, best of ``REPEATS``, one thread.
"""

from __future__ import annotations

import time

import torch

from bench.common import report
from core.engine.devices import configure_threads
from core.engine.factory import make_race
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.landscape.surfaces import SurfaceFollower

STEPS = 500
EVERY = 50
GRID = 21
REPEATS = 3
RUNS = (
    RunSpec("SGD", "sgd", {"lr": 0.1}),
    RunSpec("Momentum", "sgd", {"lr": 0.05, "momentum": 0.9}),
    RunSpec("Adam", "adam", {"lr": 0.01}),
    RunSpec("RMSprop", "rmsprop", {"lr": 0.003}),
)


def _lab() -> Lab:
    model = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                        {"linear": 2}]}
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.0},
        model=model, batch_size=None, eval_every=STEPS, device="cpu",
    )
    return validate_lab(Lab(name="bench", seed=0, steps=STEPS, problem=problem, runs=RUNS))


def _train(lab: Lab, follow: bool) -> tuple[float, int]:
    """Seconds for the whole race (building the follower included) and surfaces computed."""
    race = make_race(lab)
    started = time.perf_counter()
    surfaces = 0
    if follow:
        follower = SurfaceFollower(race, every=EVERY, grid=GRID)
        for _, surface in follower.follow(race.records()):
            surfaces += surface is not None
    else:
        for _ in race.records():
            pass
    return time.perf_counter() - started, surfaces


def run() -> dict:
    threads = torch.get_num_threads()
    configure_threads()
    try:
        lab = _lab()
        _train(lab, True)  # warm-up: lazy imports, first-call paths
        with_times, without_times = [], []
        surfaces = 0
        for _ in range(REPEATS):
            seconds, surfaces = _train(lab, True)
            with_times.append(seconds)
            without_times.append(_train(lab, False)[0])
    finally:
        torch.set_num_threads(threads)
    steps = STEPS + 1
    with_s, without_s = min(with_times), min(without_times)
    return report(
        "surface-follow", steps / with_s, "steps/s", without_s / with_s,
        "the same race without following",
        note=(f"{GRID}x{GRID} surface every {EVERY} steps ({surfaces} surfaces), 4 runs of a "
              f"2-16-16-2 MLP, 512 moons points, full batch"),
        with_s=with_s, without_s=without_s, surfaces=surfaces, grid=GRID, every=EVERY,
    )
