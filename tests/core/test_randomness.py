"""Randomness is owned: every draw of a race comes from generators the race owns, never from
torch's process-global generator. So a race gives bit-identical numbers alone, twice at once in
two threads, or beside an LR range test and a sweep — and running it leaves the global generator
exactly as it found it. And one training step: the LR range test trains as the race does."""

from __future__ import annotations

import ast
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.engine.function_race import FunctionRace
from core.engine.network_race import NetworkRace
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, load_lab, validate_lab
from core.tools import lr_finder
from core.tools.sweep.run import sweep
from core.tools.sweep.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[2]
DROPOUT_LAB = ROOT / "resources" / "lessons" / "overfitting" / "dropout.lab.json"


def _dropout_bn_lab(steps: int = 60) -> Lab:
    """Dropout and batch norm, mini-batches, three runs (none of which takes the stacked path)."""
    model = {"layers": [{"linear": 32}, {"batchnorm": True}, {"act": "relu"}, {"dropout": 0.3},
                        {"linear": 32}, {"act": "relu"}, {"dropout": 0.5}, {"linear": 2}]}
    problem = NetworkProblem(dataset={"name": "moons", "n": 240, "noise": 0.25,
                                      "val_fraction": 0.25},
                             model=model, batch_size=32, eval_every=20, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.01}, l2=1e-3, clip_norm=1.0),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.003}, l1=1e-4, clip_value=0.5))
    return validate_lab(Lab(name="owned", seed=7, steps=steps, problem=problem, runs=runs))


def _losses(lab: Lab) -> list[list[float]]:
    return [record.loss.tolist() for record in NetworkRace(lab).records()]


def _in_threads(*jobs):
    """Run every job in its own thread at once; their results (or their exceptions) in order."""
    results: list = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def work(index, job):
        start.wait()
        try:
            results[index] = job()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            results[index] = error

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_the_dropout_lesson_gives_the_same_numbers_alone_and_in_two_threads_at_once():
    lab = load_lab(DROPOUT_LAB)
    assert any("dropout" in layer for layer in lab.problem.model["layers"])
    alone = _losses(lab)
    assert _losses(lab) == alone
    first, second = _in_threads(lambda: _losses(lab), lambda: _losses(lab))
    assert first == alone
    assert second == alone


def test_a_dropout_and_batchnorm_race_is_unchanged_beside_a_range_test_and_a_sweep():
    lab = _dropout_bn_lab()
    alone = _losses(lab)
    other = _dropout_bn_lab(steps=40)
    race, _range_test, _sweep = _in_threads(
        lambda: _losses(lab),
        lambda: lr_finder.lr_range_test(other, run="Adam", steps=40),
        lambda: sweep(SweepSpec(other, run="SGD", trials=4, batch=2, prune=False)),
    )
    assert race == alone


def test_a_race_does_not_depend_on_or_touch_the_global_generator():
    lab = _dropout_bn_lab(steps=30)
    torch.manual_seed(1)
    one = _losses(lab)
    torch.manual_seed(2)
    state = torch.get_rng_state()
    two = _losses(lab)
    assert one == two
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("tool", ["function race", "range test", "network range test", "sweep"])
def test_the_tools_leave_the_global_generator_as_they_found_it(tool):
    banana = validate_lab(Lab(name="banana", steps=30,
                              problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                              runs=(RunSpec("Adam", "adam", {"lr": 0.01}),)))
    net = _dropout_bn_lab(steps=20)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    if tool == "function race":
        for _ in FunctionRace(banana).records():
            pass
    elif tool == "range test":
        lr_finder.lr_range_test(banana, steps=20)
    elif tool == "network range test":
        lr_finder.lr_range_test(net, run="SGD", steps=20)
    else:
        sweep(SweepSpec(net, run="Adam", trials=2, batch=2, prune=False))
    assert torch.equal(torch.get_rng_state(), state)


_GLOBAL_RNG_CALLS = {"manual_seed", "seed", "set_rng_state", "get_rng_state", "fork_rng",
                     "initial_seed"}


# The places that run someone else's optimizer code, which may draw from torch's global
# generator inside its step: each swaps in a stream of its own (or forks) and puts the caller's
# state back, so the race's numbers and the caller's generator stay as they were.
_CONTAINMENT = {
    ("training_step.py", "RandomStream"),  # a run's Hessian-estimate stream
    ("global_rng.py", "forked_global_rng"),  # a probe's fork (core/optim/probe.py, stacked.py)
    ("checkup.py", "_global_sources"),  # the check's "is it deterministic" evidence (read only)
}


