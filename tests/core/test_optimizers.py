"""The optimizer registry against torch.optim itself: coverage, defaults, validation, construction."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import LabError
from core.optim.catalog import build_optimizer, get_optimizer_info, validate_optimizer_params
from core.optim.hyperparams import HyperParam
from core.optim.optimizers import OPTIMIZERS, unprofiled_step

# torch constructor arguments that are implementation switches, not math: never exposed.
IMPLEMENTATION_SWITCHES = {"params", "self", "foreach", "fused", "capturable", "differentiable"}
# Math arguments deliberately not exposed (documented in core/optim/optimizers.py).
NOT_EXPOSED = {("muon", "ns_coefficients")}
# Where our default spells out what torch's None means (documented in core/optim/optimizers.py).
EXPLICIT_DEFAULTS = {("muon", "adjust_lr_fn"): ("original", None)}

HYPOTHESIS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def torch_optimizer_classes() -> dict[str, type]:
    return {
        name.lower(): cls
        for name, cls in vars(torch.optim).items()
        if inspect.isclass(cls)
        and issubclass(cls, torch.optim.Optimizer)
        and cls is not torch.optim.Optimizer
    }


def constructor_parameters(cls: type) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls.__init__).parameters)


def fresh_parameter(info=None) -> torch.Tensor:
    # 2-D so that Muon (matrices only) works too; every other optimizer accepts any shape.
    return torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)


def take_one_step(optimizer: torch.optim.Optimizer, tensor: torch.Tensor, info) -> None:
    def loss_and_grad():
        optimizer.zero_grad()
        loss = (tensor**2).sum() + tensor.sum()
        loss.backward()
        return loss

    if info.needs_closure:
        optimizer.step(loss_and_grad)
    else:
        loss_and_grad()
        optimizer.step()


# ------------------------------------------------------------------------------ coverage


def test_registry_covers_every_torch_optimizer_except_sparse_adam():
    expected = set(torch_optimizer_classes()) - {"sparseadam"}
    missing = expected - set(OPTIMIZERS)
    assert not missing, f"torch.optim has optimizers the registry lacks: {sorted(missing)}"
    assert set(OPTIMIZERS) == expected


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_entry_is_the_lower_case_torch_class(name):
    info = OPTIMIZERS[name]
    assert info.name == name == info.cls.__name__.lower()
    assert torch_optimizer_classes()[name] is info.cls


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_math_argument_of_the_constructor_is_exposed(name):
    info = OPTIMIZERS[name]
    signature = constructor_parameters(info.cls)
    exposed = {hp.name for hp in info.hyperparams}
    assert exposed <= set(signature), f"not torch arguments: {exposed - set(signature)}"
    math_arguments = {
        arg for arg in signature if arg not in IMPLEMENTATION_SWITCHES and (name, arg) not in NOT_EXPOSED
    }
    assert math_arguments == exposed


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_defaults_equal_torch_signature_defaults(name):
    info = OPTIMIZERS[name]
    signature = constructor_parameters(info.cls)
    for hp in info.hyperparams:
        if hp.default is None:
            assert signature[hp.name].default is None, hp.name
            continue
        ours = hp.to_torch(hp.default)
        theirs = signature[hp.name].default
        if (name, hp.name) in EXPLICIT_DEFAULTS:
            assert (ours, theirs) == EXPLICIT_DEFAULTS[(name, hp.name)]
            continue
        assert ours == theirs, f"{name}.{hp.name}: registry {ours!r} != torch {theirs!r}"
        assert type(ours) is not bool or type(theirs) is bool, f"{name}.{hp.name}"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_defaults_pass_validation_and_build(name):
    info = OPTIMIZERS[name]
    assert validate_optimizer_params(name, info.defaults()) == info.defaults()
    tensor = fresh_parameter(info)
    optimizer = build_optimizer(name, info.defaults(), [tensor])
    take_one_step(optimizer, tensor, info)
    assert torch.isfinite(tensor).all()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_texts_for_students(name):
    info = OPTIMIZERS[name]
    assert info.title and info.description
    assert "←" in info.update_rule and "\n" in info.update_rule
    for hp in info.hyperparams:
        assert hp.tooltip.endswith("."), f"{name}.{hp.name}"
        assert ". " not in hp.tooltip.rstrip("."), f"{name}.{hp.name}: one sentence please"


def test_only_lbfgs_needs_a_closure_and_only_muon_needs_matrices():
    assert {n for n, i in OPTIMIZERS.items() if i.needs_closure} == {"lbfgs"}
    assert {n: i.min_param_ndim for n, i in OPTIMIZERS.items() if i.min_param_ndim} == {"muon": 2}


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("name", "params", "field", "fragments"),
    [
        ("sgd", {"lr": -0.1}, "runs[0].params.lr", [">= 0", "-0.1"]),
        ("adam", {"betas": (1.0, 0.9)}, "runs[0].params.betas[0]", ["[0, 1)", "got 1"]),
        ("adam", {"betas": [0.9, 1.5]}, "runs[0].params.betas[1]", ["[0, 1)", "1.5"]),
        ("adam", {"betas": [0.9]}, "runs[0].params.betas", ["pair", "[0, 1)"]),
        ("sgd", {"momentum": -1}, "runs[0].params.momentum", [">= 0", "-1"]),
        ("sgd", {"nesterov": True}, "runs[0].params.nesterov", ["momentum > 0", "dampening = 0"]),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "runs[0].params.nesterov", ["dampening = 0"]),
        ("sgd", {"lr": "0.1"}, "runs[0].params.lr", [">= 0", "'0.1'"]),
        ("sgd", {"lr": float("nan")}, "runs[0].params.lr", ["finite", ">= 0", "nan"]),
        ("sgd", {"lr": float("inf")}, "runs[0].params.lr", ["finite", ">= 0"]),
        ("sgd", {"lr": True}, "runs[0].params.lr", ["number >= 0", "true"]),
        ("sgd", {"nesterov": 1}, "runs[0].params.nesterov", ["true or false"]),
        ("sgd", {"dampening": 1.5}, "runs[0].params.dampening", ["[0, 1]"]),
        ("rmsprop", {"alpha": 1.2}, "runs[0].params.alpha", ["[0, 1]", "1.2"]),
        ("adadelta", {"rho": -0.5}, "runs[0].params.rho", ["[0, 1]"]),
        ("rprop", {"etas": (0.5, 0.9)}, "runs[0].params.etas", ["< 1 <"]),
        ("rprop", {"etas": (0.0, 1.2)}, "runs[0].params.etas[0]", ["> 0"]),
        ("rprop", {"step_sizes": (1.0, 0.5)}, "runs[0].params.step_sizes", ["minimum <= maximum"]),
        ("adafactor", {"beta2_decay": 0.5}, "runs[0].params.beta2_decay", ["<= 0"]),
        ("adafactor", {"d": 0.5}, "runs[0].params.d", [">= 1"]),
        ("adafactor", {"eps": (None, None)}, "runs[0].params.eps[1]", [">= 0", "null"]),
        ("muon", {"ns_steps": 100}, "runs[0].params.ns_steps", ["[1, 99]"]),
        ("muon", {"adjust_lr_fn": "fast"}, "runs[0].params.adjust_lr_fn", ["'original'", "'match_rms_adamw'"]),
        ("lbfgs", {"history_size": 0}, "runs[0].params.history_size", [">= 1", "got 0"]),
        ("lbfgs", {"max_iter": 2.5}, "runs[0].params.max_iter", ["whole number >= 1", "2.5"]),
        ("lbfgs", {"line_search_fn": "wolfe"}, "runs[0].params.line_search_fn", ["'none'", "'strong_wolfe'"]),
    ],
)
def test_invalid_values_name_field_and_range(name, params, field, fragments):
    with pytest.raises(LabError) as caught:
        validate_optimizer_params(name, params, field="runs[0].params")
    assert caught.value.field == field
    message = str(caught.value)
    assert message.startswith(f"{field}: ")
    for fragment in fragments:
        assert fragment in message


def test_unknown_key_lists_the_allowed_names():
    with pytest.raises(LabError) as caught:
        validate_optimizer_params("sgd", {"learning_rate": 0.1}, field="runs[2].params")
    assert caught.value.field == "runs[2].params.learning_rate"
    for name in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"):
        assert name in str(caught.value)


def test_implementation_switches_are_refused():
    for switch in ("foreach", "fused", "capturable", "differentiable"):
        with pytest.raises(LabError):
            validate_optimizer_params("adam", {switch: False})


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(LabError) as caught:
        get_optimizer_info("sparseadam", field="runs[0].optimizer")
    assert caught.value.field == "runs[0].optimizer"
    assert "adamw" in str(caught.value) and "lbfgs" in str(caught.value)


def test_params_must_be_a_mapping():
    with pytest.raises(LabError, match="params"):
        validate_optimizer_params("sgd", [("lr", 0.1)])


def test_cleaning_turns_json_into_torch_types():
    cleaned = validate_optimizer_params(
        "adam", {"lr": 1, "betas": [0.8, 0.99], "amsgrad": True}
    )
    assert cleaned == {"lr": 1.0, "betas": (0.8, 0.99), "amsgrad": True}
    assert type(cleaned["lr"]) is float and type(cleaned["betas"]) is tuple
    assert validate_optimizer_params("lbfgs", {"max_iter": 5.0, "line_search_fn": None}) == {
        "max_iter": 5,
        "line_search_fn": "none",
    }
    assert validate_optimizer_params("lbfgs", {"max_eval": None}) == {"max_eval": None}
    assert validate_optimizer_params("adafactor", {"eps": [None, 1e-3]}) == {"eps": (None, 1e-3)}


@pytest.mark.parametrize("ns_steps", [1, 99])
def test_muon_steps_at_both_ends_of_ns_steps(ns_steps):
    info = OPTIMIZERS["muon"]
    tensor = fresh_parameter(info)
    optimizer = build_optimizer("muon", {"ns_steps": ns_steps, "adjust_lr_fn": "match_rms_adamw"}, [tensor])
    take_one_step(optimizer, tensor, info)
    assert torch.isfinite(tensor).all()


def test_muon_refuses_parameters_that_are_not_matrices():
    with pytest.raises(LabError, match="2-D"):
        build_optimizer("muon", {}, [torch.zeros(2, requires_grad=True)])
    optimizer = build_optimizer("muon", {"lr": 0.02}, [torch.zeros(3, 2, requires_grad=True)])
    assert optimizer.defaults["lr"] == 0.02


# ------------------------------------------------------------------------------ construction


def test_build_passes_values_unchanged():
    tensor = torch.zeros(2, requires_grad=True)
    params = {"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-4, "nesterov": True}
    optimizer = build_optimizer("sgd", params, [tensor])
    assert isinstance(optimizer, torch.optim.SGD)
    assert {k: optimizer.defaults[k] for k in params} == params

    optimizer = build_optimizer("rprop", {"etas": [0.4, 1.5], "step_sizes": [1e-5, 10]}, [tensor])
    assert optimizer.defaults["etas"] == (0.4, 1.5)
    assert optimizer.defaults["step_sizes"] == (1e-5, 10.0)


def test_lbfgs_line_search_choice_maps_to_torch():
    tensor = torch.zeros(2, requires_grad=True)
    assert build_optimizer("lbfgs", {}, [tensor]).defaults["line_search_fn"] is None
    assert build_optimizer("lbfgs", {"line_search_fn": "none"}, [tensor]).defaults["line_search_fn"] is None
    chosen = build_optimizer("lbfgs", {"line_search_fn": "strong_wolfe"}, [tensor])
    assert chosen.defaults["line_search_fn"] == "strong_wolfe"


def strategy_for(hp: HyperParam) -> st.SearchStrategy:
    """Values over the spec's whole range (an unbounded side is cut a finite stretch past the bound)."""
    if hp.kind == "bool":
        return st.booleans()
    if hp.kind == "choice":
        return st.sampled_from(hp.choices)
    if hp.kind in ("float", "pair"):
        low = hp.low if hp.low is not None else hp.high - 100.0
        high = hp.high if hp.high is not None else low + 100.0
        number = st.floats(
            low, high,
            exclude_min=not hp.low_inclusive and hp.low is not None,
            exclude_max=not hp.high_inclusive and hp.high is not None,
            allow_nan=False,
        )
        if hp.kind == "pair":
            first = number | st.none() if hp.default[0] is None else number
            return st.tuples(first, number)
        value = number
    else:  # int
        low = int(hp.low) if hp.low is not None else -5
        high = int(hp.high) if hp.high is not None else low + 40
        value = st.integers(low, high)
    return value | st.none() if hp.default is None else value


