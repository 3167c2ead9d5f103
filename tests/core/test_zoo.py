"""The optimizer zoo (core/optim/zoo.py) over the whole of pytorch-optimizer and Schedule-Free.

The central test races every optimizer of pytorch-optimizer's registry (all of it, not a sample),
plus the SAM family and Schedule-Free, for 20 steps of a small MLP in a plain torch loop that
applies the adapters the zoo reports (closure, create_graph, train()/eval(), the matrix split
with torch's AdamW for the rest). What it asserts of each: the loss stays finite and ends lower
than it started, and the optimizer moved its own weights; or the optimizer is refused with the
reason, and the refusals are pinned below so that a new one (a broken introspection) fails.
A handful reach a lower loss only with a documented non-default setting or more steps
(`NEEDS_HELP`); each of those is also checked to still need it.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from importlib import metadata

import pytest
import torch

from core.errors import LabError
from core.optim.introspect import NotRaceable
from core.optim.optimizers import OptimizerInfo
from core.optim.probe import probe_adapters
from core.optim.zoo import (
    ZOO_PACKAGES,
    is_zoo_ref,
    registry_refs,
    zoo_info,
    zoo_names,
    zoo_refusals,
    zoo_version,
)

pytest.importorskip("pytorch_optimizer")
pytest.importorskip("schedulefree")

STEPS = 20

# Every refusal, with a phrase its reason must contain. Anything refused that is not here, or
# here and racing, fails the whole-registry test.
TORCH_TWINS = {"Adam": "adam", "AdamW": "adamw", "LBFGS": "lbfgs", "NAdam": "nadam",
               "RMSprop": "rmsprop", "SGD": "sgd"}
EXPECTED_REFUSALS = {
    **{f"pytorch_optimizer:{cls}": f"name it {name!r}" for cls, name in TORCH_TWINS.items()},
    "pytorch_optimizer:AdaLOMO": "'model' first",
    "pytorch_optimizer:AdamMini": "'model' first",
    "pytorch_optimizer:LOMO": "'model' first",
    "pytorch_optimizer:WSAM": "'model' first",
    "pytorch_optimizer:GSAM": "needs model, rho_scheduler",
    "pytorch_optimizer:BSAM": "needs num_data",
    "pytorch_optimizer:Ranger21": "needs num_iterations",
    "pytorch_optimizer:Lookahead": "wraps another optimizer",
    "pytorch_optimizer:Magma": "wraps another optimizer",
    "pytorch_optimizer:OrthoGrad": "wraps another optimizer",
    "pytorch_optimizer:PCGrad": "wraps another optimizer",
    "pytorch_optimizer:SafeFP16Optimizer": "wraps another optimizer",
    "pytorch_optimizer:ScheduleFreeWrapper": "wraps another optimizer",
    "pytorch_optimizer:TRAC": "wraps another optimizer",
    "pytorch_optimizer:DeMo": "einops",  # an optional package pytorch-optimizer does not require
    "pytorch_optimizer:DistributedMuon": "process group",  # torch.distributed must be running
}

# Optimizers that race but, at their defaults, do not lower this MLP's loss in 20 steps:
# ref → (settings or steps that make them, why).
NEEDS_HELP = {
    "pytorch_optimizer:AliG": (
        {"max_lr": 0.1}, STEPS, "max_lr=None leaves its Polyak step uncapped; it overshoots"),
    "pytorch_optimizer:SaRA": (
        {"threshold": 0.1, "lr": 0.01}, STEPS,
        "threshold=1e-3 trains only weights initialised below 1e-3: none in this MLP"),
    "pytorch_optimizer:Ranger": (
        {}, 60, "RAdam's warm-up plus Lookahead's slow weights: the loss first rises, then falls"),
    **{ref: ({"lr": 0.1}, STEPS, "lr=1.0 (its default) diverges on this MLP")
       for ref in ("pytorch_optimizer:ScheduleFreeSGD", "schedulefree:SGDScheduleFree",
                   "schedulefree:SGDScheduleFreeClosure", "schedulefree:SGDScheduleFreeReference")},
}


def race_mlp(info: OptimizerInfo, settings: dict | None = None, steps: int = STEPS, seed: int = 0):
    """A plain torch loop: (first loss, last loss, largest change of the optimizer's own weights)."""
    torch.manual_seed(seed)
    x = torch.randn(64, 2)
    y = torch.sin(2 * x[:, :1]) * torch.cos(x[:, 1:])
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    params = list(model.parameters())
    # The matrix split: 2-D weights to a matrix optimizer, the rest to torch's AdamW.
    mine = [p for p in params if p.ndim == 2] if info.min_param_ndim == 2 else params
    rest = [p for p in params if all(p is not q for q in mine)]
    build = info.build or (lambda tensors, kwargs: info.cls(tensors, **kwargs))
    optimizer = build(mine, info.torch_kwargs(settings or {}))
    helper = torch.optim.AdamW(rest) if rest else None
    start = [p.detach().clone() for p in mine]

    def loss_fn() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x), y)

    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(steps):
        if info.train_eval:
            optimizer.train()

        @torch.enable_grad()
        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            if helper is not None:
                helper.zero_grad()
            loss = loss_fn()
            loss.backward(create_graph=info.create_graph)
            return loss

        closure()
        if info.needs_closure:
            optimizer.step(closure)
        else:
            optimizer.step()
        if helper is not None:
            helper.step()
    if info.train_eval:
        optimizer.eval()  # Schedule-Free is judged at its evaluation point x
    with torch.no_grad():
        last = float(loss_fn())
    moved = max(float((p.detach() - s).abs().max()) for p, s in zip(mine, start, strict=True))
    return first, last, moved