def test_no_module_of_core_calls_the_global_generator_functions():
    """``torch.manual_seed(…)`` and friends reseed or read the process-global generator;
    ``torch.Generator().manual_seed(…)`` (a generator of one's own) is fine, and so are the
    named containments of other people's optimizer code (`_CONTAINMENT`)."""
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = set()
        for node in ast.walk(tree):
            if (isinstance(node, (ast.FunctionDef, ast.ClassDef))
                    and (path.name, node.name) in _CONTAINMENT):
                allowed |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in _GLOBAL_RNG_CALLS or id(node) in allowed:
                continue
            owner = ast.unparse(node.func.value)
            if owner in ("torch", "torch.random", "torch.cuda", "np.random", "numpy.random",
                         "random"):
                offenders.append(f"{path.name}:{node.lineno}: {ast.unparse(node.func)}")
    assert offenders == []


def test_a_race_of_an_optimizer_that_draws_leaves_the_global_generator_as_it_found_it():
    lab = validate_lab(Lab(name="sophia", steps=12,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("Sophia-H", "pytorch_optimizer:SophiaH",
                                         {"lr": 0.01, "update_period": 1}),)))
    net = _dropout_bn_lab(steps=8)
    net = validate_lab(replace(net, runs=(RunSpec("Sophia-H", "pytorch_optimizer:SophiaH",
                                                  {"lr": 0.01, "update_period": 1}),)))
    torch.manual_seed(3)
    state = torch.get_rng_state()
    for _ in FunctionRace(lab).records():
        pass
    for _ in NetworkRace(net).records():
        pass
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("lab_of", ["dropout", "plain"])
def test_the_range_test_at_a_constant_lr_gives_the_race_first_losses_exactly(lab_of):
    """One training step: at a constant lr the range test's losses are the race's own, for the
    second run (its own dropout stream, L1, clipping by value)."""
    if lab_of == "dropout":
        lab = _dropout_bn_lab(steps=25)
    else:  # a single-run MLP: the per-run path with clipping by norm and L2
        lab = validate_lab(Lab(
            name="plain", seed=3, steps=25,
            problem=NetworkProblem(dataset={"name": "moons", "n": 200, "noise": 0.2},
                                   model={"layers": [{"linear": 16}, {"act": "tanh"},
                                                     {"linear": 2}]},
                                   batch_size=20, device="cpu"),
            runs=(RunSpec("Only", "sgd", {"lr": 0.3}, l2=1e-2, clip_norm=0.5),)))
    index = 1 if lab_of == "dropout" else 0
    run = lab.enabled_runs()[index]
    steps = 20
    race = [record.loss[index] for record in NetworkRace(lab).records()][:steps]
    lrs, losses, _smoothed, reason, _diverged = lr_finder._ramp(
        lab, run, None, run.params["lr"], lambda t: 1.0, steps, divergence_factor=1e9,
        smoothing=0.98)
    assert reason == "finished the ramp"
    assert lrs == [run.params["lr"]] * steps
    assert losses == race
    assert len(set(np.round(losses, 6))) > steps // 2  # it trained: the losses moved


def test_a_copy_of_a_race_model_does_not_carry_the_run_dropout_stream():
    """Live surfaces copy a race's model while it trains: the copy must not replay (or read) the
    run's masks, and the race's own numbers stay those of a race nobody copied."""
    import copy

    from core.problems.models import OwnedDropout

    lab = _dropout_bn_lab(steps=20)
    alone = _losses(lab)
    race = NetworkRace(lab)
    losses = []
    for record in race.records():
        losses.append(record.loss.tolist())
        twin = copy.deepcopy(race.models[1])
    layers = [m for m in twin.modules() if isinstance(m, OwnedDropout)]
    assert layers and all(m.generator is None for m in layers)
    assert all(m.generator is not None for m in race.models[1].modules()
               if isinstance(m, OwnedDropout))
    assert losses == alone


def test_races_that_draw_from_the_global_generator_give_the_same_numbers_beside_each_other():
    """AdaHessian's Hutchinson vectors come from torch's global generator, swapped for the run's
    own stream around each step; three such races in three threads (and a probe of another
    class in this one) must each give the lone race's numbers, bit for bit."""
    import sys

    from core.engine.factory import make_race
    from core.optim.probe import probe_adapters

    lab = validate_lab(Lab(name="adahessian", steps=150,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("AdaHessian", "pytorch_optimizer:AdaHessian",
                                         {"lr": 0.01}),)))

    def losses():
        return np.array([record.loss for record in make_race(lab).records()])

    alone = losses()
    results: list = [None] * 3
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, losses()))
               for i in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            probe_adapters(lambda params: torch.optim.SGD(params, lr=0.1), False)
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    for result in results:
        np.testing.assert_array_equal(result, alone)
