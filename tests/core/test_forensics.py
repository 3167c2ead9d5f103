"""Divergence forensics and out-of-memory isolation, checked against plain PyTorch.

A run that blows up is caught within the step it happens (its loss, gradient or parameter norm)
and its `Divergence` names the tensor whose update exploded, the last finite loss / gradient /
point and the lr of that update; summary.json carries the same. An out-of-memory error in one run
marks that run only, and the others' numbers stay exactly what they are without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.engine.faults import out_of_memory
from core.engine.function_race import EXPLODE_FACTOR, FunctionRace
from core.engine.network_race import NetworkRace
from core.engine.param_watch import PARAM_NORM_FACTOR
from core.engine.runner import run_to_dir
from core.lab.format import (
    FunctionProblem,
    Lab,
    NetworkProblem,
    RunSpec,
    ScheduleSpec,
    validate_lab,
)
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
# Batch norm makes the race take the per-run path (core.engine.stacked cannot batch it).
MLP_BN = {"layers": [{"linear": 16}, {"batchnorm": True}, {"act": "relu"}, {"linear": 2}]}
MLP_DROPOUT = {"layers": [{"linear": 16}, {"act": "relu"}, {"dropout": 0.1}, {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}
CALM = RunSpec("Adam", "adam", {"lr": 0.01})
WILD = RunSpec("SGD lr 50", "sgd", {"lr": 50.0})


def _network_lab(runs, model=MLP, steps=40, batch_size=None):
    problem = NetworkProblem(dataset=MOONS, model=model, batch_size=batch_size, eval_every=10,
                             device="cpu")
    return validate_lab(Lab(name="t", seed=3, steps=steps, problem=problem, runs=tuple(runs)))


def _records(race):
    return list(race.records())


def _plain_blow_up(lab: Lab, lr: float):
    """A hand-written full-batch SGD loop on the lab's data and initial weights: the first step
    whose parameter norm passes the limit or whose loss is not finite / exploded, the loss
    before it and each tensor's relative update into it."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    norm = lambda: float(torch.nn.utils.get_total_norm(list(model.parameters())))  # noqa: E731
    limit = PARAM_NORM_FACTOR * (norm() + 1.0)
    losses, before = [], None
    for step in range(lab.steps + 1):
        if step > 0 and not norm() <= limit:
            break
        loss = torch.nn.functional.cross_entropy(model(x), y)
        value = loss.item()
        if step > 0 and not (np.isfinite(value) and abs(value) <= EXPLODE_FACTOR
                             * (abs(losses[0]) + 1.0)):
            break
        losses.append(value)
        opt.zero_grad()
        loss.backward()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        opt.step()
    else:
        raise AssertionError("the plain loop never blew up")
    ratios = {name: float((p.detach() - before[name]).norm() / before[name].norm())
              for name, p in model.named_parameters()}
    return step, losses[-1], ratios


# -- networks ------------------------------------------------------------------------------------


def test_a_huge_lr_is_caught_at_the_step_plain_pytorch_blows_up_and_names_the_layer():
    lab = _network_lab([CALM, WILD])
    race = NetworkRace(lab)
    assert race.stack is not None  # the batched path: one norm over the (R, P) rows per step
    records = _records(race)
    event = race.diverged[1]
    assert event is not None and race.diverged[0] is None
    step, last_loss, ratios = _plain_blow_up(lab, 50.0)
    assert event.step == step
    assert "parameter norm" in event.reason or "loss" in event.reason
    names = {name for name, _ in race.models[1].named_parameters()}
    assert names == set(ratios)  # "0.weight", "0.bias", "2.weight", ...
    assert event.layer == max(ratios, key=ratios.get)
    assert event.layer in event.reason
    assert event.update_ratio == pytest.approx(ratios[event.layer], rel=1e-3)
    assert event.lr == 50.0
    assert event.last_loss == pytest.approx(last_loss, rel=1e-4)
    assert event.last_loss == pytest.approx(float(records[step - 1].loss[1]))
    assert event.last_grad_norm == pytest.approx(float(records[step - 1].grad_norm[1]))
    assert records[-1].step == lab.steps and records[-1].alive[0]  # Adam went on to the end
    for record in records:  # nothing non-finite leaves the engine
        assert np.all(np.isfinite(record.loss)) and np.all(np.isfinite(record.grad_norm))


