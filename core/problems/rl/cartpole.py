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
        self._spare = 0  # a lower bound on every environment's unused starts (`reset`)
        self._work = _StepWork(n)

    def reset(self, which: np.ndarray | None = None) -> np.ndarray:
        """Start new episodes in the environments ``which`` (a boolean mask; all when None).
        Returns the observations (a copy of ``state``)."""
        index = np.arange(self.n) if which is None else np.flatnonzero(which)
        used = self._used[index]
        # Every environment has at least `_spare` unused starts left (a reset takes one from
        # each it restarts), so only when that runs out can one need a new block: the test
        # below, in index order as before, is skipped while it cannot be true.
        if self._spare <= 0:
            refill = used >= START_BLOCK
            if np.count_nonzero(refill):  # once every START_BLOCK episodes per environment
                for i in index[refill]:
                    self._starts[i] = self.generators[i].uniform(-START_RANGE, START_RANGE,
                                                                 (START_BLOCK, 4))
                used[refill] = 0
        self._spare -= 1
        self.state[index] = self._starts[index, used]
        self._used[index] = used + 1
        if self._spare <= 0:
            self._spare = START_BLOCK - int(self._used.max())
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
        w = self._work
        # Explicit Euler (gym's default "euler"): every component moves by its old derivative
        # (x and θ by the old ẋ and θ̇), so the four updates are one array operation on the
        # derivatives gathered first; an ended environment's time step is 0, so it stays as it
        # was.
        if s is not w.bound:  # the views below are of this state array
            w.bind(s)
        d = w.derivatives
        np.copyto(w.d_positions, w.velocities)
        w.accelerations(_PUSH[np.asarray(actions)])
        np.multiply(active, w.tau, w.dt_flat)
        d *= w.dt
        s += d
        self.steps += active
        # Past a limit: |x| > 2.4 or |θ| > 12°, both columns in one comparison; a row's two
        # booleans read as one uint16 are non-zero when either is true.
        np.abs(w.positions, w.size)
        np.greater(w.size, w.limits, w.beyond)
        fell = w.beyond_pairs != 0
        terminated = active & fell
        standing = active > fell  # active and not fell
        truncated = standing & (self.steps >= w.max_steps)
        self.running = standing ^ truncated  # truncated ⊆ standing
        return s.copy(), active.astype(np.float64), terminated, truncated


class _StepWork:
    """`CartPoles.step`'s buffers for n environments, and its arithmetic with them.

    `accelerations` is `cartpole_derivatives` operation for operation, in the same order on the
    same values, so every bit agrees (tests/core/test_rl.py compares them); it writes into
    preallocated arrays and multiplies by arrays of the constants instead of Python floats,
    because on a few dozen rows a numpy call's fixed cost is the whole cost, and an
    array-by-array call with ``out`` costs about 0.26 µs against 0.44 µs for a
    Python-float-by-array one that allocates (measured for bench/rl_envs.py).
    """

    def __init__(self, n: int):
        full = lambda value: np.full(n, value)  # noqa: E731
        self.pml, self.total, self.gravity = full(POLE_MASS_LENGTH), full(TOTAL_MASS), full(GRAVITY)
        self.mass_pole, self.half, self.four_thirds = full(MASS_POLE), full(HALF_LENGTH), full(4.0 / 3.0)
        self.tau = full(TAU)
        self.limits = np.tile([X_LIMIT, THETA_LIMIT], (n, 1))
        self.derivatives = np.zeros((n, 4))  # (ẋ, ẍ, θ̇, θ̈) per environment
        self.max_steps = np.full(n, MAX_STEPS)
        self.dt = np.zeros((n, 1))  # TAU where running, 0 where ended, broadcast over a row
        self.dt_flat = self.dt[:, 0]
        self.size = np.zeros((n, 2))
        self.beyond = np.zeros((n, 2), dtype=bool)
        self.beyond_pairs = self.beyond.view(np.uint16)[:, 0]  # the same bytes, one per row
        self.cos, self.sin, self.temp, self.a, self.b = (np.zeros(n) for _ in range(5))
        # Views of the derivatives' columns, and (`bind`) of the state's: made once, not at
        # every step (a view costs about as much as a small ufunc call).
        self.d_positions = self.derivatives[:, 0::2]  # ẋ, θ̇: what x and θ move by
        self.x_acc, self.theta_acc = self.derivatives[:, 1], self.derivatives[:, 3]
        self.bound = None

    def bind(self, state: np.ndarray) -> None:
        """Make the views of ``state`` (n, 4) that `accelerations` and the step use."""
        self.bound = state
        self.positions, self.velocities = state[:, 0::2], state[:, 1::2]  # (x, θ), (ẋ, θ̇)
        self.theta, self.theta_dot = state[:, 2], state[:, 3]

    def accelerations(self, push: np.ndarray) -> None:
        """ẍ and θ̈ of the bound state into ``derivatives[:, 1]`` and ``[:, 3]``:
        `cartpole_derivatives`."""
        mul, div, add, sub = np.multiply, np.divide, np.add, np.subtract
        cos, sin, temp, a, b = self.cos, self.sin, self.temp, self.a, self.b
        theta_dot = self.theta_dot
        np.cos(self.theta, cos)
        np.sin(self.theta, sin)
        # temp = (push + PML·θ̇·θ̇·sin) / M
        mul(self.pml, theta_dot, a)
        mul(a, theta_dot, a)
        mul(a, sin, a)
        add(push, a, a)
        div(a, self.total, temp)
        # θ̈ = (g·sin − cos·temp) / (l·(4/3 − m·cos·cos / M))
        mul(self.gravity, sin, a)
        mul(cos, temp, b)
        sub(a, b, a)
        mul(self.mass_pole, cos, b)
        mul(b, cos, b)
        div(b, self.total, b)
        sub(self.four_thirds, b, b)
        mul(self.half, b, b)
        theta_acc = self.theta_acc
        div(a, b, theta_acc)
        # ẍ = temp − PML·θ̈·cos / M
        mul(self.pml, theta_acc, a)
        mul(a, cos, a)
        div(a, self.total, a)
        sub(temp, a, self.x_acc)