@pytest.fixture(scope="module")
def refusals() -> dict[str, str]:
    return zoo_refusals()


def test_registry_refs_are_the_whole_pytorch_optimizer_registry():
    import pytorch_optimizer

    names = pytorch_optimizer.get_supported_optimizers()
    classes = {pytorch_optimizer.load_optimizer(name).__name__ for name in names}
    assert len(names) == 128  # pytorch-optimizer 4.1.0, as pinned
    assert set(registry_refs()) == {f"pytorch_optimizer:{cls}" for cls in classes}
    # Every registry class that is not torch's own is offered by name.
    assert set(registry_refs()) - set(zoo_names()) == {
        f"pytorch_optimizer:{cls}" for cls in TORCH_TWINS
    }


def test_every_zoo_optimizer_races_or_is_refused_with_its_reason(refusals):
    refs = sorted(set(registry_refs()) | set(zoo_names()))
    problems = []
    raced = 0
    for ref in refs:
        if ref in refusals:
            phrase = EXPECTED_REFUSALS.get(ref)
            if phrase is None:
                problems.append(f"{ref}: refused unexpectedly: {refusals[ref]}")
            elif phrase not in refusals[ref]:
                problems.append(f"{ref}: reason {refusals[ref]!r} lacks {phrase!r}")
            continue
        if ref in EXPECTED_REFUSALS:
            problems.append(f"{ref}: races, but is expected to be refused")
            continue
        info = zoo_info(ref)
        settings, steps, _why = NEEDS_HELP.get(ref, ({}, STEPS, ""))
        try:
            first, last, moved = race_mlp(info, settings, steps)
        except Exception as err:  # collect them all: one report for the whole zoo
            problems.append(f"{ref}: raised {type(err).__name__}: {err}")
            continue
        if not (math.isfinite(last) and last < first and moved > 0):
            problems.append(f"{ref}: loss {first:.4f} -> {last:.4f}, weights moved {moved:.2e}")
        raced += 1
    assert problems == []
    assert raced == len(refs) - len(refusals)
    assert raced >= 120  # 116 of the registry, the SAM family and Schedule-Free's nine


def test_the_settings_the_exceptions_use_are_still_needed():
    # Keeps NEEDS_HELP honest: each entry fails the plain 20-step race at its defaults.
    for ref in NEEDS_HELP:
        first, last, _moved = race_mlp(zoo_info(ref))
        assert not (math.isfinite(last) and last < first), ref


def test_refusals_are_raised_by_zoo_info_with_the_field(refusals):
    for ref, reason in refusals.items():
        with pytest.raises(LabError) as caught:
            zoo_info(ref, field="runs[2].optimizer")
        assert caught.value.field == "runs[2].optimizer"
        assert reason in str(caught.value)
    with pytest.raises(NotRaceable, match="needs num_data"):
        zoo_info("pytorch_optimizer:BSAM")