# Rprop's etas must straddle 1: drawing each element over (0, 100] would almost never do that.
SPECIAL_STRATEGIES = {
    ("rprop", "etas"): st.tuples(
        st.floats(0.0, 1.0, exclude_min=True, exclude_max=True),
        st.floats(1.0, 10.0, exclude_min=True),
    ),
    ("rprop", "step_sizes"): st.tuples(st.floats(0.0, 1.0), st.floats(1.0, 100.0)),
}


def params_strategy(name: str) -> st.SearchStrategy:
    info = OPTIMIZERS[name]
    optional = {
        hp.name: SPECIAL_STRATEGIES[(name, hp.name)] if (name, hp.name) in SPECIAL_STRATEGIES else strategy_for(hp)
        for hp in info.hyperparams
    }
    return st.fixed_dictionaries({}, optional=optional)


def assert_torch_accepts(name: str, params: dict) -> None:
    info = OPTIMIZERS[name]
    tensor = fresh_parameter(info)
    optimizer = build_optimizer(name, params, [tensor])  # the torch constructor must not raise
    expected = info.torch_kwargs(validate_optimizer_params(name, params))
    for key, value in expected.items():
        if value is not None:  # torch derives None (L-BFGS max_eval) itself
            assert optimizer.defaults[key] == value, key
    # One step too: torch checks some values only there (ASGD's float power overflowed for
    # alpha > 1). Muon's bfloat16 Newton–Schulz is slow on CPU; its step has its own test.
    if name != "muon":
        take_one_step(optimizer, tensor, info)


