"""The reinforcement-learning race: every run's agent on CartPole, all environments stepped as one.

A lab of ``"kind": "rl"`` (core/problems/rl/spec.py) races its runs' optimizers at training the
same agent. Fairness as in the network race: every run starts from the *same* initial network
(built once from ``lab.seed`` with a torch.Generator the race owns, then copied) and its
environments draw the *same* start states (environment e of every run has its own numpy Generator
seeded ``[lab.seed, 1, e]``), so two runs differ only by their optimizer and what it makes the
agent do. Each run's actions, exploration and replay samples come from its own Generator seeded
``[lab.seed, 2]`` (core/engine/rl_agents.py). Nothing reads numpy's or torch's global generators,
so a race gives the same episodes alone or beside other work in other threads.

All runs' environments live in one `CartPoles` of R·E rows (R runs, E = ``problem.envs`` each):
one call steps them all. A *round* is what one record covers:

* REINFORCE: every live run starts min(E, episodes left) episodes, all are played to their end
  together, then each run makes one update from its round (so ``episodes`` finish in
  ⌈episodes / E⌉ rounds);
* DQN: one step of every environment, each run stores its transitions and (once its buffer holds
  ``learning_starts``) makes one update; ended episodes restart while the run has budget left.

A run whose loss or gradient turns non-finite, or whose optimizer raises, stops there (its
``failures[i]`` says why) and the others go on. Records hold numpy arrays and floats only;
`RLRecord` says what each one holds. Headless runs: core/engine/rl_runner.py.
"""

from __future__ import annotations

import copy
import math
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from core.engine.rl_agents import Dqn, Reinforce, UpdateStats, has_step_counter
from core.errors import LabError
from core.lab.format import Lab
from core.problems.model_spec import validate_model
from core.problems.models import build_model
from core.problems.rl.cartpole import CartPoles
from core.problems.rl.spec import N_ACTIONS, OBSERVATION_SIZE, RLProblem


@dataclass(frozen=True)
class RLRecord:
    """One round of the race (module docstring); per-run arrays have one row per enabled run.

    ``returns[i]``: the returns of run i's episodes that finished this round (often none for
    DQN); ``episodes``: episodes finished so far. ``loss``, ``grad_norm`` (before the step),
    ``exp_avg_norm`` / ``exp_avg_sq_norm`` (the optimizer's moment estimates, NaN when it keeps
    none) and ``opt_step`` (its step counter) are of this round's update, NaN without one;
    ``target_update`` marks a target-network copy (DQN). ``cart[i]``: the states (k, 4) of run
    i's first environment during the round, for drawing the cart and pole.
    """

    step: int
    alive: np.ndarray
    episodes: np.ndarray
    returns: tuple[np.ndarray, ...]
    loss: np.ndarray
    grad_norm: np.ndarray
    exp_avg_norm: np.ndarray
    exp_avg_sq_norm: np.ndarray
    opt_step: np.ndarray
    target_update: np.ndarray
    epsilon: np.ndarray
    cart: tuple[np.ndarray, ...]
    # The window's record handling reads every race's events here (app/shell/race_wiring.py);
    # an rl run's failure is in `RLRace.failures` and the history instead.
    diverged: tuple = ()


def initial_agent_model(lab: Lab) -> torch.nn.Module:
    """The network every run of ``lab`` starts from (seeded by ``lab.seed``)."""
    spec = validate_model(lab.problem.model, (OBSERVATION_SIZE,), N_ACTIONS, field="problem.model")
    return build_model(spec, torch.Generator().manual_seed(lab.seed))


