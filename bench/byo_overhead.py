"""byo-overhead: the user's own optimizer in the batched 8-run race vs torch.optim.Adam there.

Ours: ``make_race`` on the side-by-side lab (8 Adam runs with different learning rates, a
2-16-16-2 MLP, 512 moons points, full batch; core/engine/stacked.py's batched path), each run
naming ``{"class": "my_adam.py:MyAdam"}``: Adam's algorithm written out in a file (no call into
torch's Adam), loaded through a lab with consent like any user's file. Such a class steps each
run's own layers one run at a time (core/engine/stacked.py, module docstring).

Baseline: the same race with torch.optim.Adam (grouped and fused on the flat rows). Ratio:
torch's time / ours (goal ≥ 0.9×). Before timing, the two races' final losses are compared, so
the number is for the same arithmetic. One thread, interleaved, best of REPEATS.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report
from bench.side_by_side import SAME, STEPS, _lab
from core.engine.devices import configure_threads
from core.engine.factory import make_race
from core.lab.code import TRUST_ALL
from core.lab.format import lab_from_dict, lab_to_dict

REPEATS = 3

# Adam, as a user would write it from the paper (Kingma & Ba, Algorithm 1), torch's eps placement.
MY_ADAM = '''\
import math

import torch


class MyAdam(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(group["eps"])
                p.addcdiv_(exp_avg, denom, value=-group["lr"] / (1 - beta1 ** step))
'''

RUNS = [{"label": f"Adam {i}", "optimizer": "adam", "params": {"lr": 0.002 * (i + 1)}}
        for i in range(8)]


def _labs(folder: Path):
    (folder / "my_adam.py").write_text(MY_ADAM)
    data = lab_to_dict(_lab(SAME[:1], 16))
    torch_lab = lab_from_dict({**data, "runs": RUNS}, base_dir=folder)
    mine = [{**run, "optimizer": {"class": "my_adam.py:MyAdam"}} for run in RUNS]
    user_lab = lab_from_dict({**data, "runs": mine}, base_dir=folder, consent=TRUST_ALL)
    return torch_lab, user_lab


def _time(lab) -> tuple[float, np.ndarray]:
    race = make_race(lab)
    assert race.stack is not None, "the batched path did not engage"
    started = time.perf_counter()
    for record in race.records():
        pass
    return time.perf_counter() - started, record.loss


def run() -> dict:
    configure_threads()
    with tempfile.TemporaryDirectory() as tmp:
        torch_lab, user_lab = _labs(Path(tmp))
        ours, base = [], []
        for _ in range(REPEATS):
            spent, user_loss = _time(user_lab)
            ours.append(spent)
            spent, torch_loss = _time(torch_lab)
            base.append(spent)
    # Same arithmetic up to float32 rounding (torch's fused kernel vs the written-out loop).
    np.testing.assert_allclose(user_loss, torch_loss, rtol=0, atol=1e-4)
    ours_s, base_s = min(ours), min(base)
    steps = len(RUNS) * (STEPS + 1)
    return {"byo-overhead": report(
        "byo-overhead", steps / ours_s, "run-steps/s", base_s / ours_s,
        "torch.optim.Adam in the same race",
        note="a user-file Adam, 8 runs, batched path, 2-16-16-2, 512 moons, full batch; goal ≥ 0.9×",
        ours_s=ours_s, baseline_s=base_s,
    )}
