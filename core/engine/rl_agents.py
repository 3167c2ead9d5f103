"""One run's agent in a reinforcement-learning race: its network, its optimizer and its update.

`Reinforce` is the policy gradient of Williams (1992) with a baseline: the network gives the two
actions' logits; after a round of finished episodes the loss is −mean_t log π(a_t|s_t)·Â_t over
every step of the round, where Â_t is the discounted return-to-go G_t *normalised* over the round
(minus its mean, over its standard deviation). That normalisation is the baseline: subtracting the
round's mean return leaves the gradient unbiased up to the shared scale and cuts its variance, and
needs no second network to train (so every optimizer in a race trains exactly one network).

`Dqn` is Mnih et al.'s (2015) deep Q-learning: Q(s, ·) from the network, a *target* network copied
from it every ``target_every`` updates, transitions kept in a replay buffer of ``buffer`` rows
sampled uniformly with the run's own generator, Huber loss against r + γ·max_a Q_target(s', a)
(no bootstrap past a terminal state; a truncated episode still bootstraps), ε-greedy actions with
ε linear from ``epsilon[0]`` to ``epsilon[1]`` over ``epsilon[2]`` steps.

Adam-Rel (Ellis et al., NeurIPS 2024, "Adam on local time"): with a run's ``adam_rel``, every
target update sets the optimizer's ``state["step"]`` to 0 for every parameter, so the next step's
bias correction treats the new target as a new problem while the moments are kept. `step_counter`
is how a race checks, before training, that the optimizer keeps such a counter at all.

Randomness: each agent draws its actions, its exploration and its replay samples from one numpy
Generator it owns (`core/engine/rl_race.py` makes it); torch's global generator is never read.
What both agents measure after an update (`UpdateStats`): the loss, the gradient norm before the
step, and the norms of the optimizer's first and second moment estimates when it keeps them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.engine.training_step import RandomStream, RunUpdate, optimizers_for
from core.lab.format import RunSpec
from core.problems.rl.spec import RLProblem


@dataclass
class UpdateStats:
    """What one update of a run measured; NaN where it does not apply."""

    loss: float = math.nan
    grad_norm: float = math.nan
    exp_avg_norm: float = math.nan  # ‖m‖ over every parameter (Adam's first moment)
    exp_avg_sq_norm: float = math.nan  # ‖v‖ (the second moment)
    opt_step: float = math.nan  # the optimizer's step counter, when it has one
    target_update: bool = False


def step_counter(optimizer: torch.optim.Optimizer) -> float | None:
    """The step counter of ``optimizer``'s first parameter with state, or None if its state has
    no ``"step"`` (SGD, RMSprop without one…)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state and "step" in state:
                step = state["step"]
                return float(step.item() if torch.is_tensor(step) else step)
    return None


def reset_step_counters(optimizer: torch.optim.Optimizer) -> int:
    """Adam-Rel: ``state["step"] = 0`` for every parameter (a tensor stays a tensor of its dtype
    and device: torch's Adam keeps it as one). Returns how many were reset."""
    reset = 0
    for state in optimizer.state.values():
        if "step" in state:
            step = state["step"]
            if torch.is_tensor(step):
                step.zero_()
            else:
                state["step"] = 0
            reset += 1
    return reset


def has_step_counter(run: RunSpec) -> tuple[bool, str]:
    """Whether ``run``'s optimizer keeps ``state["step"]`` (probed on a throwaway parameter, one
    step): ``(True, "")`` or ``(False, what its state holds)``."""
    model = nn.Linear(2, 2, bias=False)  # a 2-D weight: matrix optimizers take it too
    opt = optimizers_for(run, model)[0]
    model.weight.grad = torch.ones_like(model.weight)
    update = RunUpdate.of(run.optimizer)
    if update.closure:
        opt.step(lambda: model.weight.sum())
    else:
        opt.step()
    state = opt.state.get(model.weight, {})
    if "step" in state:
        return True, ""
    keys = ", ".join(sorted(state)) or "nothing"
    return False, f"its state has no step counter (it keeps: {keys})"


