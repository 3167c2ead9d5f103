"""The check before racing (core/optim/checkup.py): torch.optim passes, each deliberate defect is
named with its evidence, adapters are found by trying, and the report always completes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.optim.check_report import FAILED, NOT_APPLICABLE, PASSED, PROPERTIES, Adapters
from core.optim.checkup import DECREASE_STEPS, Quadratic, check_optimizer

# --------------------------------------------------------------------------------------------
# Deliberately broken optimizers: plain SGD (lr 0.1) with one defect each.


class NoisySGD(torch.optim.Optimizer):
    """Adds a tiny noise drawn from torch's global generator, which no seed of the check controls
    (1e-12: a check that compared with a tolerance instead of bit for bit would miss it)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
                    p.add_(1e-12 * torch.randn_like(p))


class ForgetfulMomentumSGD(torch.optim.Optimizer):
    """Momentum kept in an attribute that state_dict() does not save."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})
        self.velocity: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                v = self.velocity.setdefault(id(p), torch.zeros_like(p))
                v.mul_(group["momentum"]).add_(p.grad)
                p.add_(v, alpha=-group["lr"])


class NormalizedSGD(torch.optim.Optimizer):
    """Steps along g / ‖g‖: 0/0 = NaN on a zero gradient."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad / p.grad.norm(), alpha=-group["lr"])


class BrokenSGD(torch.optim.Optimizer):
    """All three defects at once."""

    def __init__(self, params, lr=0.1, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})
        self.velocity: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                v = self.velocity.setdefault(id(p), torch.zeros_like(p))
                v.mul_(group["momentum"]).add_(p.grad / p.grad.norm())
                p.add_(v + 1e-12 * torch.randn_like(p), alpha=-group["lr"])


class NoGroupsSGD(torch.optim.SGD):
    """Refuses a second param group with its own exception."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, lr=lr)
        if len(self.param_groups) > 1:
            raise ValueError("one param group only, please")


class GlobalLrSGD(torch.optim.Optimizer):
    """Uses the constructor's lr for every group, ignoring a group's own."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-self.defaults["lr"])


