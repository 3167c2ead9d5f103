"""Reinforcement learning problems: the CartPole environment (`cartpole.py`), batched over every
run's environments, and the ``"kind": "rl"`` problem of a lab file (`spec.py`). The agents and the
race that trains them live in core/engine/rl_agents.py and core/engine/rl_race.py."""