# Activations the numpy forward knows; a network with anything else acts through torch.
_NUMPY_ACTIVATIONS = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, 0.0),
    nn.Identity: lambda x: x,
    nn.Sigmoid: lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def numpy_forward(model: nn.Module, obs: np.ndarray) -> np.ndarray | None:
    """The network's outputs for ``obs`` computed in numpy (float32, from the live weights), or
    None when it has a layer other than Linear and the activations above. Acting calls the
    network once per environment step on a few rows, where torch's per-call overhead is most of
    the cost; training still goes through torch."""
    if not isinstance(model, nn.Sequential):
        return None
    x = np.asarray(obs, dtype=np.float32)
    for module in model:
        if isinstance(module, nn.Linear):
            x = x @ module.weight.detach().numpy().T
            if module.bias is not None:
                x = x + module.bias.detach().numpy()
        elif type(module) in _NUMPY_ACTIVATIONS:
            x = _NUMPY_ACTIVATIONS[type(module)](x)
        else:
            return None
    return x


def _moment_norms(optimizer: torch.optim.Optimizer) -> tuple[float, float]:
    first = second = 0.0
    seen = False
    for state in optimizer.state.values():
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        if torch.is_tensor(m):
            first += float(m.double().pow(2).sum())
            seen = True
        if torch.is_tensor(v):
            second += float(v.double().pow(2).sum())
    if not seen:
        return math.nan, math.nan
    return math.sqrt(first), math.sqrt(second)


class Agent:
    """What both agents share: the run's network and optimizers, the update and its stats."""

    def __init__(self, run: RunSpec, index: int, model: nn.Module, problem: RLProblem,
                 rng: np.random.Generator, seed: int):
        self.run = run
        self.problem = problem
        self.model = model
        self.rng = rng
        self.optimizers = optimizers_for(run, model)
        self.update = RunUpdate.of(run.optimizer)
        self.stream = RandomStream(seed, index) if self.update.create_graph else None
        self.updates = 0

    def _logits(self, obs: np.ndarray) -> torch.Tensor:
        return self.model(torch.as_tensor(obs, dtype=torch.float32))

    @torch.no_grad()
    def _outputs(self, obs: np.ndarray) -> np.ndarray:
        """The network's outputs for acting, as float64 numpy (`numpy_forward` when it can)."""
        out = numpy_forward(self.model, obs)
        if out is None:
            out = self._logits(obs).numpy()
        return out.astype(np.float64)

    def _optimize(self, loss_of) -> UpdateStats:
        """Zero, forward (``loss_of()``), backward, measure, step."""
        self.update.to_train(self.optimizers)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward(create_graph=self.update.create_graph)
        grads = [p.grad.detach().double().pow(2).sum() for p in self.model.parameters()
                 if p.grad is not None]
        grad_norm = float(torch.stack(grads).sum().sqrt()) if grads else 0.0

        def closure() -> torch.Tensor:
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            again = loss_of()
            again.backward(create_graph=self.update.create_graph)
            return again

        if self.stream is not None:
            with self.stream:
                self.update.step(self.optimizers, closure if self.update.closure else None)
        else:
            self.update.step(self.optimizers, closure if self.update.closure else None)
        self.update.to_eval(self.optimizers)
        self.updates += 1
        first, second = _moment_norms(self.optimizers[0])
        counter = step_counter(self.optimizers[0])
        return UpdateStats(loss=float(loss.detach()), grad_norm=grad_norm,
                           exp_avg_norm=first, exp_avg_sq_norm=second,
                           opt_step=math.nan if counter is None else counter)


