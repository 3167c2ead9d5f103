"""Matrix problems (core/problems/datasets/matrices.py) and the singular values of each weight and
update (core/engine/update_spectra.py): the data sets are what they say, Muon's orthogonalised
update is flat where Adam's is not, a plain torch loop reproduces the race, and the recorded
singular values are torch.linalg.svdvals of the weight differences of that loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.engine.network_race import NetworkRace
from core.errors import LabError
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model

# Weight matrices alone: ‖AW − B‖² and a deep linear network (no biases, no activations).
LINEAR = {"layers": [{"linear": 16, "bias": False}]}
DEEP_LINEAR = {"layers": [{"linear": 32, "bias": False}, {"linear": 32, "bias": False},
                          {"linear": 16, "bias": False}]}
PROBLEMS = [
    ({"name": "matrix_regression", "n": 512, "dims": 16, "condition": 100.0}, LINEAR),
    ({"name": "low_rank", "n": 512, "dims": 16, "rank": 2}, DEEP_LINEAR),
]
MUON_LR, ADAM_LR = 0.02, 0.01


def _lab(dataset, model, runs, steps=40, eval_every=20):
    problem = NetworkProblem(dataset=dataset, model=model, loss="mse", batch_size=None,
                             eval_every=eval_every, device="cpu")
    return validate_lab(Lab(name="t", seed=0, steps=steps, problem=problem, runs=tuple(runs)))


def test_the_matrix_sets_have_the_condition_and_rank_they_name():
    data = make_dataset({"name": "matrix_regression", "n": 400, "dims": 8, "condition": 1000.0,
                         "val_fraction": 0.0}, seed=3)
    assert data.x_train.shape == data.y_train.shape == (400, 8)
    assert np.linalg.cond(data.x_train) == pytest.approx(1000.0, rel=1e-3)  # float32 rounding
    low = make_dataset({"name": "low_rank", "n": 400, "dims": 8, "rank": 3, "val_fraction": 0.0},
                       seed=3)
    w, *_ = np.linalg.lstsq(low.x_train, low.y_train, rcond=None)  # noise 0: B = A W* exactly
    s = np.linalg.svd(w, compute_uv=False)
    assert s[2] > 0.1 and s[3] < 1e-4 * s[0]
    again = make_dataset({"name": "low_rank", "n": 400, "dims": 8, "rank": 3,
                          "val_fraction": 0.0}, seed=3)
    np.testing.assert_array_equal(low.x_train, again.x_train)


@pytest.mark.parametrize("spec, field, words", [
    ({"name": "matrix_regression", "condition": 1e30}, "problem.dataset.condition", "[1, 1000000]"),
    ({"name": "matrix_regression", "condition": 0.5}, "problem.dataset.condition", "[1, 1000000]"),
    ({"name": "low_rank", "dims": 4, "rank": 5}, "problem.dataset.rank", "[1, dims] = [1, 4]"),
    ({"name": "low_rank", "dims": 1000}, "problem.dataset.dims", "[2, 256]"),
    ({"name": "low_rank", "n": 8, "dims": 16}, "problem.dataset.n", "at least dims = 16"),
])
def test_bad_matrix_specs_are_refused_with_the_field_and_range(spec, field, words):
    with pytest.raises(LabError) as caught:
        make_dataset(spec, seed=0)
    assert caught.value.field == field and words in str(caught.value)


def _adjusted_lr(shape) -> float:
    """torch's Muon ('original'): lr · √max(1, rows/cols)."""
    rows, cols = shape
    return MUON_LR * math.sqrt(max(1.0, rows / cols))


