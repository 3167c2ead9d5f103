"""Describing an optimizer class from its constructor (core/optim/introspect.py, core/optim/probe.py).

Checked against the classes themselves: defaults against what the constructor puts in
``optimizer.defaults``, adapters against small classes built to need exactly one of them.
"""

from __future__ import annotations

from typing import Literal

import pytest
import torch

from core.errors import LabError
from core.optim.docstrings import docstring_help
from core.optim.introspect import (
    BASE_OPTIMIZER_CHOICES,
    NotRaceable,
    apply_overrides,
    hyperparam_for,
    introspect,
)


def describe(cls, overrides=None):
    return introspect(cls, name=f"/tmp/opts.py:{cls.__name__}", title=cls.__name__,
                      group="yours", origin="/tmp/opts.py", overrides=overrides)


class PlainSGD(torch.optim.Optimizer):
    """Gradient descent, written out.

    Args:
        params: what to optimise.
        lr (float): Learning rate: the step length.
        mode: how to scale the step,
            over two lines.
        flavour: a choice that may be off.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.0, mode: Literal["plain", "sign"] = "plain",
                 flavour: Literal["a", "b"] | None = None, steps: int = 3, betas=(0.9, 0.99),
                 triple=(0.1, 0.2, 0.3), foreach: bool | None = None, scale=lambda x: x):
        super().__init__(params, dict(lr=lr, momentum=momentum, mode=mode))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    g = p.grad.sign() if group["mode"] == "sign" else p.grad
                    p.add_(g, alpha=-group["lr"])


def test_lion_defaults_equal_its_constructor():
    import pytorch_optimizer

    info = describe(pytorch_optimizer.Lion)
    built = pytorch_optimizer.Lion([torch.nn.Parameter(torch.zeros(2))])
    for name in ("lr", "betas", "weight_decay"):
        assert info.hyperparam(name).default == built.defaults[name], name
    assert info.hyperparam("lr").log and info.hyperparam("lr").low == 0.0
    betas = info.hyperparam("betas")
    assert (betas.kind, betas.low, betas.high, betas.high_inclusive) == ("pair", 0.0, 1.0, False)
    assert info.hyperparam("weight_decay").log
    assert "foreach" not in [hp.name for hp in info.hyperparams]


def test_kinds_and_ranges_from_the_signature():
    info = describe(PlainSGD)
    names = [hp.name for hp in info.hyperparams]
    # No implementation switch, no triple, no callable: they keep the constructor's default.
    assert names == ["lr", "momentum", "mode", "flavour", "steps", "betas"]
    mode = info.hyperparam("mode")
    assert (mode.kind, mode.default, mode.choices) == ("choice", "plain", ("plain", "sign"))
    flavour = info.hyperparam("flavour")  # Optional[Literal]: "none" stands for None
    assert (flavour.default, flavour.choices) == ("none", ("none", "a", "b"))
    assert info.torch_kwargs({"flavour": "none"}) == {"flavour": None}
    momentum = info.hyperparam("momentum")
    assert (momentum.kind, momentum.low, momentum.high) == ("float", 0.0, 1.0)
    steps = info.hyperparam("steps")
    assert (steps.kind, steps.default, steps.low) == ("int", 3, 1)
    with pytest.raises(LabError, match="must be one of 'plain', 'sign'"):
        mode.validate("fancy", "params.mode")


def test_a_literal_argument_of_the_zoo_becomes_a_choice():
    import pytorch_optimizer

    sophia = describe(pytorch_optimizer.SophiaH)
    hp = sophia.hyperparam("hessian_distribution")
    assert (hp.kind, hp.default, hp.choices) == ("choice", "gaussian", ("gaussian", "rademacher"))


def test_hyperparam_ranges_by_name():
    assert hyperparam_for("eps", 1e-8, float).search == (1e-12, 1e-4)
    assert hyperparam_for("weight_decay", 0.01, float).low == 0.0
    assert hyperparam_for("weight_lr_power", 2.0, float).search == (0.2, 20.0)  # not a learning rate
    assert hyperparam_for("shampoo_beta", None, float | None).derived  # None: the optimizer decides
    negative = hyperparam_for("decay_rate", -0.8, float)
    assert negative.low is None and negative.validate(-0.5, "x") == -0.5
    assert hyperparam_for("growth_rate", float("inf"), float) is None  # not representable
    assert hyperparam_for("weight_decay", 0, float).kind == "float"  # `float = 0` is a float
    assert hyperparam_for("rank", -1, int).low is None  # a sentinel, not a count
    eps = hyperparam_for("eps", (None, 1e-3), tuple)  # torch Adafactor's: None is "automatic"
    assert (eps.kind, eps.default, eps.low) == ("pair", (None, 1e-3), 0.0)
    assert eps.validate([None, 0.01], "params.eps") == (None, 0.01)
    assert hyperparam_for("eps", (None, None), tuple) is None


def test_tooltips_from_google_numpy_and_sphinx_docstrings():
    import pytorch_optimizer

    lion = describe(pytorch_optimizer.Lion)
    assert lion.hyperparam("weight_decay").tooltip == "Weight decay coefficient."
    info = describe(PlainSGD)
    assert info.hyperparam("lr").tooltip == "Learning rate: the step length."
    assert info.hyperparam("mode").tooltip == "How to scale the step, over two lines."

    class Numpy:
        """Numpy style.

        Parameters
        ----------
        lr : float
            The learning rate,
            on two lines.
        beta : float
            Smoothing.

        Returns
        -------
        nothing : None
            Not an argument.
        """

    class Sphinx:
        """Old pytorch-optimizer style.

        :param params: PARAMETERS. iterable of parameters.
        :param lr: float. learning rate.
        :param betas: BETAS. coefficients used for computing running averages
            of gradient and the squared hessian trace.
        """

    assert docstring_help(Numpy) == {"lr": "The learning rate, on two lines.", "beta": "Smoothing."}
    sphinx = docstring_help(Sphinx)
    assert sphinx["lr"] == "Learning rate."
    assert sphinx["betas"] == ("Coefficients used for computing running averages of gradient "
                               "and the squared hessian trace.")


def test_overrides_apply():
    info = describe(PlainSGD, overrides={
        "lr": {"default": 0.05, "low": 0, "high": 1, "log": True, "search": [1e-4, 0.5],
               "help": "How far to go."},
        "mode": {"choices": ["plain", "sign"], "default": "sign"},
    })
    lr = info.hyperparam("lr")
    assert (lr.default, lr.low, lr.high, lr.log, lr.search, lr.tooltip) == (
        0.05, 0, 1, True, (1e-4, 0.5), "How far to go.")
    assert info.hyperparam("mode").default == "sign"
    with pytest.raises(LabError, match=r"must be in \[0, 1\], got 2"):
        lr.validate(2, "params.lr")
    # The file's defaults are what races when a run sets nothing; a run's value still wins.
    weight = torch.nn.Parameter(torch.ones(2))
    built = info.build([weight], {})
    assert (built.defaults["lr"], built.defaults["mode"]) == (0.05, "sign")
    assert info.build([weight], {"lr": 0.2}).defaults["lr"] == 0.2
    assert describe(PlainSGD).build is None  # nothing to preset without overrides


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lrr": {"default": 1}}, "HYPERPARAMS.lrr", "allowed: lr, momentum"),
        ({"lr": 0.1}, "HYPERPARAMS.lr", "must be a dict"),
        ({"lr": {"low": "zero"}}, "HYPERPARAMS.lr.low", "finite number"),
        ({"lr": {"low": 1, "high": 0.5}}, "HYPERPARAMS.lr.high", "above low"),
        ({"lr": {"default": -1}}, "HYPERPARAMS.lr.default", ">= 0"),
        ({"lr": {"search": [0.5]}}, "HYPERPARAMS.lr.search", "two finite numbers"),
        ({"lr": {"high": 1, "search": [0.1, 5]}}, "HYPERPARAMS.lr.search", "within the allowed range"),
        ({"lr": {"log": "yes"}}, "HYPERPARAMS.lr.log", "true or false"),
        ({"lr": {"colour": "red"}}, "HYPERPARAMS.lr.colour", "unknown key"),
        ({"mode": {"low": 0}}, "HYPERPARAMS.mode.low", "does not apply to a choice"),
        ({"mode": {"default": "fancy"}}, "HYPERPARAMS.mode.default", "one of 'plain', 'sign'"),
        ([1, 2], "HYPERPARAMS", "must be a dict"),
    ],
)
def test_a_bad_override_names_the_key(overrides, field, message):
    with pytest.raises(LabError) as caught:
        describe(PlainSGD, overrides=overrides)
    assert caught.value.field == field
    assert message in caught.value.message


def test_apply_overrides_keeps_the_order():
    specs = list(describe(PlainSGD).hyperparams)
    out = apply_overrides(specs, {"steps": {"default": 5}})
    assert [hp.name for hp in out] == [hp.name for hp in specs]
    assert out[4].default == 5


class NeedsModel(torch.optim.Optimizer):
    def __init__(self, params, model, lr=0.1):
        super().__init__(params, {"lr": lr})


class NeedsCount(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1, *, total_steps: int):
        super().__init__(params, {"lr": lr})


def test_a_required_argument_refuses_with_the_reason():
    with pytest.raises(NotRaceable) as caught:
        describe(NeedsModel)
    assert caught.value.field == "optimizer"
    assert "NeedsModel cannot race: needs model: it takes the whole network" in str(caught.value)
    with pytest.raises(NotRaceable, match="needs total_steps: a required argument with no default"):
        describe(NeedsCount)
    with pytest.raises(LabError, match="not a torch.optim.Optimizer subclass"):
        describe(dict)


class MiniSAM(torch.optim.Optimizer):
    """SAM-style: perturb, recompute the gradient in the closure, step the base optimizer."""

    def __init__(self, params, base_optimizer, rho: float = 0.05, **kwargs):
        super().__init__(params, {"rho": rho, **kwargs})
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise RuntimeError("MiniSAM needs a closure")
        grads = [p.grad.clone() for group in self.param_groups for p in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        norm = torch.sqrt(sum(g.square().sum() for g in grads)) + 1e-12
        for p, g in zip(params, grads, strict=True):
            p.add_(g, alpha=self.defaults["rho"] / float(norm))
        with torch.enable_grad():
            closure()
        for p, g in zip(params, grads, strict=True):
            p.sub_(g, alpha=self.defaults["rho"] / float(norm))
        self.base_optimizer.step()


def test_a_base_optimizer_wrapper_gets_a_choice_and_a_closure():
    info = describe(MiniSAM)
    base = info.hyperparam("base_optimizer")
    assert (base.kind, base.default) == ("choice", "sgd")
    assert base.choices == BASE_OPTIMIZER_CHOICES and "adamw" in base.choices
    assert "lbfgs" not in base.choices and "muon" not in base.choices
    assert info.hyperparam("lr").default == 1e-3  # handed to the base optimizer
    assert info.needs_closure
    built = info.build([torch.nn.Parameter(torch.ones(2))], {"base_optimizer": "rmsprop", "lr": 0.5})
    assert isinstance(built.base_optimizer, torch.optim.RMSprop)
    assert built.base_optimizer.param_groups[0]["lr"] == 0.5


class MatrixOnly(PlainSGD):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError("MatrixOnly orthogonalises 2-D weights only")
                p.add_(p.grad, alpha=-group["lr"])


class CurvatureStep(PlainSGD):
    """Divides by a Hessian-vector product, so the gradient must carry its graph."""

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        with torch.enable_grad():
            hvp = torch.autograd.grad([p.grad for p in params], params, grad_outputs=[
                torch.ones_like(p) for p in params])
        for p, h in zip(params, hvp, strict=True):
            p.sub_(0.1 * p.grad / (h.abs() + 1.0))


class TwoPoints(PlainSGD):
    """Schedule-Free-style: must be in train mode to step."""

    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, lr=lr)
        self.training = False

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def step(self, closure=None):
        if not self.training:
            raise RuntimeError("call train() first")
        return super().step(closure)


def test_adapters_are_found_by_probing():
    plain = describe(PlainSGD)
    assert (plain.needs_closure, plain.create_graph, plain.train_eval, plain.min_param_ndim) == (
        False, False, False, 0)
    assert describe(MatrixOnly).min_param_ndim == 2
    curvature = describe(CurvatureStep)
    assert curvature.create_graph and not curvature.needs_closure
    assert describe(TwoPoints).train_eval


class AlwaysNaN(PlainSGD):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(float("nan"))


class Raises(PlainSGD):
    def step(self, closure=None):
        raise ZeroDivisionError("my bug")


def test_a_class_that_fails_the_tiny_problem_is_refused_with_the_evidence():
    with pytest.raises(NotRaceable, match="NaN or infinite"):
        describe(AlwaysNaN)
    with pytest.raises(NotRaceable, match="ZeroDivisionError: my bug"):
        describe(Raises)
