"""Any optimizer races correctly through the engine (core/engine/training_step.py `RunUpdate`,
core/engine/stacked.py, core/engine/function_race.py), checked against plain PyTorch loops.

A user's 10-line SGD class reproduces torch.optim.SGD's trajectory on a function race and on a
network race, the batched side-by-side path included; zoo optimizers that need more than
``step()`` — a closure (SAM), a create_graph backward (Sophia-H), a matrix split (Muon), their
own 1-D handling (SOAP), train()/eval() points (Schedule-Free) — race a small network lab; and
Schedule-Free's reported losses are its evaluation point x's, as its own reference loop
(``optimizer.eval()`` before evaluating) computes them.
"""

from __future__ import annotations

import numpy as np
import pytest
import schedulefree
import torch
import torch.nn.functional as F

from core.engine.function_race import FunctionRace
from core.engine.network_race import NetworkRace
from core.lab.code import TRUST_ALL
from core.lab.format import lab_from_dict
from core.optim import user_code
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

# The user's own SGD: ten lines, nothing borrowed from torch's.
MY_SGD = '''\
import torch


class MySGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
'''

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}
SEED = 3
STEPS = 24
EVAL_EVERY = 4
BATCH = 32


@pytest.fixture
def mine(tmp_path):
    (tmp_path / "opts").mkdir()
    (tmp_path / "opts" / "mysgd.py").write_text(MY_SGD)
    yield tmp_path
    user_code._LOADED.clear()


def _network_lab(base_dir, runs):
    data = {"format": "descent-lab/1", "name": "any", "seed": SEED, "steps": STEPS,
            "problem": {"kind": "network", "dataset": MOONS, "model": MLP, "batch_size": BATCH,
                        "eval_every": EVAL_EVERY, "device": "cpu"},
            "runs": runs}
    return lab_from_dict(data, base_dir=base_dir, consent=TRUST_ALL)


def _reference(make_optimizer, train_eval=False):
    """A plain PyTorch loop over the lab's data, model and batch order: the training loss of
    every step and the validation loss of every evaluated step (before that step's update),
    with Schedule-Free's optimizer.train() for training and optimizer.eval() for evaluating."""
    data = make_dataset(MOONS, SEED)
    spec = validate_model(MLP, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(SEED))
    opt = make_optimizer(model.parameters())
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    x_val, y_val = torch.as_tensor(data.x_val), torch.as_tensor(data.y_val)
    order = torch.Generator().manual_seed(SEED + 1)
    per_epoch = -(-len(x) // BATCH)
    losses, val, perm = [], {}, None
    for step in range(STEPS + 1):
        if step % per_epoch == 0:
            perm = torch.randperm(len(x), generator=order)
        idx = perm[(step % per_epoch) * BATCH:(step % per_epoch + 1) * BATCH]
        if train_eval:
            opt.train()
        model.train()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        if step % EVAL_EVERY == 0 or step == STEPS:
            if train_eval:
                opt.eval()
            model.eval()
            with torch.no_grad():
                val[step] = F.cross_entropy(model(x_val), y_val).item()
            if train_eval:
                opt.train()
        if step < STEPS:
            opt.step()
    if train_eval:
        opt.eval()
    return np.array(losses), val, model


def _val_losses(records, i):
    return {r.step: float(r.evaluation.val["loss"][i]) for r in records
            if r.evaluation is not None}


def test_a_user_sgd_class_reproduces_torch_sgd_on_a_function_race(mine):
    data = {"format": "descent-lab/1", "name": "byo", "steps": 40,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": "mine", "optimizer": {"class": "opts/mysgd.py:MySGD"},
                      "params": {"lr": 0.001}}]}
    lab = lab_from_dict(data, base_dir=mine, consent=TRUST_ALL)
    records = list(FunctionRace(lab).records())
    # torch.optim.SGD on a float64 point, with the gradient autograd gives.
    point = torch.tensor(records[0].point[0], dtype=torch.float64, requires_grad=True)
    sgd = torch.optim.SGD([point], lr=0.001)
    objective = FunctionRace(lab).objective
    for record in records:
        np.testing.assert_allclose(record.point[0], point.detach().numpy(), rtol=0, atol=1e-7)
        sgd.zero_grad()
        objective(point[0], point[1]).backward()
        sgd.step()
    assert len(records) == 41 and records[-1].alive[0]


