"""rl-envs: 8 runs' CartPole environments stepped together vs one at a time.

Ours: the rl race's way (core/engine/rl_race.py): the 8 runs × 8 environments of each live in
one `CartPoles` of 64 rows (core/problems/rl/cartpole.py), and one `step` call advances them all;
ended episodes restart from each environment's own numpy Generator.

Baseline: one environment at a time, as gym's CartPole-v1 steps: Python floats and `math` for
one cart and pole per call (the same formulas), looped over the 64 environments.

Also measured (in the note): each run's 8 environments as one `CartPoles`, the runs stepped one
after another (what a race without the shared array would do).

All take the same pre-drawn actions and restart ended episodes from equally seeded generators,
so they must end in the same states (checked to 1e-9, else a WARNING). Value: environment steps
per second of ours; ratio: baseline time / ours. Best of REPEATS, interleaved.

What bounds it: a step of the shared array is about 40 numpy calls (the dynamics, the Euler
update, the end tests) of ~0.3 µs each on 64 rows, against ~2 µs per environment for the scalar
step, and the restarts (`reset`) about 4 µs a round. The step computes in preallocated buffers with
array constants, bit for bit the plain formulas (core/problems/rl/cartpole.py `_StepWork`,
tests/core/test_rl.py), with its column views made once: measured 2026-12-08 on a shared 2-core
machine, ×3.1–3.3 before, ×3.9–4.3 after (load ~1.7; the same loop of the old and new module
side by side: 1.33× faster); the ratio grows with the environments per run (0.47× with 1 per
run, 8.0× with 32 before), and is 5–9× against run by run throughout.
"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.common import report
from core.problems.rl import cartpole as cp
from core.problems.rl.cartpole import CartPoles

RUNS, ENVS, STEPS, REPEATS = 8, 8, 2000, 3


def _scalar_step(s: list[float], action: int) -> tuple[list[float], bool]:
    x, x_dot, th, th_dot = s
    force = cp.FORCE if action == 1 else -cp.FORCE
    cos, sin = math.cos(th), math.sin(th)
    temp = (force + cp.POLE_MASS_LENGTH * th_dot * th_dot * sin) / cp.TOTAL_MASS
    th_acc = (cp.GRAVITY * sin - cos * temp) / (
        cp.HALF_LENGTH * (4.0 / 3.0 - cp.MASS_POLE * cos * cos / cp.TOTAL_MASS))
    x_acc = temp - cp.POLE_MASS_LENGTH * th_acc * cos / cp.TOTAL_MASS
    s = [x + cp.TAU * x_dot, x_dot + cp.TAU * x_acc, th + cp.TAU * th_dot, th_dot + cp.TAU * th_acc]
    return s, abs(s[0]) > cp.X_LIMIT or abs(s[2]) > cp.THETA_LIMIT


def _together(actions: np.ndarray) -> np.ndarray:
    n = actions.shape[1]
    envs = CartPoles([np.random.default_rng([0, j]) for j in range(n)])
    envs.reset()
    for t in range(len(actions)):
        envs.step(actions[t])
        ended = ~envs.running
        if ended.any():
            envs.reset(ended)
    return envs.state


def _one_at_a_time(actions: np.ndarray) -> np.ndarray:
    n = actions.shape[1]
    rngs = [np.random.default_rng([0, j]) for j in range(n)]
    states = [list(r.uniform(-cp.START_RANGE, cp.START_RANGE, 4)) for r in rngs]
    steps = [0] * n
    for t in range(len(actions)):
        for j in range(n):
            states[j], fell = _scalar_step(states[j], int(actions[t, j]))
            steps[j] += 1
            if fell or steps[j] >= cp.MAX_STEPS:
                states[j] = list(rngs[j].uniform(-cp.START_RANGE, cp.START_RANGE, 4))
                steps[j] = 0
    return np.array(states)


def _run_by_run(actions: np.ndarray) -> np.ndarray:
    """The same, one `CartPoles` of ENVS rows per run, stepped one run after another."""
    n = actions.shape[1]
    blocks = [CartPoles([np.random.default_rng([0, j]) for j in range(r, r + ENVS)])
              for r in range(0, n, ENVS)]
    for envs in blocks:
        envs.reset()
    for t in range(len(actions)):
        for b, envs in enumerate(blocks):
            envs.step(actions[t, b * ENVS:(b + 1) * ENVS])
            ended = ~envs.running
            if ended.any():
                envs.reset(ended)
    return np.vstack([envs.state for envs in blocks])


def run() -> dict:
    n = RUNS * ENVS
    actions = np.random.default_rng(1).integers(0, 2, (STEPS, n))
    ours, base, by_run = math.inf, math.inf, math.inf
    for _ in range(REPEATS):
        t = time.perf_counter()
        a = _together(actions)
        ours = min(ours, time.perf_counter() - t)
        t = time.perf_counter()
        b = _one_at_a_time(actions)
        base = min(base, time.perf_counter() - t)
        t = time.perf_counter()
        c = _run_by_run(actions)
        by_run = min(by_run, time.perf_counter() - t)
    for name, other in (("one at a time", b), ("run by run", c)):
        if not np.allclose(a, other, rtol=0, atol=1e-9):
            print(f"WARNING rl-envs: {name} disagrees by {np.abs(a - other).max():.3g}")
    return report("rl-envs", n * STEPS / ours, "env-steps/s", base / ours,
                  f"{n} environments one at a time ({RUNS} runs x {ENVS})",
                  note=f"{STEPS} steps each; x{by_run / ours:.2f} vs each run's {ENVS} "
                       "environments stepped run by run",
                  ours_s=ours, baseline_s=base, by_run_s=by_run)