@pytest.mark.parametrize("dataset, model", PROBLEMS)
def test_muons_update_singular_values_are_flat_and_adams_spread(dataset, model):
    # Muon without weight decay, so ΔW is lr times the Newton–Schulz output alone; its singular
    # values divided by the adjusted lr are the polynomial's output, which oscillates in a band
    # around 1 (measured here: 0.72 – 1.20 for the leading quarter; the test allows
    # [0.65, 1.25]). Five steps lift a singular value only by ~3.4⁵ ≈ 500, so the gradient's
    # smallest directions (the problem is ill-conditioned) stay small: not all are in the band.
    # Adam's leading half spreads at least 1.5× as wide (measured 2.0× – 5.6×).
    lab = _lab(dataset, model, [RunSpec("muon", "muon", {"lr": MUON_LR, "weight_decay": 0.0}),
                                RunSpec("adam", "adam", {"lr": ADAM_LR})])
    race = NetworkRace(lab)
    shapes = [m.weight.shape for m in race.models[0] if isinstance(m, torch.nn.Linear)]
    evaluations = [r.evaluation for r in race.records()
                   if r.evaluation is not None and r.evaluation.update_spectra is not None]
    assert len(evaluations) == 2  # steps 0 and 20 (the last step has no update after it)
    for ev in evaluations:
        for muon, adam, shape in zip(*ev.update_spectra, shapes):
            flat = muon / _adjusted_lr(shape)
            top = len(flat) // 4
            assert flat.max() <= 1.25
            assert np.all(flat[:top] >= 0.65), flat
            half = len(flat) // 2
            muon_spread = flat[0] / flat[half - 1]
            adam_spread = adam[0] / adam[half - 1]
            assert adam_spread > 1.5 * muon_spread, (adam_spread, muon_spread)


def _plain_loop(lab: Lab, steps: int):
    """By hand: the same data and initial weight, a bias-free nn.Linear, torch.optim.Muon,
    full batch; the weights before every step."""
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    built = build_model(spec, generator=torch.Generator().manual_seed(lab.seed))
    layer = torch.nn.Linear(16, 16, bias=False)
    layer.load_state_dict({k[2:]: v for k, v in built.state_dict().items()})
    muon = torch.optim.Muon(layer.parameters(), lr=MUON_LR, weight_decay=0.0)
    x, y = torch.as_tensor(data.x_train, dtype=torch.float32), torch.as_tensor(data.y_train)
    losses, weights = [], []
    for step in range(steps + 1):
        loss = F.mse_loss(layer(x), y)
        losses.append(loss.item())
        weights.append(layer.weight.detach().clone())
        if step < steps:
            muon.zero_grad()
            loss.backward()
            muon.step()
    return np.array(losses), weights


def test_a_matrix_race_reproduces_a_plain_torch_loop_and_records_svdvals_of_its_updates():
    dataset, model = PROBLEMS[0]
    lab = _lab(dataset, model, [RunSpec("muon", "muon", {"lr": MUON_LR, "weight_decay": 0.0})],
               steps=30, eval_every=10)
    records = list(NetworkRace(lab).records())
    ref, weights = _plain_loop(lab, 30)
    np.testing.assert_allclose([r.loss[0] for r in records], ref, rtol=0, atol=1e-6)
    evaluated = [r for r in records if r.evaluation is not None]
    assert [r.step for r in evaluated] == [0, 10, 20, 30]
    for r in evaluated:
        t = r.step
        expected_w = torch.linalg.svdvals(weights[t].double()).numpy()
        np.testing.assert_allclose(r.evaluation.weight_spectra[0][0], expected_w, atol=1e-6)
        if t == 30:
            assert r.evaluation.update_spectra is None
            continue
        expected_dw = torch.linalg.svdvals((weights[t + 1] - weights[t]).double()).numpy()
        np.testing.assert_allclose(r.evaluation.update_spectra[0][0], expected_dw, atol=1e-6)


def test_spectra_are_skipped_only_where_the_svds_would_outweigh_the_evaluation():
    from core.engine.network_evaluation import linear_weights
    from core.engine.update_spectra import update_spectra

    small = [torch.nn.Sequential(torch.nn.Linear(256, 256))]  # the largest matrix set: kept
    weights, updates = update_spectra(small, linear_weights(small))
    assert weights[0][0].shape == (256,) and np.all(updates[0][0] == 0)  # no step in between
    large = [torch.nn.Sequential(torch.nn.Linear(400, 400))]
    assert update_spectra(large, linear_weights(large)) == (None, None)


