"""The rl problem kind: CartPole's dynamics, REINFORCE and DQN races, Adam-Rel, the lab file.

Core only (no Qt); the views: tests/app/test_rl_views.py. The full "REINFORCE with Adam solves
CartPole on at least 4 of 5 seeds" check runs in the lesson (resources/lessons/moving_targets,
`main.py lessons check`) and bench/rl_envs.py; here one seed must clear a lower bar fast.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest
import torch

from core.engine.factory import make_race
from core.engine.rl_race import RLRace
from core.engine.runner import run_to_dir
from core.errors import LabError
from core.lab.format import lab_from_dict, lab_to_dict
from core.problems.rl.cartpole import CartPoles


def _lab(problem: dict, runs=None, seed: int = 0):
    runs = runs or [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    return lab_from_dict({"seed": seed, "steps": 1, "problem": {"kind": "rl", **problem},
                          "runs": runs})


# --- the dynamics ----------------------------------------------------------------------------

def _barto_step(state, action):
    """One Euler step of Barto, Sutton & Anderson (1983), eqs. (23)–(24) of the paper, written
    out independently in float64: θ̈ = [g sinθ + cosθ·(−F − m l θ̇² sinθ)/(m_c + m)] /
    [l (4/3 − m cos²θ/(m_c + m))],  ẍ = [F + m l (θ̇² sinθ − θ̈ cosθ)] / (m_c + m)
    (no friction, as in gym's CartPole-v1), with m_c = 1, m = 0.1, l = 0.5, g = 9.8, F = ±10,
    tau = 0.02."""
    x, x_dot, th, th_dot = (float(v) for v in state)
    g, mc, m, half, tau = 9.8, 1.0, 0.1, 0.5, 0.02
    force = 10.0 if action == 1 else -10.0
    th_acc = (g * math.sin(th) + math.cos(th) * (-force - m * half * th_dot ** 2 * math.sin(th))
              / (mc + m)) / (half * (4.0 / 3.0 - m * math.cos(th) ** 2 / (mc + m)))
    x_acc = (force + m * half * (th_dot ** 2 * math.sin(th) - th_acc * math.cos(th))) / (mc + m)
    return [x + tau * x_dot, x_dot + tau * x_acc, th + tau * th_dot, th_dot + tau * th_acc]


def test_cartpole_follows_the_published_equations_on_fixed_actions():
    rng = np.random.default_rng(7)
    n, steps = 6, 120
    starts = rng.uniform(-0.05, 0.05, (n, 4))
    actions = rng.integers(0, 2, (steps, n))
    actions[:, 0] = 1  # one always pushes right: it must fall (terminate) early
    envs = CartPoles([np.random.default_rng(j) for j in range(n)])
    envs.state[:] = starts
    envs.running[:] = True
    mine = [list(s) for s in starts]
    ended_at = [None] * n
    for t in range(steps):
        state, reward, terminated, _ = envs.step(actions[t])
        for i in range(n):
            if ended_at[i] is not None:
                assert reward[i] == 0.0 and not terminated[i]  # frozen once ended
                continue
            mine[i] = _barto_step(mine[i], actions[t, i])
            np.testing.assert_allclose(state[i], mine[i], rtol=1e-12, atol=1e-12)
            assert reward[i] == 1.0
            fell = abs(mine[i][0]) > 2.4 or abs(mine[i][2]) > 12 * 2 * math.pi / 360
            assert bool(terminated[i]) == fell
            if fell:
                ended_at[i] = t
    assert ended_at[0] is not None and ended_at[0] < 60


def test_cartpole_truncates_at_500_steps():
    envs = CartPoles([np.random.default_rng(0)])
    envs.state[:] = 0.0
    envs.running[:] = True
    envs.steps[:] = 499
    _, _, terminated, truncated = envs.step(np.array([1]))
    assert truncated[0] and not terminated[0] and not envs.running[0]


# --- races -----------------------------------------------------------------------------------

def _returns(lab):
    race = make_race(lab)
    out = [[] for _ in race.labels]
    losses = []
    for record in race.records():
        for i, values in enumerate(record.returns):
            out[i].extend(values.tolist())
        losses.append(record.loss.copy())
    return out, np.array(losses)


def test_same_seed_same_episodes_alone_and_beside_other_work():
    lab = _lab({"agent": "reinforce", "episodes": 24, "envs": 4},
               [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
                {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.05}}])
    alone, losses = _returns(lab)
    assert [len(r) for r in alone] == [24, 24]

    noise_stop = threading.Event()

    def other_work():  # draws from both global generators the whole time
        while not noise_stop.is_set():
            np.random.random(100)
            torch.rand(100)
            _returns(_lab({"agent": "reinforce", "episodes": 4, "envs": 2}, seed=5))

    thread = threading.Thread(target=other_work)
    thread.start()
    try:
        np.random.seed(123)
        torch.manual_seed(123)
        beside, losses_beside = _returns(lab)
    finally:
        noise_stop.set()
        thread.join()
    assert beside == alone
    np.testing.assert_array_equal(losses_beside, losses)
    other, _ = _returns(_lab({"agent": "reinforce", "episodes": 24, "envs": 4},
                             [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}],
                             seed=1))
    assert other[0] != alone[0]  # the seed matters


def test_runs_share_initial_network_and_start_states():
    lab = _lab({"agent": "reinforce", "episodes": 8, "envs": 8},
               [{"label": "A", "optimizer": "adam", "params": {"lr": 0.01}},
                {"label": "B", "optimizer": "sgd", "params": {"lr": 0.0}}])
    race = RLRace(lab)
    first = next(race.records())
    # Same network, same starts, same action stream: the first round is the same for both.
    np.testing.assert_array_equal(first.returns[0], first.returns[1])
    np.testing.assert_array_equal(first.cart[0], first.cart[1])


def test_reinforce_with_adam_learns_cartpole():
    """A smaller version of the lesson's claim (which needs ≥ 195 over 100 episodes on 4 of 5
    seeds): within 200 episodes the mean of the last 50 is at least 3× the first 50's."""
    returns, _ = _returns(_lab({"agent": "reinforce", "episodes": 200, "envs": 8}))
    first, last = np.mean(returns[0][:50]), np.mean(returns[0][-50:])
    assert last >= 3 * first and last >= 100, (first, last)