class RLRace:
    """Trains every enabled run of an rl ``lab`` side by side; `records` yields `RLRecord`s."""

    def __init__(self, lab: Lab):
        if not isinstance(lab.problem, RLProblem):
            raise TypeError("RLRace needs a lab whose problem is an RLProblem")
        self.lab = lab
        self.problem: RLProblem = lab.problem
        self.runs = lab.enabled_runs()
        self.labels = [run.label for run in self.runs]
        indices = [i for i, run in enumerate(lab.runs) if run.enabled]
        for i, run in zip(indices, self.runs):
            if run.schedule is not None:
                raise LabError(f"runs[{i}].schedule",
                               "rl races do not take a learning-rate schedule (remove it)")
            if run.adam_rel:
                ok, why = has_step_counter(run)
                if not ok:
                    raise LabError(f"runs[{i}].adam_rel",
                                   f"Adam-Rel resets the optimizer's step counter, but {why}")
        initial = initial_agent_model(lab)
        kind = Dqn if self.problem.agent == "dqn" else Reinforce
        self.agents = [
            kind(run, i, copy.deepcopy(initial), self.problem,
                 np.random.default_rng([lab.seed, 2]), lab.seed)
            for i, run in enumerate(self.runs)
        ]
        n, e = len(self.runs), self.problem.envs
        # Environment e of every run: its own generator, the same seed for every run (fairness).
        self.envs = CartPoles([np.random.default_rng([lab.seed, 1, j % e])
                               for j in range(max(1, n * e))])
        self.episodes = np.zeros(n, dtype=np.int64)
        self.alive = np.ones(n, dtype=bool)
        self.failures: list[str | None] = [None] * n
        self.round = 0

    # ----------------------------------------------------------------------------------------

    def records(self, stop: threading.Event | None = None) -> Iterator[RLRecord]:
        """Rounds until every run has played its episodes (or failed), or ``stop`` is set."""
        play = self._dqn_round if self.problem.agent == "dqn" else self._reinforce_round
        if self.problem.agent == "dqn":
            self.envs.reset()
            self._started = np.full(len(self.runs), self.problem.envs, dtype=np.int64)
            self._returns = np.zeros(self.envs.n)
        while self.alive.any():
            if stop is not None and stop.is_set():
                return
            record = play(stop)
            if record is None:
                return
            self.round += 1
            yield record

    def _slice(self, i: int) -> slice:
        e = self.problem.envs
        return slice(i * e, (i + 1) * e)

    def _fail(self, i: int, reason: str) -> None:
        self.alive[i] = False
        self.failures[i] = reason

    def _update(self, i: int, learn) -> UpdateStats:
        """Run i's update; a non-finite loss or gradient, or an optimizer that raises, stops it."""
        try:
            stats = learn()
        except Exception as exc:  # the run's optimizer code: its fault, not the race's
            self._fail(i, f"round {self.round}: the update raised {type(exc).__name__}: {exc}\n"
                          + traceback.format_exc(limit=3))
            return UpdateStats()
        if not (math.isfinite(stats.loss) and math.isfinite(stats.grad_norm)):
            self._fail(i, f"round {self.round}: non-finite loss {stats.loss} or gradient norm "
                          f"{stats.grad_norm}")
        return stats

    def _record(self, returns, stats: list[UpdateStats], cart, epsilon) -> RLRecord:
        def column(name):
            return np.array([getattr(s, name) for s in stats], dtype=np.float64)

        return RLRecord(
            step=self.round, alive=self.alive.copy(), episodes=self.episodes.copy(),
            returns=tuple(returns), loss=column("loss"), grad_norm=column("grad_norm"),
            exp_avg_norm=column("exp_avg_norm"), exp_avg_sq_norm=column("exp_avg_sq_norm"),
            opt_step=column("opt_step"),
            target_update=np.array([s.target_update for s in stats], dtype=bool),
            epsilon=np.asarray(epsilon, dtype=np.float64), cart=tuple(cart),
        )

    def _reinforce_round(self, stop) -> RLRecord | None:
        e, n = self.problem.envs, len(self.runs)
        start = np.zeros(self.envs.n, dtype=bool)
        for i in np.flatnonzero(self.alive):
            left = self.problem.episodes - self.episodes[i]
            start[i * e: i * e + min(e, left)] = True
        obs = self.envs.reset(start)
        history_obs, history_act, history_on = [], [], []
        actions = np.zeros(self.envs.n, dtype=np.int64)
        while self.envs.running.any():
            if stop is not None and stop.is_set():
                return None
            for i in np.flatnonzero(self.alive):
                actions[self._slice(i)] = self.agents[i].act(obs[self._slice(i)])
            history_obs.append(obs)
            history_act.append(actions.copy())
            history_on.append(self.envs.running.copy())
            obs, _, _, _ = self.envs.step(actions)
        o, a, on = np.stack(history_obs), np.stack(history_act), np.stack(history_on)
        returns, stats, cart = [], [], []
        for i in range(n):
            cols = np.flatnonzero(start[self._slice(i)]) + i * e
            episodes = [(o[on[:, j], j], a[on[:, j], j], np.ones(int(on[:, j].sum())))
                        for j in cols]
            returns.append(np.array([len(ep[2]) for ep in episodes], dtype=np.float64))
            first = i * e
            cart.append(np.vstack([o[on[:, first], first], obs[first]]) if len(cols)
                        else np.zeros((0, 4)))
            if not len(cols):
                stats.append(UpdateStats())
                continue
            self.episodes[i] += len(cols)
            agent = self.agents[i]
            stats.append(self._update(i, lambda agent=agent, eps=episodes: agent.learn(eps)))
            if self.episodes[i] >= self.problem.episodes:
                self.alive[i] = False
        return self._record(returns, stats, cart, np.full(n, np.nan))

    def _dqn_round(self, stop) -> RLRecord:
        n = len(self.runs)
        obs = self.envs.state.copy()
        on = self.envs.running.copy()
        actions = np.zeros(self.envs.n, dtype=np.int64)
        epsilon = np.full(n, np.nan)
        for i in np.flatnonzero(self.alive):
            epsilon[i] = self.agents[i].epsilon()
            actions[self._slice(i)] = self.agents[i].act(obs[self._slice(i)])
        next_obs, rewards, terminated, truncated = self.envs.step(actions)
        self._returns += rewards
        ended = terminated | truncated
        returns, stats, cart = [], [], []
        for i in range(n):
            sl = self._slice(i)
            rows = np.flatnonzero(on[sl])
            done_here = ended[sl]
            returns.append(self._returns[sl][done_here].copy())
            cart.append(next_obs[sl][:1].copy())
            if not self.alive[i]:
                stats.append(UpdateStats())
                continue
            agent = self.agents[i]
            agent.remember(obs[sl][rows], actions[sl][rows], rewards[sl][rows],
                           next_obs[sl][rows], terminated[sl][rows])
            self.episodes[i] += int(done_here.sum())
            if agent.ready():
                adam_rel = self.runs[i].adam_rel
                stats.append(self._update(i, lambda a=agent, r=adam_rel: a.learn(r)))
            else:
                stats.append(UpdateStats())
            if self.episodes[i] >= self.problem.episodes:
                self.alive[i] = False
        self._returns[ended] = 0.0
        restart = ended.copy()
        for i in range(n):
            sl = self._slice(i)
            budget = self.problem.episodes - self._started[i]
            rows = np.flatnonzero(restart[sl])
            if not self.alive[i]:
                restart[sl] = False
                continue
            keep = rows[:max(0, budget)]
            restart[sl] = False
            restart[sl.start + keep] = True
            self._started[i] += len(keep)
        if restart.any():
            self.envs.reset(restart)
        return self._record(returns, stats, cart, epsilon)