# One example draws a params dict for every optimizer at once: 100 examples = 100 per optimizer,
# at a third of the cost of 14 separate Hypothesis runs (the engine's per-example overhead
# dominates; the torch work is ~1 ms).
@HYPOTHESIS
@given(params_by_optimizer=st.fixed_dictionaries({name: params_strategy(name) for name in OPTIMIZERS}))
def test_valid_params_never_make_torch_raise(params_by_optimizer):
    for name, params in params_by_optimizer.items():
        try:
            validate_optimizer_params(name, params)
        except LabError:
            continue  # a cross-parameter rule (e.g. SGD's Nesterov) refused the draw
        assert_torch_accepts(name, params)


def test_float_spec_cleaning_edge_cases():
    spec = HyperParam("p", 0.5, "float", low=0.0, high=1.0, high_inclusive=False)
    assert spec.describe_range() == "[0, 1)"
    assert spec.validate(0, "x") == 0.0 and type(spec.validate(0, "x")) is float
    with pytest.raises(LabError, match=r"x: must be in \[0, 1\), got 1.2"):
        spec.validate(1.2, "x")
    with pytest.raises(LabError, match=r"\[0, 1\)"):
        spec.validate(1, "x")
    assert HyperParam("q", 1.0, "float", low=0.0, low_inclusive=False).describe_range() == "> 0"
    assert HyperParam("q", 1.0, "float", low=0.0).describe_range() == ">= 0"
    assert HyperParam("q", -1.0, "float", high=0.0).describe_range() == "<= 0"
    assert math.isclose(HyperParam("q", 1.0, "float").validate(-1e9, "x"), -1e9)