def _dqn_lab(**extra):
    runs = extra.pop("runs", None) or [{"label": "Adam", "optimizer": "adam",
                                       "params": {"lr": 0.001}, **extra.pop("run", {})}]
    problem = {"agent": "dqn", "episodes": 30, "envs": 2, "target_every": 7, "buffer": 500,
               "batch_size": 16, "learning_starts": 32, "epsilon": [1.0, 0.1, 200], **extra}
    return _lab(problem, runs)


def test_dqn_target_network_changes_only_every_n_updates():
    race = RLRace(_dqn_lab())
    agent = race.agents[0]

    def target_vector():
        return torch.cat([p.detach().flatten().clone() for p in agent.target.parameters()])

    before = target_vector()
    changes, flags = [], []
    for record in race.records():
        now = target_vector()
        changed = not torch.equal(now, before)
        before = now
        if changed:
            changes.append(agent.updates)
            assert torch.equal(now, torch.cat([p.detach().flatten()
                                               for p in agent.model.parameters()]))
        if record.target_update[0]:
            flags.append(agent.updates)
        if np.isfinite(record.loss[0]) and not record.target_update[0]:
            assert not changed
    assert agent.updates > 30
    assert changes == flags == list(range(7, agent.updates + 1, 7))


def test_adam_rel_sets_the_step_counter_to_zero_at_target_updates():
    def counters(adam_rel):
        race = RLRace(_dqn_lab(run={"adam_rel": adam_rel}))
        return [(r.opt_step[0], bool(r.target_update[0])) for r in race.records()
                if np.isfinite(r.loss[0])]

    plain, rel = counters(False), counters(True)
    assert [s for s, _ in plain] == list(range(1, len(plain) + 1))
    # The counter at each target update (read before the reset) counts only since the last one,
    after = [s for s, flag in rel if flag]
    assert len(after) >= 3 and all(s == 7 for s in after)
    # and the update after a reset is step 1 again: bias correction starts over.
    following = [rel[k + 1][0] for k, (_, flag) in enumerate(rel[:-1]) if flag]
    assert following and all(s == 1 for s in following)


def test_adam_rel_is_refused_without_a_step_counter_or_a_target_network():
    with pytest.raises(LabError) as err:
        RLRace(_dqn_lab(runs=[{"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.01},
                               "adam_rel": True}]))
    assert err.value.field == "runs[0].adam_rel" and "step counter" in err.value.message
    with pytest.raises(LabError) as err:
        _lab({"agent": "reinforce"}, [{"optimizer": "adam", "adam_rel": True}])
    assert err.value.field == "runs[0].adam_rel" and "dqn" in err.value.message


