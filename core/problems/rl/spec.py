"""The ``"kind": "rl"`` problem of a lab file: its dataclass, its reader and its writer.

Kept out of core/lab/format.py (which only dispatches here) so the lab format does not grow with
every problem kind. A reinforcement-learning lab trains every run's agent on the same
environment (CartPole, core/problems/rl/cartpole.py) from the same initial network and the same
start states, so the runs differ only by their optimizer::

    "problem": {"kind": "rl", "env": "cartpole", "agent": "reinforce", "episodes": 800,
                "gamma": 0.99, "envs": 8,
                "model": {"layers": [{"linear": 32}, {"act": "tanh"}, {"linear": 2}]}}

The lab's ``steps`` is not used by an rl lab: its budget is ``episodes`` per run. DQN's own
settings (``target_every``, ``buffer``, ``batch_size``, ``learning_starts``, ``epsilon``) are
refused for REINFORCE, which has no target network or replay buffer. Every bad value is a
`LabError` naming ``problem.<key>`` and the allowed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import LabError
from core.lab.checks import check_keys, expect, int_in, show

ENVS = ("cartpole",)
AGENTS = ("reinforce", "dqn")
MAX_EPISODES = 20_000  # per run; CartPole is solved in hundreds
MAX_ENVS = 64  # parallel environments per run
MAX_BUFFER = 1_000_000
MAX_TARGET_EVERY = 100_000
OBSERVATION_SIZE = 4  # CartPole: x, ẋ, θ, θ̇
N_ACTIONS = 2  # push left, push right
DQN_KEYS = ("target_every", "buffer", "batch_size", "learning_starts", "epsilon")


def default_rl_model() -> dict:
    return {"layers": [{"linear": 32}, {"act": "tanh"}, {"linear": N_ACTIONS}]}


@dataclass(frozen=True)
class RLProblem:
    """Train an agent on an environment: ``agent`` "reinforce" (policy gradient, returns
    normalised as its baseline) or "dqn" (Q-learning with a target network and a replay buffer).

    ``model`` is the policy's (REINFORCE: action logits) or Q-network's (DQN: one value per
    action) lab-file model spec, checked by core/problems/model_spec.py against 4 inputs and 2
    outputs. ``envs`` environments per run play at once; REINFORCE updates once per ``envs``
    finished episodes, DQN once per step of them. ``epsilon`` is DQN's exploration
    ``[start, end, decay_steps]``: linear from start to end over that many updates.
    """

    env: str = "cartpole"
    agent: str = "reinforce"
    episodes: int = 800
    gamma: float = 0.99
    envs: int = 8
    model: Mapping[str, Any] = field(default_factory=default_rl_model)
    target_every: int = 500
    buffer: int = 50_000
    batch_size: int = 64
    learning_starts: int = 1000
    epsilon: tuple[float, float, int] = (1.0, 0.05, 10_000)

    kind = "rl"


def _unit_float(value: Any, field_: str, low: float, high: float) -> float:
    expect(value, (int, float), field_, f"a number in [{low:g}, {high:g}]")
    value = float(value)
    if not low <= value <= high:  # NaN fails too
        raise LabError(field_, f"must be in [{low:g}, {high:g}], got {show(value)}")
    return value


def rl_problem_from_dict(data: dict) -> RLProblem:
    """Check a lab file's ``"kind": "rl"`` problem and build it, or raise `LabError`."""
    from core.problems.model_spec import validate_model

    check_keys(data, {"kind", "env", "agent", "episodes", "gamma", "envs", "model", *DQN_KEYS},
               set(), "problem")
    defaults = RLProblem()
    env = expect(data.get("env", defaults.env), str, "problem.env", "an environment name")
    if env not in ENVS:
        raise LabError("problem.env", f"must be one of {', '.join(ENVS)}, got {show(env)}")
    agent = expect(data.get("agent", defaults.agent), str, "problem.agent", "an agent name")
    if agent not in AGENTS:
        raise LabError("problem.agent", f"must be one of {', '.join(AGENTS)}, got {show(agent)}")
    episodes = int_in(data.get("episodes", defaults.episodes), "problem.episodes", 1, MAX_EPISODES)
    gamma = _unit_float(data.get("gamma", defaults.gamma), "problem.gamma", 0.0, 1.0)
    envs = int_in(data.get("envs", defaults.envs), "problem.envs", 1, MAX_ENVS)
    model = expect(data.get("model", defaults.model), dict, "problem.model", "a JSON object")
    validate_model(model, (OBSERVATION_SIZE,), N_ACTIONS, field="problem.model")
    if agent != "dqn":
        for key in DQN_KEYS:
            if key in data:
                raise LabError(f"problem.{key}", "only the dqn agent has this setting "
                                                 "(REINFORCE has no target network or replay buffer)")
        return RLProblem(env=env, agent=agent, episodes=episodes, gamma=gamma, envs=envs,
                         model=dict(model))
    target_every = int_in(data.get("target_every", defaults.target_every),
                          "problem.target_every", 1, MAX_TARGET_EVERY)
    buffer = int_in(data.get("buffer", defaults.buffer), "problem.buffer", 1, MAX_BUFFER)
    batch_size = int_in(data.get("batch_size", defaults.batch_size), "problem.batch_size", 1, 4096)
    learning_starts = int_in(data.get("learning_starts", defaults.learning_starts),
                             "problem.learning_starts", 0, MAX_BUFFER)
    if learning_starts > buffer:
        raise LabError("problem.learning_starts",
                       f"must be at most problem.buffer ({buffer}), got {learning_starts}")
    epsilon = data.get("epsilon", list(defaults.epsilon))
    expect(epsilon, list, "problem.epsilon", "a list [start, end, decay_steps]")
    if len(epsilon) != 3:
        raise LabError("problem.epsilon",
                       f"must be a list [start, end, decay_steps], got {show(epsilon)}")
    start = _unit_float(epsilon[0], "problem.epsilon[0]", 0.0, 1.0)
    end = _unit_float(epsilon[1], "problem.epsilon[1]", 0.0, 1.0)
    decay = int_in(epsilon[2], "problem.epsilon[2]", 1, 10_000_000)
    return RLProblem(env=env, agent=agent, episodes=episodes, gamma=gamma, envs=envs,
                     model=dict(model), target_every=target_every, buffer=buffer,
                     batch_size=batch_size, learning_starts=learning_starts,
                     epsilon=(start, end, decay))


def rl_problem_to_dict(problem: RLProblem) -> dict:
    """The problem as the lab file holds it (DQN's settings only for the dqn agent)."""
    out: dict[str, Any] = {
        "kind": "rl", "env": problem.env, "agent": problem.agent, "episodes": problem.episodes,
        "gamma": problem.gamma, "envs": problem.envs, "model": _plain(problem.model),
    }
    if problem.agent == "dqn":
        out.update(target_every=problem.target_every, buffer=problem.buffer,
                   batch_size=problem.batch_size, learning_starts=problem.learning_starts,
                   epsilon=list(problem.epsilon))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
