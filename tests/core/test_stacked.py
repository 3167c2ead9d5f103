"""The batched path's grouped optimizers (core/engine/stacked.py) against plain PyTorch scripts.

One torch.optim optimizer per optimizer type steps every run of that type (one param group per
run), so these tests check what a user would notice if the grouping leaked between runs:
different hyperparameters and different schedules per run reproduce separate plain models +
optimizers + lr_schedulers; a diverging or early-stopped run freezes without changing the others'
numbers; and each run's own optimizer still holds its own state.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, ScheduleSpec, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}
STEPS = 60
CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}


def _lab(runs, steps=STEPS, batch_size=32, eval_every=10):
    problem = NetworkProblem(dataset=MOONS, model=MLP, batch_size=batch_size,
                             eval_every=eval_every, device="cpu")
    return validate_lab(Lab(name="t", seed=3, steps=steps, problem=problem, runs=tuple(runs)))


def _plain_scheduler(opt, schedule: ScheduleSpec | None, steps: int):
    """The torch scheduler a practitioner would write for each schedule used below."""
    if schedule is None:
        return None
    p = schedule.params
    if schedule.name == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    if schedule.name == "step":
        return lr_scheduler.StepLR(opt, step_size=p["step_size"], gamma=p["gamma"])
    if schedule.name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=p["factor"],
                                              patience=p["patience"])
    if schedule.name == "warmup_cosine":
        warmup = p["warmup_steps"]
        return lr_scheduler.SequentialLR(opt, [
            lr_scheduler.LinearLR(opt, start_factor=p["start_factor"], total_iters=warmup),
            lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup),
        ], milestones=[warmup])
    raise AssertionError(schedule.name)


def plain_script(lab: Lab, run: RunSpec, steps: int):
    """One plain model + torch.optim optimizer + torch scheduler, same seed/data/batches.

    Returns the per-step losses, the lr in force at each step, the model and the optimizer."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    opt = CLASSES[run.optimizer](model.parameters(), **run.params)
    scheduler = _plain_scheduler(opt, run.schedule, steps)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    order = torch.Generator().manual_seed(lab.seed + 1)
    batch = lab.problem.batch_size
    per_epoch = -(-len(x) // batch)
    losses, lrs, perm = [], [], None
    for step in range(steps + 1):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=order)
        idx = perm[(step % per_epoch) * batch:(step % per_epoch + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()
            if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                scheduler.step(loss.item())
            elif scheduler is not None:
                scheduler.step()
    return np.array(losses), np.array(lrs), model, opt


def test_grouped_runs_with_own_hyperparameters_and_schedules_reproduce_plain_scripts():
    runs = [
        RunSpec("adam cosine", "adam", {"lr": 0.02}, schedule=ScheduleSpec("cosine")),
        # patience 2 with an lr this large: the training loss stalls and the lr really drops
        RunSpec("adam plateau", "adam", {"lr": 0.05, "betas": [0.8, 0.99]},
                schedule=ScheduleSpec("plateau", {"factor": 0.5, "patience": 2})),
        RunSpec("adam warmup", "adam", {"lr": 0.01, "weight_decay": 0.001},
                schedule=ScheduleSpec("warmup_cosine", {"warmup_steps": 10,
                                                        "start_factor": 0.1})),
        RunSpec("adam amsgrad", "adam", {"lr": 0.005, "amsgrad": True}),
        RunSpec("sgd step", "sgd", {"lr": 0.1, "momentum": 0.9},
                schedule=ScheduleSpec("step", {"step_size": 20, "gamma": 0.5})),
        RunSpec("sgd nesterov", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
        RunSpec("rmsprop", "rmsprop", {"lr": 0.003}),  # a type of its own (single-tensor path)
    ]
    lab = _lab(runs)
    race = NetworkRace(lab)
    assert race.stack is not None
    records = list(race.records())
    lr_dropped = False
    for i, run in enumerate(runs):
        ref_losses, ref_lrs, ref_model, _ = plain_script(lab, run, STEPS)
        np.testing.assert_allclose([r.loss[i] for r in records], ref_losses, rtol=0, atol=1e-6,
                                   err_msg=run.label)
        # atol: the engine clamps torch's −1e-18 at the end of a cosine to 0
        np.testing.assert_allclose([r.lr[i] for r in records], ref_lrs, rtol=1e-12,
                                   atol=1e-15, err_msg=run.label)
        for ours, ref in zip(race.models[i].parameters(), ref_model.parameters()):
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6, msg=run.label)
        if run.schedule is not None and run.schedule.name == "plateau":
            lr_dropped = ref_lrs[-1] < ref_lrs[0]
    assert lr_dropped, "the plateau schedule never acted; the test would not see a mix-up"


def _losses(runs, **kwargs) -> tuple[NetworkRace, list]:
    race = NetworkRace(_lab(runs, **kwargs))
    return race, list(race.records())


def test_a_diverging_run_in_a_group_freezes_and_changes_no_other_run():
    calm = [RunSpec("a", "adam", {"lr": 0.01}), RunSpec("b", "adam", {"lr": 0.03})]
    boom = RunSpec("boom", "adam", {"lr": 1e4})  # same optimizer type: the same grouped Adam
    alone_race, alone = _losses(calm)
    race, together = _losses([calm[0], boom, calm[1]])
    events = [e for r in together for e in r.diverged]
    assert [e.label for e in events] == ["boom"]
    stop = events[0].step
    assert stop < STEPS and together[-1].alive.tolist() == [True, False, True]
    for mine, theirs in ((0, 0), (2, 1)):
        assert [r.loss[mine] for r in together] == [r.loss[theirs] for r in alone]
        for ours, ref in zip(race.models[mine].parameters(),
                             alone_race.models[theirs].parameters()):
            assert torch.equal(ours, ref)
    # The diverged run's own optimizer stopped where it diverged (it made `stop` updates).
    state = race.optimizers[1][0].state_dict()["state"][0]
    assert int(state["step"]) == stop


def test_an_early_stopped_run_in_a_group_freezes_and_changes_no_other_run():
    patient = RunSpec("patient", "adam", {"lr": 0.1},
                      early_stopping={"patience": 1, "min_delta": 0.0})
    other = RunSpec("other", "adam", {"lr": 0.01})
    alone_race, alone = _losses([other], eval_every=5)
    race, together = _losses([patient, other], eval_every=5)
    stops = [e for r in together for e in r.stopped]
    assert [e.label for e in stops] == ["patient"] and stops[0].step < STEPS
    stop = stops[0].step
    assert [r.loss[1] for r in together] == pytest.approx([r.loss[0] for r in alone],
                                                          abs=1e-6)
    for ours, ref in zip(race.models[1].parameters(), alone_race.models[0].parameters()):
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    # Frozen: it made exactly `stop` updates, and its weights stay as its record left them.
    assert int(race.optimizers[0][0].state_dict()["state"][0]["step"]) == stop
    ref_losses, _, ref_model, _ = plain_script(race.lab, patient, stop)
    np.testing.assert_allclose([r.loss[0] for r in together[:stop + 1]], ref_losses, atol=1e-6)
    for ours, ref in zip(race.models[0].parameters(), ref_model.parameters()):
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_each_run_keeps_its_own_torch_optimizer_with_its_own_state():
    runs = [RunSpec("slow", "adam", {"lr": 0.001}), RunSpec("fast", "adam", {"lr": 0.02}),
            RunSpec("adagrad", "adagrad", {"lr": 0.05, "initial_accumulator_value": 0.1})]
    lab = _lab(runs, steps=30)
    race = NetworkRace(lab)
    list(race.records())
    for i, run in enumerate(runs):
        opt = race.optimizers[i][0]
        assert type(opt) is CLASSES[run.optimizer]
        assert opt.param_groups[0]["lr"] == run.params["lr"]
        _, _, _, ref_opt = plain_script(lab, run, 30)
        ours = opt.state_dict()["state"][0]
        assert int(ours["step"]) == 30
        # The plain optimizer keeps one state per layer tensor; ours is one flat row.
        for key in ("exp_avg", "exp_avg_sq", "sum"):
            if key in ours:
                flat_ref = torch.cat([ref_opt.state[p][key].flatten()
                                      for p in ref_opt.param_groups[0]["params"]])
                torch.testing.assert_close(ours[key], flat_ref, rtol=0, atol=1e-6)


def test_a_stacked_regression_race_equals_its_solo_runs():
    """Mean-squared error takes the (R·B, out) row layout instead of cross entropy's."""
    runs = [RunSpec("adam", "adam", {"lr": 0.01}), RunSpec("sgd", "sgd", {"lr": 0.05})]
    problem = dict(dataset={"name": "sine", "n": 128, "noise": 0.1, "val_fraction": 0.25},
                   model={"layers": [{"linear": 16}, {"act": "tanh"}, {"linear": 1}]},
                   loss="mse", batch_size=32, eval_every=10, device="cpu")

    def race_of(chosen):
        lab = validate_lab(Lab(name="r", seed=4, steps=40, problem=NetworkProblem(**problem),
                               runs=tuple(chosen)))
        return NetworkRace(lab)

    together = race_of(runs)
    assert together.stack is not None
    records = list(together.records())
    for i, run in enumerate(runs):
        solo = race_of([run])
        assert solo.stack is None
        np.testing.assert_allclose([r.loss[i] for r in records],
                                   [r.loss[0] for r in solo.records()], rtol=0, atol=1e-6)