@pytest.mark.parametrize("key, value, field, allowed", [
    ("episodes", 10**9, "problem.episodes", "[1, 20000]"),
    ("gamma", 2, "problem.gamma", "[0, 1]"),
    ("envs", 0, "problem.envs", "[1, 64]"),
    ("agent", "ppo", "problem.agent", "reinforce, dqn"),
    ("target_every", 5, "problem.target_every", "only the dqn agent"),
])
def test_bad_rl_input_names_the_field_and_range(key, value, field, allowed):
    with pytest.raises(LabError) as err:
        _lab({"agent": "reinforce", key: value})
    assert err.value.field == field and allowed in err.value.message


def test_rl_lab_round_trips():
    lab = _dqn_lab(run={"adam_rel": True})
    again = lab_from_dict(lab_to_dict(lab))
    assert again == lab and again.runs[0].adam_rel
    assert lab_to_dict(lab)["problem"]["target_every"] == 7


def test_main_run_writes_summary_and_metrics(tmp_path):
    lab = _lab({"agent": "reinforce", "episodes": 16, "envs": 8},
               [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
                {"label": "RMSprop", "optimizer": "rmsprop", "params": {"lr": 0.001}}])
    summary = run_to_dir(lab, tmp_path)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary and written["problem"] == "rl"
    assert [r["episodes"] for r in written["runs"]] == [16, 16]
    assert [r["updates"] for r in written["runs"]] == [2, 2]
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "run,episode,round,return" and len(rows) == 1 + 32
    returns, _ = _returns(lab)
    assert [float(r.split(",")[3]) for r in rows[1:] if r.startswith("Adam,")] == returns[0]
    updates = (tmp_path / "updates.csv").read_text().splitlines()
    assert len(updates) == 1 + 4 and updates[1].split(",")[5] != ""  # Adam's ‖m‖


# --- the lesson's claims ---------------------------------------------------------------------

def test_rl_claims_judge_returns_and_gradient_jumps():
    from core.engine.rl_runner import solved_at
    from core.teaching.lessons.registry import CLAIM_KINDS
    from core.teaching.lessons.trace import RunTrace

    lab = _lab({"agent": "reinforce"})
    late = RunTrace("late", lab, network=False, returns=[0.0] * 150 + [195.0] * 100)
    never = RunTrace("never", lab, network=False, returns=[190.0] * 300)
    assert solved_at(late.returns) == 250 and solved_at(never.returns) is None
    traces = {"late": late, "never": never}
    solved = CLAIM_KINDS["rl_solved"].check
    assert solved({"runs": ["late", "never"], "within": 250, "at_least_runs": 1}, traces)[0]
    assert not solved({"runs": ["late", "never"], "within": 249, "at_least_runs": 1}, traces)[0]
    assert not solved({"runs": ["late", "never"], "within": 300, "at_least_runs": 2}, traces)[0]
    # Gradient 1 everywhere except 3.0 in the 10 updates after each copy (at updates 20 and 40).
    grad = np.ones(60)
    grad[20:30] = grad[40:50] = 3.0
    flags = np.zeros(60, dtype=bool)
    flags[[19, 39]] = True
    dqn = RunTrace("dqn", lab, network=False, update_grad_norm=grad.tolist(),
                   target_update=flags.tolist())
    jump = CLAIM_KINDS["grad_jump_at_targets"].check
    holds, measured, values = jump({"run": "dqn", "factor": 2.9}, {"dqn": dqn})
    assert holds and values["ratio"] == pytest.approx(3.0), measured
    assert not jump({"run": "dqn", "factor": 3.1}, {"dqn": dqn})[0]