def test_adapters_of_the_optimizers_the_issue_names():
    lion = zoo_info("pytorch_optimizer:Lion")
    assert (lion.needs_closure, lion.create_graph, lion.train_eval, lion.min_param_ndim) == (
        False, False, False, 0)
    for ref in ("pytorch_optimizer:SophiaH", "pytorch_optimizer:AdaHessian"):
        assert zoo_info(ref).create_graph, ref
        assert not zoo_info(ref).needs_closure, ref
    sam = zoo_info("pytorch_optimizer:SAM")
    assert sam.needs_closure and sam.build is not None
    assert sam.hyperparam("base_optimizer").default == "sgd"
    assert "adam" in sam.hyperparam("base_optimizer").choices
    for ref in ("schedulefree:AdamWScheduleFree", "pytorch_optimizer:ScheduleFreeAdamW"):
        assert zoo_info(ref).train_eval, ref
    for ref in ("pytorch_optimizer:Muon", "pytorch_optimizer:AdaMuon", "pytorch_optimizer:NorMuon"):
        assert zoo_info(ref).min_param_ndim == 2, ref
    # SOAP and Shampoo precondition vectors too: no split.
    assert zoo_info("pytorch_optimizer:SOAP").min_param_ndim == 0
    assert zoo_info("pytorch_optimizer:AliG").needs_closure  # it reads the loss from the closure


def test_sam_builds_its_base_optimizer_from_the_choice():
    sam = zoo_info("pytorch_optimizer:SAM")
    weight = torch.nn.Parameter(torch.ones(3, 2))
    built = sam.build([weight], sam.torch_kwargs({"base_optimizer": "adam", "lr": 0.01}))
    assert isinstance(built.base_optimizer, torch.optim.Adam)
    assert built.base_optimizer.param_groups[0]["lr"] == 0.01
    default = sam.build([weight], {})
    assert isinstance(default.base_optimizer, torch.optim.SGD)


def test_where_a_zoo_optimizer_comes_from():
    version = metadata.version("pytorch-optimizer")
    lion = zoo_info("pytorch_optimizer:Lion")
    assert (lion.name, lion.title, lion.group) == ("pytorch_optimizer:Lion", "Lion", "pytorch-optimizer")
    assert lion.origin == f"pytorch-optimizer {version}" == f"pytorch-optimizer {zoo_version('pytorch_optimizer')}"
    assert lion.description.startswith("Sign based updates")
    free = zoo_info("schedulefree:AdamWScheduleFree")
    assert free.group == "schedule-free"
    assert free.description.startswith("Schedule-Free AdamW: As the name suggests")
    assert free.origin == f"schedulefree {metadata.version('schedulefree')}"
    assert zoo_info("pytorch_optimizer:Lion") is lion  # cached
    assert zoo_version("not_a_package") == ""


def test_names_and_unknown_refs():
    names = zoo_names()
    assert "pytorch_optimizer:Lion" in names and "schedulefree:AdamWScheduleFree" in names
    assert "pytorch_optimizer:SAM" in names  # exported outside the registry
    assert all(is_zoo_ref(name) for name in names)
    assert {name.partition(":")[0] for name in names} == set(ZOO_PACKAGES)
    assert not is_zoo_ref("adam") and not is_zoo_ref("/home/me/opt.py:Mine")
    with pytest.raises(LabError) as caught:
        zoo_info("pytorch_optimizer:lion", field="runs[0].optimizer")
    assert caught.value.field == "runs[0].optimizer"
    assert "did you mean 'pytorch_optimizer:Lion'" in caught.value.message
    with pytest.raises(LabError, match="the zoo has pytorch_optimizer, schedulefree"):
        zoo_info("torch_optimizer:Lion")
    with pytest.raises(LabError, match="name it 'adamw'"):
        zoo_info("pytorch_optimizer:AdamW")


def test_probing_leaves_the_global_random_stream_alone():
    import pytorch_optimizer

    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    # Sophia-H draws its Hessian probe vectors from torch's global generator.
    adapters = probe_adapters(lambda tensors: pytorch_optimizer.SophiaH(tensors), train_eval=False)
    assert adapters.create_graph
    assert torch.equal(torch.rand(4), expected)


def test_importing_the_zoo_module_imports_no_zoo_package():
    code = (
        "import sys; import core.optim.zoo, core.optim.introspect; "
        "print(sorted(m for m in ('pytorch_optimizer', 'schedulefree') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_racing_info_is_a_plain_optimizer_info():
    info = zoo_info("pytorch_optimizer:Lion")
    assert dataclasses.is_dataclass(info)
    assert info.defaults() == {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.0,
                               "weight_decouple": True, "fixed_decay": False, "maximize": False}