def test_a_linear_layer_without_bias_is_a_weight_matrix_alone_everywhere():
    from core.teaching.script_export import export_script

    spec = validate_model({"layers": [{"linear": 8, "bias": False}, {"linear": 4}]}, (6,), 4)
    assert spec.n_params == 6 * 8 + (8 * 4 + 4)
    assert spec.to_dict()["layers"][0] == {"linear": 8, "bias": False}
    model = build_model(spec, generator=torch.Generator().manual_seed(0))
    assert model[0].bias is None and model[1].bias is not None
    lab = _lab(*PROBLEMS[0], [RunSpec("muon", "muon", {"lr": MUON_LR})], steps=2)
    assert "nn.Linear(16, 16, bias=False)" in export_script(lab)
    with pytest.raises(LabError) as caught:
        validate_model({"layers": [{"linear": 4, "bias": "no"}]}, (6,), 4)
    assert caught.value.field == "problem.model.layers[0].bias"
    with pytest.raises(LabError) as caught:
        validate_model({"layers": [{"linear": 4, "bais": False}]}, (6,), 4)
    assert caught.value.field == "problem.model.layers[0]"  # the one-key error, as before


def test_a_batched_deep_linear_race_without_biases_reproduces_a_plain_torch_loop():
    model = {"layers": [{"linear": 8, "bias": False}, {"linear": 8, "bias": False}]}
    lab = _lab({"name": "low_rank", "n": 256, "dims": 8}, model,
               [RunSpec("adam", "adam", {"lr": 0.01}), RunSpec("adam 2", "adam", {"lr": 0.02})],
               steps=30, eval_every=10)
    race = NetworkRace(lab)
    ours = [r.loss[0] for r in race.records()]
    assert race.seed_races[0].stack is not None  # the batched path, with no bias slots
    data = make_dataset(lab.problem.dataset, lab.seed)
    built = build_model(validate_model(model, data.input_shape, data.n_outputs),
                        generator=torch.Generator().manual_seed(lab.seed))
    net = torch.nn.Sequential(torch.nn.Linear(8, 8, bias=False), torch.nn.Linear(8, 8, bias=False))
    net.load_state_dict(built.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.as_tensor(data.x_train, dtype=torch.float32), torch.as_tensor(data.y_train)
    ref = []
    for step in range(31):
        loss = F.mse_loss(net(x), y)
        ref.append(loss.item())
        if step < 30:
            opt.zero_grad()
            loss.backward()
            opt.step()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_the_update_spread_claim_is_the_median_of_svdvals_ratios_of_a_plain_loop(tmp_path):
    # The lesson muon_matrices's claim kind: σ_1/σ_middle of ΔW, the median over evaluations,
    # recomputed here from the plain torch loop's weights with float64 svdvals.
    import json

    from core.teaching.lessons.check import check_claims
    from core.teaching.lessons.loader import lesson_from_dict

    dataset, model = PROBLEMS[0]
    lab = {"format": "descent-lab/1", "name": "m", "seed": 0, "steps": 30,
           "problem": {"kind": "network", "dataset": dataset, "model": model, "loss": "mse",
                       "batch_size": None, "eval_every": 10, "device": "cpu"},
           "runs": [{"label": "Muon", "optimizer": "muon",
                     "params": {"lr": MUON_LR, "weight_decay": 0.0}}]}
    (tmp_path / "m.lab.json").write_text(json.dumps(lab), encoding="utf-8")
    lesson = {"format": "descent-lesson/1", "name": "m", "title": "t", "lab": "m.lab.json",
              "summary": "s", "notice": ["n"], "why": "w", "question": "q",
              "claims": [{"kind": "update_spread", "run": "Muon", "at_most": 2},
                         {"kind": "update_spread", "run": "Muon", "at_least": 10}]}
    flat, spread_out = check_claims(lesson_from_dict(lesson, tmp_path, "m"))
    _, weights = _plain_loop(validate_lab(_lab(dataset, model, [
        RunSpec("Muon", "muon", {"lr": MUON_LR, "weight_decay": 0.0})], steps=30,
        eval_every=10)), 30)
    ratios = []
    for t in (0, 10, 20):  # step 30 has no update after it
        s = torch.linalg.svdvals((weights[t + 1] - weights[t]).double()).numpy()
        ratios.append(s[0] / s[7])  # 16 singular values: the middle one is the 8th
    assert flat.values["spread"] == pytest.approx(float(np.median(ratios)), rel=1e-4)
    assert flat.holds and not spread_out.holds
    assert "median over 3 evaluation(s)" in flat.measured