class Reinforce(Agent):
    """REINFORCE with returns normalised over each round as its baseline (module docstring)."""

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        # π(right) = σ(l₁ − l₀), in numpy: torch's softmax on a few rows costs more in thread
        # start-up than the arithmetic (measured, bench/rl_envs.py's machine).
        logits = self._outputs(obs)
        probs = 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))
        return (self.rng.random(len(obs)) < probs).astype(np.int64)

    def learn(self, episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> UpdateStats:
        """One update from a round's finished episodes, each (observations, actions, rewards)."""
        gamma = self.problem.gamma
        returns = []
        for _, _, rewards in episodes:
            g = np.empty(len(rewards))
            running = 0.0
            for t in range(len(rewards) - 1, -1, -1):
                running = rewards[t] + gamma * running
                g[t] = running
            returns.append(g)
        advantage = np.concatenate(returns)
        std = advantage.std()
        advantage = (advantage - advantage.mean()) / (std if std > 1e-8 else 1.0)
        obs = torch.as_tensor(np.concatenate([e[0] for e in episodes]), dtype=torch.float32)
        actions = torch.as_tensor(np.concatenate([e[1] for e in episodes]))
        weight = torch.as_tensor(advantage, dtype=torch.float32)

        def loss_of() -> torch.Tensor:
            logp = torch.log_softmax(self.model(obs), dim=-1)
            return -(logp.gather(1, actions[:, None]).squeeze(1) * weight).mean()

        return self._optimize(loss_of)


class Dqn(Agent):
    """DQN with a target network and a seeded replay buffer (module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p = self.problem
        self.target = copy.deepcopy(self.model)
        for param in self.target.parameters():
            param.requires_grad_(False)
        self.obs = np.zeros((p.buffer, 4), dtype=np.float32)
        self.next_obs = np.zeros((p.buffer, 4), dtype=np.float32)
        self.actions = np.zeros(p.buffer, dtype=np.int64)
        self.rewards = np.zeros(p.buffer, dtype=np.float32)
        self.done = np.zeros(p.buffer, dtype=np.float32)  # terminated: no bootstrap
        self.size = 0
        self.cursor = 0
        self.steps = 0  # environment steps taken (rounds), for ε

    def epsilon(self) -> float:
        start, end, decay = self.problem.epsilon
        return end + (start - end) * max(0.0, 1.0 - self.steps / decay)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        greedy = self._outputs(obs).argmax(axis=-1)
        explore = self.rng.random(len(obs)) < self.epsilon()
        random_actions = self.rng.integers(0, 2, len(obs))
        self.steps += 1
        return np.where(explore, random_actions, greedy)

    def remember(self, obs, actions, rewards, next_obs, terminated) -> None:
        for row in range(len(obs)):  # a handful of environments per run
            i = self.cursor
            self.obs[i], self.next_obs[i] = obs[row], next_obs[row]
            self.actions[i], self.rewards[i], self.done[i] = actions[row], rewards[row], terminated[row]
            self.cursor = (i + 1) % len(self.obs)
            self.size = min(self.size + 1, len(self.obs))

    def ready(self) -> bool:
        return self.size >= max(self.problem.learning_starts, self.problem.batch_size)

    def learn(self, adam_rel: bool = False) -> UpdateStats:
        """One update on a replay sample; then, every ``target_every`` updates, the target copy
        (and with Adam-Rel the step counters set to 0)."""
        pick = self.rng.integers(0, self.size, self.problem.batch_size)
        obs = torch.as_tensor(self.obs[pick])
        next_obs = torch.as_tensor(self.next_obs[pick])
        actions = torch.as_tensor(self.actions[pick])
        with torch.no_grad():
            best_next = self.target(next_obs).max(dim=-1).values
            goal = torch.as_tensor(self.rewards[pick]) + self.problem.gamma * (
                1.0 - torch.as_tensor(self.done[pick])) * best_next

        def loss_of() -> torch.Tensor:
            q = self.model(obs).gather(1, actions[:, None]).squeeze(1)
            return nn.functional.smooth_l1_loss(q, goal)

        stats = self._optimize(loss_of)
        if self.updates % self.problem.target_every == 0:
            self.target.load_state_dict(self.model.state_dict())
            stats.target_update = True
            if adam_rel:
                for opt in self.optimizers:
                    reset_step_counters(opt)
        return stats