def test_acting_in_numpy_matches_the_torch_network():
    from core.engine.rl_agents import numpy_forward
    from core.engine.rl_race import initial_agent_model

    for layers in ([{"linear": 32}, {"act": "tanh"}, {"linear": 2}],
                   [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "sigmoid"},
                    {"linear": 2}]):
        model = initial_agent_model(_lab({"agent": "reinforce", "model": {"layers": layers}}))
        obs = np.random.default_rng(0).normal(size=(8, 4))
        with torch.no_grad():
            expected = model(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        np.testing.assert_allclose(numpy_forward(model, obs), expected, rtol=1e-5, atol=1e-6)
    gelu = initial_agent_model(_lab({"agent": "reinforce", "model": {
        "layers": [{"linear": 8}, {"act": "gelu"}, {"linear": 2}]}}))
    assert numpy_forward(gelu, np.zeros((1, 4))) is None  # acts through torch instead


def test_tools_refuse_rl_labs_with_the_reason():
    from core.teaching.script_export import export_script
    from core.tools.lr_finder import lr_range_test
    from core.tools.sweep.spec import SweepSpec, check_spec

    lab = _lab({"agent": "reinforce", "episodes": 8})
    with pytest.raises(LabError, match="rl labs have none") as err:
        lr_range_test(lab)
    assert err.value.field == "problem.kind"
    with pytest.raises(LabError, match="does not write rl labs"):
        export_script(lab)
    with pytest.raises(LabError, match="sweeps of rl labs"):
        check_spec(SweepSpec(lab=lab, run="Adam", params=()))


def _reference_step(state, running, steps, actions):
    """`CartPoles.step` as first written: gym's formulas through `cartpole_derivatives`, four
    column updates, the end tests one by one."""
    from core.problems.rl.cartpole import MAX_STEPS, TAU, cartpole_derivatives

    s = state.copy()
    x_acc, theta_acc = cartpole_derivatives(s, np.where(actions == 1, 10.0, -10.0))
    dt = TAU * running
    s[:, 0] += dt * s[:, 1]
    s[:, 1] += dt * x_acc
    s[:, 2] += dt * s[:, 3]
    s[:, 3] += dt * theta_acc
    steps = steps + running
    terminated = running & ((np.abs(s[:, 0]) > 2.4) | (np.abs(s[:, 2]) > 12 * 2 * math.pi / 360))
    truncated = running & (steps >= MAX_STEPS) & ~terminated
    return s, running.astype(np.float64), terminated, truncated, running & ~(terminated | truncated)


def test_the_batched_step_is_bit_for_bit_the_plain_formulas():
    # CartPoles.step computes with preallocated buffers for speed (bench/rl_envs.py); every bit
    # must stay that of the formulas written plainly, through truncation and restarts.
    n = 64
    envs = CartPoles([np.random.default_rng([9, j // 8]) for j in range(n)])
    envs.reset()
    rng = np.random.default_rng(3)
    truncations = terminations = 0
    for _ in range(1500):
        # A balancing push for most, random for some: episodes of every length, some to 500.
        actions = np.where(rng.random(n) < 0.1, rng.integers(0, 2, n),
                           (envs.state[:, 2] + 0.5 * envs.state[:, 3] > 0).astype(np.int64))
        expected = _reference_step(envs.state, envs.running.copy(), envs.steps.copy(), actions)
        got = envs.step(actions)
        for mine, ref in zip((*got, envs.running), expected):
            np.testing.assert_array_equal(mine, ref)
        terminations += int(got[2].sum())
        truncations += int(got[3].sum())
        ended = ~envs.running
        if ended.any():
            envs.reset(ended)
    assert truncations > 0 and terminations > 0


def test_reset_draws_each_environments_starts_in_blocks_from_its_own_generator():
    from core.problems.rl.cartpole import START_BLOCK, START_RANGE

    envs = CartPoles([np.random.default_rng(5), np.random.default_rng(6)])
    first = envs.reset()
    draws = {j: np.random.default_rng(5 + j).uniform(-START_RANGE, START_RANGE, (3 * START_BLOCK, 4))
             for j in range(2)}
    np.testing.assert_array_equal(first, [draws[0][0], draws[1][0]])
    k = [1, 1]
    for t in range(2 * START_BLOCK + 5):  # env 0 restarts every time, env 1 every third
        which = np.array([True, t % 3 == 0])
        obs = envs.reset(which)
        for j in np.flatnonzero(which):
            np.testing.assert_array_equal(obs[j], draws[j][k[j]])
            k[j] += 1


def test_a_state_array_put_in_place_of_the_old_one_is_the_one_stepped():
    envs = CartPoles([np.random.default_rng(j) for j in range(4)])
    envs.reset()
    envs.step(np.ones(4, dtype=np.int64))  # the step's views are now of the first array
    fresh = np.random.default_rng(1).uniform(-0.05, 0.05, (4, 4))
    envs.state = fresh.copy()
    actions = np.array([0, 1, 0, 1])
    expected = _reference_step(fresh, envs.running.copy(), envs.steps.copy(), actions)
    np.testing.assert_array_equal(envs.step(actions)[0], expected[0])
