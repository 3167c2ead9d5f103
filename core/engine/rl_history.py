"""What an rl race has shown so far, per run, for the views (app/rl/): returns, updates, the cart.

`RLHistory.extend` takes the race's `RLRecord`s (core/engine/rl_race.py) as the window's worker
hands them over and keeps, per run: every finished episode's return, every update's round,
gradient norm, moment norms (‖m‖, ‖v‖, NaN when the optimizer keeps none) and whether a
target-network copy followed it, and the states of its first environment in the newest round
(the cart the animation draws; for DQN, one state a round, the newest CART_FRAMES). `smoothed_returns` is the honest smoothing of
core/engine/smoothing.py (TensorBoard's debiased EMA), so the window and a script agree.
"""

from __future__ import annotations

import numpy as np

from core.engine.smoothing import debiased_ema

RETURN_SMOOTHING = 0.9  # the EMA weight of the smoothed return curves
CART_FRAMES = 500  # DQN: the newest states of a run's first environment kept for the animation


class RLHistory:
    """Per-run series of an rl race (module docstring)."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        n = len(labels)
        self.returns: list[list[float]] = [[] for _ in range(n)]
        self.update_round: list[list[int]] = [[] for _ in range(n)]
        self.grad_norm: list[list[float]] = [[] for _ in range(n)]
        self.exp_avg_norm: list[list[float]] = [[] for _ in range(n)]
        self.exp_avg_sq_norm: list[list[float]] = [[] for _ in range(n)]
        self.target_update: list[list[bool]] = [[] for _ in range(n)]
        self.cart: list[np.ndarray] = [np.zeros((0, 4)) for _ in range(n)]
        self.alive = np.ones(n, dtype=bool)
        self.last_step = -1

    def extend(self, records) -> None:
        for record in records:
            self.last_step = record.step
            self.alive = record.alive
            for i in range(len(self.labels)):
                self.returns[i].extend(float(v) for v in record.returns[i])
                cart = record.cart[i]
                if len(cart) == 1:  # DQN: one state a round; keep the newest CART_FRAMES
                    self.cart[i] = np.concatenate([self.cart[i][-(CART_FRAMES - 1):], cart])
                elif len(cart):  # REINFORCE: the round's whole episode
                    self.cart[i] = cart
                if np.isfinite(record.grad_norm[i]):
                    self.update_round[i].append(record.step)
                    self.grad_norm[i].append(float(record.grad_norm[i]))
                    self.exp_avg_norm[i].append(float(record.exp_avg_norm[i]))
                    self.exp_avg_sq_norm[i].append(float(record.exp_avg_sq_norm[i]))
                    self.target_update[i].append(bool(record.target_update[i]))

    def episode_returns(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(episode numbers 1…n, returns) of run i."""
        values = np.asarray(self.returns[i], dtype=np.float64)
        return np.arange(1, len(values) + 1, dtype=np.float64), values

    def smoothed_returns(self, i: int, weight: float = RETURN_SMOOTHING) -> np.ndarray:
        return debiased_ema(np.asarray(self.returns[i], dtype=np.float64), weight)

    def updates(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(update numbers 1…u, gradient norms, the update numbers followed by a target copy)."""
        grad = np.asarray(self.grad_norm[i], dtype=np.float64)
        number = np.arange(1, len(grad) + 1, dtype=np.float64)
        return number, grad, number[np.asarray(self.target_update[i], dtype=bool)]

    def summary(self) -> str:
        """One line for the status bar at the end: each run's mean return of its last 100
        episodes, best first."""
        means = [(float(np.mean(r[-100:])) if r else float("nan"), label)
                 for r, label in zip(self.returns, self.labels)]
        means.sort(key=lambda m: -m[0] if m[0] == m[0] else float("inf"))
        return "Mean return of the last 100 episodes: " + ", ".join(
            f"{label} {mean:.1f}" for mean, label in means)

    def moments(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.exp_avg_norm[i], dtype=np.float64),
                np.asarray(self.exp_avg_sq_norm[i], dtype=np.float64))