def test_the_lr_reported_is_the_one_of_the_update_that_blew_up_not_the_next():
    growing = RunSpec("SGD ramp", "sgd", {"lr": 2000.0}, schedule=ScheduleSpec(
        "linear", {"start_factor": 0.01, "end_factor": 1.0, "total_iters": 40}))
    race = NetworkRace(_network_lab([CALM, growing], model=MLP_DROPOUT))
    assert race.stack is None  # the per-run path: one foreach norm over every run's tensors
    records = _records(race)
    event = race.diverged[1]
    assert event is not None and event.step >= 2
    assert event.lr == pytest.approx(float(records[event.step - 1].lr[1]))
    assert event.lr != pytest.approx(float(records[event.step - 2].lr[1]))
    assert event.layer in {name for name, _ in race.models[1].named_parameters()}


def test_summary_json_has_the_forensic_details(tmp_path):
    summary = run_to_dir(_network_lab([CALM, WILD]), tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    calm, wild = on_disk["runs"]
    assert calm["diverged"] is False and calm["divergence"] is None
    assert wild["diverged"] is True
    detail = wild["divergence"]
    assert detail["step"] == wild["diverged_at"] and detail["reason"] == wild["divergence_reason"]
    assert detail["layer"] in detail["reason"] and detail["lr"] == 50.0
    for key in ("last_loss", "last_grad_norm", "update_ratio", "param_norm"):
        assert np.isfinite(detail[key]), key


# -- 2-D functions -------------------------------------------------------------------------------


def test_rosenbrock_with_lr_1e3_keeps_the_last_finite_point_and_the_lr(tmp_path):
    lab = validate_lab(Lab(
        name="boom", steps=200, problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
        runs=(RunSpec("Adam", "adam", {"lr": 0.02}), RunSpec("SGD lr 1e3", "sgd", {"lr": 1e3})),
    ))
    summary = run_to_dir(lab, tmp_path)
    wild = summary["runs"][1]
    assert wild["diverged_at"] == 1
    detail = wild["divergence"]
    assert detail["last_point"] == [-1.5, 2.0]
    assert detail["lr"] == 1000.0
    assert detail["last_loss"] == pytest.approx(12.5)  # (1 - x)² + 100 (y - x²)² at the start
    # The first update is lr · ∇f(start): plain torch says where it landed.
    start = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    ((1 - start[0]) ** 2 + 100 * (start[1] - start[0] ** 2) ** 2).backward()
    assert detail["last_grad_norm"] == pytest.approx(float(start.grad.norm()))
    landed = start.detach() - 1e3 * start.grad
    assert detail["param_norm"] == pytest.approx(float(landed.norm()))
    assert summary["runs"][0]["divergence"] is None and summary["runs"][0]["steps"] == 200


def test_a_2d_schedule_reports_the_lr_of_the_offending_update():
    lab = validate_lab(Lab(
        name="ramp", steps=300, problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
        runs=(RunSpec("SGD ramp", "sgd", {"lr": 1e-2}, schedule=ScheduleSpec(
            "linear", {"start_factor": 1e-3, "end_factor": 1.0, "total_iters": 300})),),
    ))
    race = FunctionRace(lab)
    records = list(race.records())
    event = race.diverged[0]
    assert event is not None and event.step > 2
    assert event.lr == pytest.approx(float(records[event.step - 1].lr[0]))
    assert event.last_point == tuple(records[event.step - 1].point[0])
    assert "lr" in event.describe() and "last finite" in event.describe()


# -- out of memory --------------------------------------------------------------------------------


class _OutOfMemoryAt:
    """A forward hook that raises the real torch.OutOfMemoryError in training at one step."""

    def __init__(self, race: NetworkRace, step: int):
        self.race, self.step = race, step

    def __call__(self, module, inputs, output):
        if module.training and self.race.step == self.step:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_in_one_run_marks_it_and_leaves_the_others_bit_identical():
    runs = [CALM, RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.003})]
    faulty = NetworkRace(_network_lab(runs, model=MLP_BN, batch_size=32))
    assert faulty.stack is None
    faulty.models[1].register_forward_hook(_OutOfMemoryAt(faulty, 7))
    records = _records(faulty)
    event = faulty.diverged[1]
    assert event.step == 7 and event.reason.startswith("out of memory: CUDA out of memory")
    assert event.last_loss == pytest.approx(float(records[6].loss[1]))
    assert event.lr == pytest.approx(0.1)
    # Its memory is given back: no gradients, no optimizer state (momentum buffers).
    assert all(p.grad is None for p in faulty.models[1].parameters())
    assert all(not state for state in faulty.optimizers[1][0].state.values())

    reference = NetworkRace(_network_lab([runs[0], runs[2]], model=MLP_BN, batch_size=32))
    expected = _records(reference)
    assert len(records) == len(expected) == 41
    for got, want in zip(records, expected):
        np.testing.assert_array_equal(got.loss[[0, 2]], want.loss)
        np.testing.assert_array_equal(got.grad_norm[[0, 2]], want.grad_norm)
    for own, other in ((0, 0), (2, 1)):
        for a, b in zip(faulty.models[own].parameters(), reference.models[other].parameters()):
            assert torch.equal(a, b)