class MovesEverything(torch.optim.Optimizer):
    """Decays every parameter it holds, gradient or not (grad None and frozen ones too)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad if p.grad is not None else torch.zeros_like(p)
                p.add_(grad + 0.01 * p, alpha=-group["lr"])


def statuses(report) -> dict[str, str]:
    return {r.key: r.status for r in report.results}


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [torch.optim.SGD, torch.optim.Adam])
def test_torch_sgd_and_adam_pass_every_property(cls):
    report = check_optimizer(cls, timing_repeats=2)
    assert statuses(report) == dict.fromkeys(PROPERTIES, PASSED), report.card()
    assert report.passed and report.failures == ()
    assert report.adapters is not None and report.adapters.names() == ()
    ratio = report.result("step_time").value
    assert ratio is not None and math.isfinite(ratio) and ratio > 0
    assert "Passes every check." in report.card()


def test_decrease_evidence_matches_sgd_closed_form():
    """Plain SGD on ½·Σh(W − W*)²: W_t − W* = (1 − lr·h)^t (W_0 − W*), computed here in float64."""
    lr = 0.05
    report = check_optimizer(torch.optim.SGD, {"lr": lr}, seed=3, timing_repeats=1)
    problem = Quadratic(3)
    expected = sum(
        float((0.5 * h * ((1 - lr * h) ** DECREASE_STEPS * (w0 - t)) ** 2).sum())
        for h, t, w0 in zip(problem.curvature, problem.target, problem.start))
    start = sum(float((0.5 * h * (w0 - t) ** 2).sum())
                for h, t, w0 in zip(problem.curvature, problem.target, problem.start))
    evidence = report.result("decreases").evidence
    assert evidence.startswith(f"loss {start:.4g} → {expected:.4g} after {DECREASE_STEPS} steps")


@pytest.mark.parametrize("cls, broken", [
    (NoisySGD, {"deterministic"}),
    (ForgetfulMomentumSGD, {"state_dict"}),
    (NormalizedSGD, {"zero_gradient"}),
    (BrokenSGD, {"deterministic", "state_dict", "zero_gradient"}),
])
def test_each_broken_property_is_named(cls, broken):
    report = check_optimizer(cls, timing_repeats=1)
    failed = {r.key for r in report.failures}
    assert broken <= failed, report.card()
    # The properties none of them breaks stay green: the card blames what is broken.
    for key in ("decreases", "grad_none", "frozen", "param_groups", "adapters", "step_time"):
        assert report.result(key).status == PASSED, report.card()
    card = report.card(ok="OK", failed="XX")
    for key in broken:
        assert f"XX {PROPERTIES[key]}" in card
    assert f"Fails {len(failed)} of {len(PROPERTIES)} checks" in card


def test_single_defects_blame_only_their_property():
    assert {r.key for r in check_optimizer(ForgetfulMomentumSGD, timing_repeats=1).failures} == {
        "state_dict"}
    assert {r.key for r in check_optimizer(NormalizedSGD, timing_repeats=1).failures} == {
        "zero_gradient"}
    # Non-determinism also breaks an identical resume; the card says where that comes from.
    noisy = check_optimizer(NoisySGD, timing_repeats=1)
    assert {r.key for r in noisy.failures} == {"deterministic", "state_dict"}
    assert "see deterministic" in noisy.result("state_dict").evidence


def test_evidence_says_what_differs_and_where_the_noise_came_from():
    report = check_optimizer(BrokenSGD, seed=7, timing_repeats=1)
    deterministic = report.result("deterministic").evidence
    assert deterministic.startswith("after 20 steps the parameters differ by ")
    assert "between two runs with seed 7" in deterministic
    assert "torch's global generator" in deterministic
    assert "from 20 straight steps" in report.result("state_dict").evidence
    assert "NaN or inf after step 1 (a zero-gradient step" in report.result(
        "zero_gradient").evidence


def test_the_check_never_touches_torchs_global_generator():
    before = torch.get_rng_state()
    check_optimizer(torch.optim.Adam, timing_repeats=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_group_lr_grad_none_and_frozen_defects_are_named():
    ignores_lr = check_optimizer(GlobalLrSGD, timing_repeats=1)
    assert {r.key for r in ignores_lr.failures} == {"param_groups"}, ignores_lr.card()
    assert "were not respected" in ignores_lr.result("param_groups").evidence
    moves = check_optimizer(MovesEverything, timing_repeats=1)
    assert {"grad_none", "frozen"} <= {r.key for r in moves.failures}, moves.card()
    assert "a parameter with grad None moved by" in moves.result("grad_none").evidence
    assert "a frozen parameter moved by" in moves.result("frozen").evidence


def test_a_probe_that_raises_fails_only_that_property_and_the_report_completes():
    report = check_optimizer(NoGroupsSGD, timing_repeats=1)
    assert statuses(report)["param_groups"] == FAILED
    assert report.result("param_groups").evidence == (
        "raised ValueError: one param group only, please")
    assert {r.key for r in report.failures} == {"param_groups"}


def test_an_optimizer_that_cannot_be_built_still_gets_a_complete_card():
    class NeedsBase(torch.optim.SGD):
        def __init__(self, params, base, lr=0.1):
            super().__init__(params, lr=lr)

    report = check_optimizer(NeedsBase, timing_repeats=1)
    assert [r.key for r in report.results] == list(PROPERTIES)
    assert all(r.status == FAILED for r in report.results)
    assert "missing 1 required positional argument: 'base'" in report.result("adapters").evidence
    assert report.adapters is None


def test_param_groups_not_applicable_without_an_lr():
    class NoLr(torch.optim.Optimizer):
        def __init__(self, params, step_size=0.1):
            super().__init__(params, {"step_size": step_size})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["step_size"])

    report = check_optimizer(NoLr, timing_repeats=1)
    assert report.result("param_groups").status == NOT_APPLICABLE
    assert report.passed  # not applicable is not a failure


def test_adapters_found_by_trying():
    lbfgs = check_optimizer(torch.optim.LBFGS, timing_repeats=1)
    assert lbfgs.adapters.names() == ("closure",)
    assert lbfgs.result("adapters").evidence == "closure"
    muon = check_optimizer(torch.optim.Muon, timing_repeats=1)
    assert muon.adapters.names() == ("matrix-only",)
    assert muon.passed, muon.card()


def test_zoo_adapters_create_graph_and_train_eval():
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    schedulefree = pytest.importorskip("schedulefree")
    hessian = check_optimizer(pytorch_optimizer.AdaHessian, timing_repeats=1)
    assert hessian.adapters.names() == ("create-graph",)
    assert hessian.passed, hessian.card()
    free = check_optimizer(schedulefree.AdamWScheduleFree, timing_repeats=1)
    assert free.adapters.names() == ("train-eval",)
    assert "at the evaluation point" in free.result("decreases").evidence
    assert free.passed, free.card()


def test_zoo_lion_checks_clean():
    lion = pytest.importorskip("pytorch_optimizer").Lion
    report = check_optimizer(lion, name="pytorch_optimizer:Lion")
    assert report.passed, report.card()
    assert report.card().startswith("Check of pytorch_optimizer:Lion (its defaults), seed 0")


def test_build_hook_and_json():
    def build(params, kwargs):
        return torch.optim.SGD(params, lr=kwargs["lr"], momentum=0.5)

    report = check_optimizer(torch.optim.SGD, {"lr": 0.02}, build=build, name="sgd",
                             timing_repeats=1)
    data = json.loads(json.dumps(report.to_json()))
    assert data["optimizer"] == "sgd" and data["kwargs"] == {"lr": 0.02}
    assert data["passed"] is True and data["failed"] == [] and data["adapters"] == []
    assert [r["key"] for r in data["results"]] == list(PROPERTIES)
    assert "group 0 (lr 0.02)" in report.result("param_groups").evidence
    broken = check_optimizer(BrokenSGD, timing_repeats=1).to_json()
    assert {"deterministic", "state_dict", "zero_gradient"} <= set(broken["failed"])
    assert broken["passed"] is False


def test_adapters_the_description_does_not_declare_fail():
    """A race applies what the optimizer's description declares (core/optim/optimizers.py's
    OptimizerInfo): a closure it needs but the description lacks would break every race."""
    undeclared = check_optimizer(torch.optim.LBFGS, declared=Adapters(), timing_repeats=1)
    assert undeclared.result("adapters").status == FAILED
    assert undeclared.result("adapters").evidence == (
        "needs closure, which its description does not declare (a race would step it without)")
    declared = check_optimizer(torch.optim.LBFGS, declared=Adapters(closure=True),
                               timing_repeats=1)
    assert declared.result("adapters").status == PASSED
    # Declaring more than needed is how a race hands only matrices to a matrix optimizer.
    extra = check_optimizer(torch.optim.SGD, declared=Adapters(matrix_only=True),
                            timing_repeats=1)
    assert extra.passed, extra.card()
    assert extra.result("adapters").evidence == (
        "none (plain backward() and step()); its description also applies matrix-only")


def test_a_state_dtype_that_load_state_dict_changes_is_named():
    """torch's load_state_dict casts floating state to the parameter's dtype: momentum kept in
    float32 beside float64 parameters comes back as float64 and the resumed run drifts."""

    class Float32Momentum(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1, momentum=0.9):
            super().__init__(params, {"lr": lr, "momentum": momentum})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if "buf" not in state:
                        state["buf"] = torch.zeros(p.shape, dtype=torch.float32)
                    buf = state["buf"]
                    buf.mul_(group["momentum"]).add_(p.grad.to(buf.dtype))
                    p.add_(buf.to(p.dtype), alpha=-group["lr"])

    report = check_optimizer(Float32Momentum, timing_repeats=1)
    assert {r.key for r in report.failures} == {"state_dict"}, report.card()
    assert report.result("state_dict").evidence.endswith(
        "; load_state_dict cast its state 'buf' from torch.float32 to torch.float64 "
        "(torch casts floating state to the parameter's dtype)")


def test_state_entries_that_are_not_a_parameters_dict_are_fine():
    """MADGRAD keeps a tensor under a string key of ``self.state``; torch saves and loads it."""

    class CountingSGD(torch.optim.SGD):
        @torch.no_grad()
        def step(self, closure=None):
            self.state["k"] = self.state.get("k", torch.zeros(())) + 1
            return super().step(closure)

    report = check_optimizer(CountingSGD, timing_repeats=1)
    assert report.passed, report.card()
