"""CartPole in numpy: the Barto–Sutton–Anderson (1983) cart and pole, many copies stepped at once.

The dynamics are those of gym's CartPole-v1 (the classic control benchmark): a cart of mass 1 on a
track, a pole of mass 0.1 and half-length 0.5 hinged on it, a push of ±10 N each step, explicit
Euler integration with tau = 0.02 s. An episode ends (*terminated*) once the pole leans past 12°
or the cart leaves ±2.4; it is *truncated* after 500 steps. Every step is worth a reward of 1,
the terminating one included, so an episode's return is its length.

`CartPoles` holds the state of n environments as one (n, 4) float64 array: `step` advances every
one of them with a handful of array operations (no Python loop over environments), which is what
lets a race step all its runs' environments together (bench/rl_envs.py measures the gain).
Environments that have ended stay frozen until `reset` starts them again. The start states come
from numpy Generators that the caller owns (one per environment; a run's environments share its
generator), never from numpy's global random state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
HALF_LENGTH = 0.5  # gym's "length": half the pole's length
POLE_MASS_LENGTH = MASS_POLE * HALF_LENGTH
FORCE = 10.0
TAU = 0.02
THETA_LIMIT = 12 * 2 * math.pi / 360  # radians
X_LIMIT = 2.4
MAX_STEPS = 500  # CartPole-v1's time limit
START_RANGE = 0.05  # start states are uniform in [-0.05, 0.05]^4
SOLVED_RETURN = 195.0  # the classic "solved": mean return >= 195 over 100 consecutive episodes


def cartpole_derivatives(state: np.ndarray, push: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cart's and the pole's accelerations (ẍ, θ̈) for ``state`` rows (x, ẋ, θ, θ̇) under a
    force of ``push`` newtons (gym's formulas)."""
    theta_dot = state[..., 3]
    cos, sin = np.cos(state[..., 2]), np.sin(state[..., 2])
    temp = (push + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS
    theta_acc = (GRAVITY * sin - cos * temp) / (
        HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS))
    x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
    return x_acc, theta_acc


START_BLOCK = 32  # start states drawn per environment at a time (`CartPoles` docstring)
_PUSH = np.array([-FORCE, FORCE])  # action 0 pushes left, 1 right


class CartPoles:
    """``n`` CartPole environments, stepped together.

    ``state`` (n, 4): x, ẋ, θ, θ̇ per environment; ``steps`` (n,): steps taken in the current
    episode; ``running`` (n,): the episode has not ended (ended ones are frozen until reset).
    Environment i draws its start states from ``generators[i]`` (several environments may share
    one: a run's), START_BLOCK at a time: numpy's ``uniform(size=(k, 4))`` gives the same numbers
    as k draws of 4, so the blocks change no episode, and a reset is an array copy.
    """

    def __init__(self, generators: Sequence[np.random.Generator]):
        n = len(generators)
        if n < 1:
            raise ValueError("CartPoles needs at least one environment (one generator each)")
        self.n = n
        self.generators = list(generators)
        self.state = np.zeros((n, 4))
        self.steps = np.zeros(n, dtype=np.int64)
        self.running = np.zeros(n, dtype=bool)
        self._starts = np.zeros((n, START_BLOCK, 4))
        self._used = np.full(n, START_BLOCK, dtype=np.int64)

    def reset(self, which: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in the environments ``which`` (a boolean mask; all when None).
        Returns the observations (a copy of ``state``)."""
        index = np.arange(self.n) if which is None else np.flatnonzero(which)
        for i in index[self._used[index] >= START_BLOCK]:  # once every START_BLOCK episodes
            self._starts[i] = self.generators[i].uniform(-START_RANGE, START_RANGE,
                                                         (START_BLOCK, 4))
            self._used[i] = 0
        self.state[index] = self._starts[index, self._used[index]]
        self._used[index] += 1
        self.steps[index] = 0
        self.running[index] = True
        return self.state.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Push every running environment left (action 0) or right (1) for one step of tau.

        Returns ``(observations, rewards, terminated, truncated)``, each with one row per
        environment; an environment that had already ended gets reward 0 and stays as it was.
        """
        active = self.running
        s = self.state
        push = _PUSH[np.asarray(actions)]
        x_acc, theta_acc = cartpole_derivatives(s, push)
        # Explicit Euler (gym's default "euler"): x and θ move by the old ẋ and θ̇ (updated in
        # that order, in place); an ended environment's time step is 0, so it stays as it was.
        dt = TAU * active
        s[:, 0] += dt * s[:, 1]
        s[:, 1] += dt * x_acc
        s[:, 2] += dt * s[:, 3]
        s[:, 3] += dt * theta_acc
        self.steps += active
        terminated = active & ((np.abs(s[:, 0]) > X_LIMIT) | (np.abs(s[:, 2]) > THETA_LIMIT))
        truncated = active & (self.steps >= MAX_STEPS) & ~terminated
        self.running = active & ~(terminated | truncated)
        return s.copy(), active.astype(np.float64), terminated, truncated