def test_out_of_memory_in_the_batched_pass_falls_back_to_one_run_at_a_time(monkeypatch):
    runs = [CALM, RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
            RunSpec("RMSprop", "rmsprop", {"lr": 0.003})]
    plain = _records(NetworkRace(_network_lab(runs)))
    race = NetworkRace(_network_lab(runs))
    stack = race.stack
    batched = stack.train_step

    def train_step(*args, **kwargs):  # the (R·B)-sized pass runs out of memory at step 5
        if race.step == 5:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                               "can't allocate memory: you tried to allocate 4294967296 bytes.")
        return batched(*args, **kwargs)

    monkeypatch.setattr(stack, "train_step", train_step)
    race.models[1].register_forward_hook(_OutOfMemoryAt(race, 9))  # alone, later
    records = _records(race)
    assert [e.run for e in race.diverged if e is not None] == [1]
    assert race.diverged[1].step == 9 and "out of memory" in race.diverged[1].reason
    assert records[-1].step == 40 and records[-1].alive[[0, 2]].all()
    # One run at a time gives the batched numbers to float rounding (core.engine.stacked).
    for got, want in zip(records, plain):
        np.testing.assert_allclose(got.loss[[0, 2]], want.loss[[0, 2]], rtol=1e-4)


def test_out_of_memory_in_the_batched_optimizer_step_marks_every_live_run(monkeypatch):
    race = NetworkRace(_network_lab([CALM, RunSpec("SGD", "sgd", {"lr": 0.1})]))
    stepped = race.stack.step

    def step(alive):
        if race.step == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return stepped(alive)

    monkeypatch.setattr(race.stack, "step", step)
    records = _records(race)
    assert records[-1].step == 4 and not records[-1].alive.any()
    assert all(e.step == 4 and "out of memory" in e.reason for e in race.diverged)


def test_only_allocator_failures_count_as_out_of_memory():
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried to "
                                      "allocate 8 bytes"))
    assert out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None
    assert out_of_memory(ValueError("out of memory")) is None


def test_any_other_error_in_a_run_still_reaches_the_caller():
    race = NetworkRace(_network_lab([CALM, WILD], model=MLP_BN))

    def broken(module, inputs, output):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    race.models[0].register_forward_hook(broken)
    with pytest.raises(RuntimeError, match="shapes"):
        _records(race)