@pytest.mark.parametrize("name", sorted(n for n in OPTIMIZERS if n != "muon"))
def test_unprofiled_step_updates_exactly_as_step(name):
    """The engine's step without torch's profiler wrapper is the same update, to the bit."""
    start = torch.tensor([-1.2, 0.7], dtype=torch.float64)

    def trajectory(use_unprofiled: bool) -> list[list[float]]:
        p = start.clone().requires_grad_(True)
        opt = build_optimizer(name, {}, [p])
        step = unprofiled_step(opt) if use_unprofiled else opt.step

        def closure():
            opt.zero_grad()
            loss = (p[0] - 1) ** 2 + 10 * (p[1] - p[0] ** 2) ** 2
            loss.backward()
            return loss

        points = []
        for _ in range(20):
            if OPTIMIZERS[name].needs_closure:
                step(closure)
            else:
                closure()
                step()
            points.append(p.detach().tolist())
        return points

    assert trajectory(True) == trajectory(False)


def test_unprofiled_step_still_runs_registered_hooks():
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("sgd", {"lr": 0.1}, [p])
    step = unprofiled_step(opt)
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append("post"))
    p.grad = torch.ones(2, dtype=torch.float64)
    step()
    assert calls == ["post"]
    assert p.detach().tolist() == [-0.1, -0.1]