@pytest.mark.parametrize("batched", [False, True], ids=["per-run", "batched"])
def test_a_user_sgd_class_reproduces_torch_sgd_on_a_network_race(mine, batched):
    runs = [{"label": "mine", "optimizer": {"class": "opts/mysgd.py:MySGD"},
             "params": {"lr": 0.1}}]
    if batched:  # a second run puts the race on the stacked side-by-side path
        runs.append({"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}})
    race = NetworkRace(_network_lab(mine, runs))
    assert (race.stack is not None) == batched
    if batched:  # its update is element-wise: it steps the run's flat row, as torch's SGD would
        [param] = race.optimizers[0][0].param_groups[0]["params"]
        assert param is race.stack.run_params[0]
    records = list(race.records())
    losses, val, model = _reference(lambda params: torch.optim.SGD(params, lr=0.1))
    # The trajectory, every weight, to 1e-7; the batched pass's per-run loss mean rounds its
    # last float32 bit differently (core/engine/stacked.py), so its losses agree to one ulp.
    loss_tol = 2e-7 if batched else 1e-7
    np.testing.assert_allclose([r.loss[0] for r in records], losses, rtol=0, atol=loss_tol)
    assert _val_losses(records, 0) == pytest.approx(val, abs=loss_tol)
    for ours, ref in zip(race.models[0].parameters(), model.parameters()):
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-7)


# Normalised SGD: each tensor's step has length lr, so one flat tensor would step differently.
MY_NORMALISED = '''\
import torch


class Normalised(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad / (p.grad.norm() + 1e-12), alpha=-group["lr"])
'''


def test_a_per_tensor_user_update_steps_its_layers_on_the_batched_path(tmp_path):
    (tmp_path / "normalised.py").write_text(MY_NORMALISED)
    runs = [{"label": "mine", "optimizer": {"class": "normalised.py:Normalised"},
             "params": {"lr": 0.05}},
            {"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    try:
        race = NetworkRace(_network_lab(tmp_path, runs))
        assert race.stack is not None
        # The check found its flat-row update different: it steps the six layer tensors.
        params = [p for g in race.optimizers[0][0].param_groups for p in g["params"]]
        assert [tuple(p.shape) for p in params] == [(16, 2), (16,), (16, 16), (16,), (2, 16),
                                                   (2,)]
        records = list(race.records())
        from importlib.util import module_from_spec, spec_from_file_location

        spec = spec_from_file_location("normalised_ref", tmp_path / "normalised.py")
        module = module_from_spec(spec)
        spec.loader.exec_module(module)
        losses, _val, model = _reference(lambda p: module.Normalised(p, lr=0.05))
        np.testing.assert_allclose([r.loss[0] for r in records], losses, rtol=0, atol=1e-6)
        for ours, ref in zip(race.models[0].parameters(), model.parameters()):
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)
    finally:
        user_code._LOADED.clear()


ZOO_STACKED = ["pytorch_optimizer:Lion", "pytorch_optimizer:Muon", "pytorch_optimizer:SOAP",
               "pytorch_optimizer:SPlus",
               "schedulefree:AdamWScheduleFree"]
ZOO_OWN_GRAPH = ["pytorch_optimizer:SophiaH", "pytorch_optimizer:SAM"]


@pytest.mark.parametrize("names", [ZOO_STACKED, ZOO_OWN_GRAPH], ids=["batched", "per-run"])
def test_zoo_optimizers_that_need_adapters_race_a_network_lab(tmp_path, names):
    runs = [{"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    runs += [{"label": name.split(":")[1], "optimizer": name, "params": {"lr": 0.003}}
             for name in names]
    race = NetworkRace(_network_lab(tmp_path, runs))
    # Closure and create_graph optimizers need their run's own graph: the per-run path.
    assert (race.stack is not None) == (names is ZOO_STACKED)
    records = list(race.records())
    assert len(records) == STEPS + 1
    assert not [e.reason for r in records for e in r.diverged]
    losses = np.array([r.loss for r in records])
    assert np.isfinite(losses).all() and records[-1].alive.all()
    # Every optimizer moved its run: the losses differ from the start and from each other.
    assert (losses[-1] != losses[0]).all()
    assert len(set(np.round(losses[-1], 9))) == len(runs)


@pytest.mark.parametrize("batched", [False, True], ids=["per-run", "batched"])
def test_schedule_free_reports_the_losses_of_its_evaluation_point(tmp_path, batched):
    runs = [{"label": "sf", "optimizer": "schedulefree:AdamWScheduleFree",
             "params": {"lr": 0.01, "warmup_steps": 5}}]
    if batched:
        runs.append({"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}})
    race = NetworkRace(_network_lab(tmp_path, runs))
    assert (race.stack is not None) == batched
    records = list(race.records())
    losses, val, model = _reference(
        lambda params: schedulefree.AdamWScheduleFree(params, lr=0.01, warmup_steps=5),
        train_eval=True)
    ours = _val_losses(records, 0)
    assert set(ours) == set(val)
    for step in val:
        assert ours[step] == pytest.approx(val[step], abs=1e-6), step
    np.testing.assert_allclose([r.loss[0] for r in records], losses, rtol=0, atol=1e-6)
    # Between steps the models hold x (what exported weights and surfaces read).
    for mine_, ref in zip(race.models[0].parameters(), model.parameters()):
        torch.testing.assert_close(mine_, ref, rtol=0, atol=1e-6)
    # x and y really differ here, so a loss taken at y would not pass.
    opt = race.optimizers[0][0]
    opt.train()
    with torch.no_grad():
        moved = max(float((a - b).abs().max())
                    for a, b in zip(race.models[0].parameters(), model.parameters()))
    opt.eval()
    assert moved > 1e-3


def _function_reference(name, make, steps, *, closure=False, create_graph=False,
                        train_eval=False):
    """A plain loop of the optimizer on a float64 point of the lab's function, as the zoo's
    own documentation writes it: the point it answers with after every step."""
    lab = _function_lab([name])
    objective = FunctionRace(lab).objective
    point = torch.tensor(objective.start, dtype=torch.float64, requires_grad=True)
    opt = make([point])

    def evaluate():
        opt.zero_grad()
        loss = objective(point[0], point[1])
        loss.backward(create_graph=create_graph)
        return loss

    points = [point.detach().numpy().copy()]
    for _ in range(steps):
        if train_eval:
            opt.train()
        evaluate()
        opt.step(evaluate) if closure else opt.step()
        if train_eval:
            opt.eval()
        points.append(point.detach().numpy().copy())
    return np.array(points)


LR = 0.002  # SAM's SGD at 0.01 leaves Rosenbrock's valley


def _function_lab(names, steps=30):
    data = {"format": "descent-lab/1", "name": "zoo", "steps": steps,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": name.split(":")[1], "optimizer": name, "params": {"lr": LR}}
                     for name in names]}
    return lab_from_dict(data)


def test_closure_create_graph_and_schedule_free_optimizers_on_a_function_race():
    from pytorch_optimizer import SAM, SophiaH

    names = ["pytorch_optimizer:SAM", "pytorch_optimizer:SophiaH",
             "schedulefree:AdamWScheduleFree"]
    torch.manual_seed(123)  # whatever the global state: Sophia-H draws from its run's stream
    records = list(FunctionRace(_function_lab(names)).records())
    ours = np.array([r.point for r in records])  # (steps + 1, runs, 2)
    assert records[-1].alive.all() and not [e for r in records for e in r.diverged]
    sam = _function_reference(names[0], lambda p: SAM(p, base_optimizer=torch.optim.SGD,
                                                      lr=LR), 30, closure=True)
    # Its stream (core/engine/training_step.py `RandomStream`): lab seed 0, run 1.
    torch.manual_seed(0 * 1009 + 1 + 1 + 2**32)
    sophia = _function_reference(names[1], lambda p: SophiaH(p, lr=LR), 30, create_graph=True)
    free = _function_reference(names[2], lambda p: schedulefree.AdamWScheduleFree(p, lr=LR),
                               30, train_eval=True)
    for i, reference in enumerate((sam, sophia, free)):
        np.testing.assert_allclose(ours[:, i], reference, rtol=0, atol=1e-12, err_msg=names[i])
        assert np.abs(reference[-1] - reference[0]).max() > 1e-4, names[i]  # it moved


@pytest.mark.parametrize("name", ["pytorch_optimizer:SAM", "pytorch_optimizer:SophiaH",
                                  "schedulefree:AdamWScheduleFree"])
def test_the_lr_range_test_ramps_optimizers_that_need_adapters(tmp_path, name):
    from core.tools.lr_finder import lr_range_test

    lab = _network_lab(tmp_path, [{"label": "zoo", "optimizer": name, "params": {"lr": 0.01}}])
    result = lr_range_test(lab, "zoo", lr_min=1e-5, lr_max=1.0, steps=40)
    assert len(result.losses) >= 20, result.stop_reason
    assert np.isfinite(result.losses).all()
    # The ramp really updated the model: the loss moved from its first value.
    assert np.ptp(result.losses) > 1e-4
    # A function lab too: SAM and Sophia-H on their own point, Schedule-Free at y.
    data = {"format": "descent-lab/1", "name": "f", "steps": 10,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": "zoo", "optimizer": name, "params": {"lr": 0.001}}]}
    result = lr_range_test(lab_from_dict(data), "zoo", lr_min=1e-6, lr_max=0.1, steps=30)
    assert len(result.losses) >= 10 and np.isfinite(result.losses).all(), result.stop_reason


def test_a_hessian_estimate_draws_from_its_runs_own_stream(tmp_path):
    """Sophia-H's random probe vectors: the same lab gives the same numbers whatever torch's
    global generator holds."""
    sophia = {"label": "sophia", "optimizer": "pytorch_optimizer:SophiaH",
              "params": {"lr": 0.01, "update_period": 1}}
    def losses(runs, global_seed):
        torch.manual_seed(global_seed)
        race = NetworkRace(_network_lab(tmp_path, runs))
        return np.array([r.loss for r in race.records()])

    first, second = losses([sophia], 1), losses([sophia], 2)
    np.testing.assert_array_equal(first, second)
    assert np.isfinite(first).all() and first[-1, 0] != first[0, 0]


# Runs each exported script in ONE fresh interpreter, as `python script.py --out CSV` would.
DRIVER = """
import runpy, sys
for script, out in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.argv = [script, "--out", out]
    runpy.run_path(script, run_name="__main__")
"""


def test_exported_scripts_with_user_and_zoo_optimizers_reproduce_the_engine(mine):
    import subprocess
    import sys

    from core.engine.runner import run_to_dir
    from core.teaching.metrics_export import read_metrics_csv, rows_differ
    from core.teaching.script_export import write_script

    user = {"class": "opts/mysgd.py:MySGD"}
    function = {"format": "descent-lab/1", "name": "byo function", "seed": 2, "steps": 40,
                "problem": {"kind": "function", "function": "rosenbrock"},
                "runs": [{"label": name if isinstance(name, str) else "mine", "optimizer": name,
                          "params": {"lr": LR}}
                         for name in (user, "pytorch_optimizer:Lion", "pytorch_optimizer:SAM",
                                      "pytorch_optimizer:SophiaH",
                                      "schedulefree:AdamWScheduleFree", "lbfgs")]}
    network_runs = [
        {"label": "mine", "optimizer": user, "params": {"lr": 0.1}},
        {"label": "lion", "optimizer": "pytorch_optimizer:Lion", "params": {"lr": 0.001},
         "schedule": {"name": "cosine"}},
        {"label": "sf", "optimizer": "schedulefree:AdamWScheduleFree", "params": {"lr": 0.01}},
    ]
    labs = {
        "function": lab_from_dict(function, base_dir=mine, consent=TRUST_ALL),
        "batched": _network_lab(mine, [  # the stacked path in the engine
            *network_runs,
            {"label": "zoo muon", "optimizer": "pytorch_optimizer:Muon", "params": {"lr": 0.01}},
            {"label": "soap", "optimizer": "pytorch_optimizer:SOAP", "params": {"lr": 0.003}}]),
        "hessian": _network_lab(mine, [  # create_graph: the per-run path
            {"label": "sophia", "optimizer": "pytorch_optimizer:SophiaH",
             "params": {"lr": 0.01, "update_period": 2}}, network_runs[0]]),
        # Closures re-evaluate the batch; matrix optimizers split off AdamW (per-run path).
        "closure": _network_lab(mine, [
            {"label": "sam", "optimizer": "pytorch_optimizer:SAM", "params": {"lr": 0.01},
             "l2": 1e-3, "clip_norm": 1.0},
            {"label": "lbfgs", "optimizer": "lbfgs", "params": {"lr": 0.1, "max_iter": 3}},
            {"label": "muon", "optimizer": "muon", "params": {"lr": 0.01}},
            {"label": "zoo muon", "optimizer": "pytorch_optimizer:Muon", "params": {"lr": 0.01}},
        ]),
    }
    args = []
    for name, lab in labs.items():
        run_to_dir(lab, mine / name / "app")
        script = write_script(lab, mine / name / "exported.py")[0]
        args += [str(script), str(mine / name / "script.csv")]
    # From another folder: the script finds the user's file by its path, not the working folder.
    elsewhere = mine / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True,
                          timeout=300, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    for name, lab in labs.items():
        ours = read_metrics_csv(mine / name / "app" / "metrics.csv")
        theirs = read_metrics_csv(mine / name / "script.csv")
        assert len(ours) == len(lab.runs) * (lab.steps + 1), name
        assert rows_differ(ours, theirs, 1e-6) == [], name
    function_text = (mine / "function" / "exported.py").read_text()
    assert "import pytorch_optimizer" in function_text
    assert "import schedulefree" in function_text
    assert "MySGD = load_class(" in function_text and "mysgd.py" in function_text
    assert "from core" not in function_text and "import core" not in function_text


@pytest.mark.parametrize("name, params", [
    ("schedulefree:AdamWScheduleFree", {"lr": 0.01}),  # its step count lives in its group
    ("pytorch_optimizer:SophiaH", {"lr": 0.01, "update_period": 1}),  # a random stream
    ("pytorch_optimizer:SAM", {"lr": 0.001}),  # a closure
], ids=["schedule-free", "sophia-h", "sam"])
def test_a_branch_that_changes_nothing_equals_its_zoo_parent(name, params):
    parent = {"label": "parent", "optimizer": name, "params": params}
    twin = {**parent, "label": "twin", "branch": {"from": "parent", "step": 10}}
    lab = lab_from_dict({"format": "descent-lab/1", "name": "b", "steps": 30,
                         "problem": {"kind": "function", "function": "rosenbrock"},
                         "runs": [parent, twin]})
    points = np.array([r.point for r in FunctionRace(lab).records()])
    np.testing.assert_array_equal(points[:, 1], points[:, 0])
    assert np.abs(points[-1, 0] - points[10, 0]).max() > 1e-4  # it moved after the fork


@pytest.mark.parametrize("name, params", [
    ("schedulefree:AdamWScheduleFree", ("warmup_steps=0:10", "lr=1e-3:1e-1:log")),
    ("pytorch_optimizer:SAM", ("rho=0.01:0.2",)),
], ids=["schedule-free", "sam"])
def test_a_sweep_over_introspected_hyperparameters_side_by_side_equals_one_at_a_time(
        tmp_path, name, params):
    from core.tools.sweep.run import Sweep
    from core.tools.sweep.spec import SweepSpec

    lab = _network_lab(tmp_path, [{"label": "zoo", "optimizer": name, "params": {"lr": 0.01}}])
    together = Sweep(SweepSpec(lab, trials=4, batch=4, sampler="random", params=params))
    alone = Sweep(SweepSpec(lab, trials=4, batch=1, sampler="random", params=params))
    assert list(together.run())[-1].complete == list(alone.run())[-1].complete == 4
    names = {text.split("=")[0] for text in params}
    for a, b in zip(together.study.trials, alone.study.trials):
        assert names <= set(a.params) and a.params == b.params
        assert np.isfinite(a.value) and a.value == pytest.approx(b.value, rel=1e-5)
    assert len({t.value for t in together.study.trials}) == 4  # the hyperparameters mattered


def test_several_seeds_race_any_optimizer(mine):
    runs = [{"label": "mine", "optimizer": {"class": "opts/mysgd.py:MySGD"}, "params": {"lr": 0.1}},
            {"label": "sf", "optimizer": "schedulefree:AdamWScheduleFree", "params": {"lr": 0.01}},
            {"label": "sam", "optimizer": "pytorch_optimizer:SAM", "params": {"lr": 0.01}}]
    lab = _network_lab(mine, runs)
    seeded = lab_from_dict({**_lab_dict(lab), "problem": {**_lab_dict(lab)["problem"], "seeds": 3}},
                           base_dir=mine, consent=TRUST_ALL)
    race = NetworkRace(seeded)
    records = list(race.records())
    assert len(race.seed_races) == 3 and records[-1].alive.all()
    assert np.isfinite(np.array([r.loss for r in records])).all()
    # Seed 0 of the multi-seed race is the single-seed race, weight for weight.
    single = NetworkRace(lab)
    for _ in single.records():
        pass
    for ours, theirs in zip(race.seed_races[0].models, single.models):
        for a, b in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _lab_dict(lab):
    from core.lab.format import lab_to_dict

    return lab_to_dict(lab)


def test_internals_show_the_gradient_and_the_step_of_any_optimizer(mine):
    names = [{"class": "opts/mysgd.py:MySGD"}, "pytorch_optimizer:Lion",
             "schedulefree:AdamWScheduleFree", "pytorch_optimizer:SAM"]
    data = {"format": "descent-lab/1", "name": "i", "steps": 12,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": f"r{i}", "optimizer": name, "params": {"lr": LR}}
                     for i, name in enumerate(names)]}
    race = FunctionRace(lab_from_dict(data, base_dir=mine, consent=TRUST_ALL), internals=True)
    records = list(race.records())
    for t in range(1, len(records)):
        for i in range(len(names)):
            info = records[t].internals[i]
            vectors = info.vectors()
            assert vectors["gradient"] is not None and vectors["step"] is not None
            # The step arrow is the move the point made; the gradient is the function's there.
            np.testing.assert_allclose(info.step, records[t].point[i] - records[t - 1].point[i],
                                       rtol=0, atol=1e-12)
            x = torch.tensor(records[t - 1].point[i], requires_grad=True)
            race.objective(x[0], x[1]).backward()
            np.testing.assert_allclose(info.grad, x.grad.numpy(), rtol=1e-12)


def test_a_matrix_optimizer_from_the_zoo_is_refused_on_a_function_with_the_reason():
    from core.errors import LabError

    with pytest.raises(LabError) as error:
        lab_from_dict({"format": "descent-lab/1", "name": "m", "steps": 5,
                       "problem": {"kind": "function", "function": "rosenbrock"},
                       "runs": [{"optimizer": "pytorch_optimizer:Muon", "params": {}}]})
    assert error.value.field == "runs[0].optimizer"
    assert "weight matrices" in error.value.message


# An update that rebinds p.data instead of writing into it (seen in older optimizer code).
MY_REBINDING_SGD = MY_SGD.replace('p.add_(p.grad, alpha=-group["lr"])',
                                  'p.data = p.data - group["lr"] * p.grad')


def test_an_optimizer_that_rebinds_its_parameters_stays_on_its_row_of_the_batch(tmp_path):
    assert "p.data = " in MY_REBINDING_SGD
    (tmp_path / "rebind.py").write_text(MY_REBINDING_SGD)
    runs = [{"label": "mine", "optimizer": {"class": "rebind.py:MySGD"}, "params": {"lr": 0.1}},
            {"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    try:
        race = NetworkRace(_network_lab(tmp_path, runs))
        assert race.stack is not None
        records = list(race.records())
    finally:
        user_code._LOADED.clear()
    losses, _val, model = _reference(lambda params: torch.optim.SGD(params, lr=0.1))
    np.testing.assert_allclose([r.loss[0] for r in records], losses, rtol=0, atol=2e-7)
    # The batched evaluation (which reads the stack's rows) saw the same weights as the model.
    assert race.stack.flat.data_ptr() == race.models[0][0].weight.data_ptr()
    for ours, ref in zip(race.models[0].parameters(), model.parameters()):
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-7)


def test_an_optimizer_without_a_learning_rate_races_with_no_lr(tmp_path):
    """A2Grad keeps no "lr" in its param groups (it sets its own step size): it races on both
    paths with NaN in the lr column, and a schedule for it is refused with the reason."""
    from core.engine.runner import run_to_dir
    from core.errors import LabError

    runs = [{"label": "a2grad", "optimizer": "pytorch_optimizer:A2Grad", "params": {}},
            {"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    lab = _network_lab(tmp_path, runs)
    race = NetworkRace(lab)
    records = list(race.records())
    assert records[-1].alive.all() and np.isnan(records[-1].lr[0]) and records[-1].lr[1] == 0.01
    assert records[-1].loss[0] < records[0].loss[0]
    run_to_dir(lab, tmp_path / "out")  # the metrics file takes the missing lr
    function = {"format": "descent-lab/1", "name": "f", "steps": 10,
                "problem": {"kind": "function", "function": "rosenbrock"},
                "runs": [{"label": "a2grad", "optimizer": "pytorch_optimizer:A2Grad"}]}
    records = list(FunctionRace(lab_from_dict(function)).records())
    assert records[-1].alive.all() and np.isnan(records[-1].lr).all()
    scheduled = {**function, "runs": [{**function["runs"][0], "schedule": {"name": "cosine"}}]}
    with pytest.raises(LabError) as error:
        FunctionRace(lab_from_dict(scheduled))
    assert "no learning rate to schedule" in error.value.message


# A train()/eval() optimizer whose eval() breaks after a few updates.
MY_BAD_MODES = MY_SGD + '''

    def train(self):
        pass

    def eval(self):
        self.switches = getattr(self, "switches", 0) + 1
        if self.switches > 5:
            raise RuntimeError("no average to evaluate at")
'''


def test_a_mode_switch_that_raises_stops_only_its_run(tmp_path):
    (tmp_path / "modes.py").write_text(MY_BAD_MODES)
    runs = [{"label": "modes", "optimizer": {"class": "modes.py:MySGD"}, "params": {"lr": 0.1}},
            {"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]
    try:
        race = NetworkRace(_network_lab(tmp_path, runs))
        records = list(race.records())
    finally:
        user_code._LOADED.clear()
    [event] = [e for r in records for e in r.diverged]
    assert event.label == "modes" and event.kind == "failed"
    assert "no average to evaluate at" in event.traceback
    assert records[-1].alive.tolist() == [False, True] and len(records) == STEPS + 1


def test_a_default_the_users_file_changes_reaches_the_exported_script(tmp_path):
    """HYPERPARAMS in the file says lr defaults to 0.01 (the constructor says 1e-3): a run that
    leaves lr unset steps with 0.01 in the app, and so in the script."""
    import subprocess
    import sys

    from core.engine.runner import run_to_dir
    from core.teaching.metrics_export import read_metrics_csv, rows_differ
    from core.teaching.script_export import write_script

    source = MY_SGD.replace("import torch\n", 'import torch\n\nHYPERPARAMS = {"lr": {"default": 0.01}}\n', 1)
    (tmp_path / "preset.py").write_text(source)
    data = {"format": "descent-lab/1", "name": "preset", "steps": 20,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": "mine", "optimizer": {"class": "preset.py:MySGD"}}]}
    try:
        lab = lab_from_dict(data, base_dir=tmp_path, consent=TRUST_ALL)
        run_to_dir(lab, tmp_path / "app")
        script = write_script(lab, tmp_path / "exported.py")[0]
    finally:
        user_code._LOADED.clear()
    assert "MySGD(params, lr=0.01)" in script.read_text()
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "script.csv")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ours = read_metrics_csv(tmp_path / "app" / "metrics.csv")
    assert ours[("mine", 0)]["lr"] == "0.01"
    assert rows_differ(ours, read_metrics_csv(tmp_path / "script.csv"), 1e-6) == []


def test_two_user_classes_of_one_name_from_two_files_are_refused_by_the_export(tmp_path):
    from core.errors import LabError
    from core.teaching.script_export import export_script

    (tmp_path / "a.py").write_text(MY_SGD)
    (tmp_path / "b.py").write_text(MY_SGD.replace("p.grad, alpha", "p.grad.sign(), alpha"))
    data = {"format": "descent-lab/1", "name": "two", "steps": 5,
            "problem": {"kind": "function", "function": "rosenbrock"},
            "runs": [{"label": "a", "optimizer": {"class": "a.py:MySGD"}},
                     {"label": "b", "optimizer": {"class": "b.py:MySGD"}}]}
    try:
        lab = lab_from_dict(data, base_dir=tmp_path, consent=TRUST_ALL)
        with pytest.raises(LabError) as error:
            export_script(lab)
    finally:
        user_code._LOADED.clear()
    assert "two optimizer classes named MySGD" in error.value.message
