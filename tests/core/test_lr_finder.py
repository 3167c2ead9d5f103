"""The LR range test: an exact exponential ramp, weights put back bit for bit, and suggestions
that land in the stable range of a quadratic whose curvature we know."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest
import torch

from core.errors import LabError
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.problems.datasets.build import make_dataset
from core.problems.model_spec import validate_model
from core.problems.models import build_model
from core.tools.lr_finder import RULES, apply_lr, explain, longest_valley, lr_range_test

# f = x² + 10·y²: Hessian diag(2, 20), so L = 20 and plain gradient descent is stable for
# lr < 2 / L = 0.1 and diverges beyond.
QUADRATIC = {"expression": "x**2 + 10*y**2"}
STABLE_LIMIT = 2 / 20


def _quadratic_lab() -> Lab:
    return validate_lab(Lab(name="bowl", steps=50, problem=FunctionProblem(QUADRATIC, (1.0, 1.0)),
                            runs=(RunSpec("GD", "sgd", {"lr": 0.001}),)))


def _network_lab(**run) -> Lab:
    problem = NetworkProblem(dataset={"name": "moons", "n": 128, "noise": 0.2,
                                      "val_fraction": 0.25},
                             model={"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]},
                             batch_size=32, eval_every=10, device="cpu")
    return validate_lab(Lab(name="net", seed=3, steps=20, problem=problem,
                            runs=(RunSpec("Adam", "adam", {"lr": 0.01}, **run),)))


def test_suggestions_on_a_known_quadratic_lie_in_the_stable_range():
    result = lr_range_test(_quadratic_lab(), lr_min=1e-5, lr_max=1.0, steps=100)
    assert set(result.suggestions) == set(RULES)
    assert result.diverged, "the ramp passes 2/L, so the loss must blow up"
    lr_at_min = result.lrs[result.suggestion_index["minimum/10"]]
    for rule, lr in result.suggestions.items():
        assert 1e-5 <= lr < STABLE_LIMIT, (rule, lr)
    # Ordered sensibly: every rule stays below the lr where the loss bottomed out, and that
    # one is below where the test stopped.
    assert result.suggestions["minimum/10"] == pytest.approx(lr_at_min / 10)
    assert max(result.suggestions.values()) < lr_at_min <= result.lrs[-1]
    sentence = explain(result)
    assert "steepest" in sentence.lower() and "valley" in sentence


def _plain_gd_final_loss(lr: float, steps: int = 200) -> float:
    """The reference: plain torch.optim.SGD on f = x² + 10·y² from (1, 1)."""
    point = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([point], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = point[0] ** 2 + 10 * point[1] ** 2
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(point[0] ** 2 + 10 * point[1] ** 2)


def test_every_suggestion_converges_with_plain_pytorch_and_2_over_L_is_the_edge():
    result = lr_range_test(_quadratic_lab(), lr_min=1e-5, lr_max=1.0, steps=100)
    start = 11.0  # f(1, 1)
    for rule, lr in result.suggestions.items():
        assert _plain_gd_final_loss(lr) < start, (rule, lr)  # a suggestion makes progress
    # The stable range the suggestions must respect is real: just below 2/L plain SGD still
    # converges, just above it blows up.
    assert _plain_gd_final_loss(0.95 * STABLE_LIMIT) < 1e-3
    assert _plain_gd_final_loss(1.05 * STABLE_LIMIT) > 1e3


def test_ramp_is_exponential_and_smoothing_is_bias_corrected():
    result = lr_range_test(_quadratic_lab(), lr_min=1e-4, lr_max=1e-2, steps=30)
    assert len(result.lrs) == 30 and result.stop_reason == "finished the ramp"
    expected = 1e-4 * 100.0 ** (np.arange(30) / 29)
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-12)
    # Bias correction: the first smoothed value is the first loss, not (1-β)·loss.
    assert result.smoothed[0] == pytest.approx(result.losses[0])
    beta, avg = 0.98, 0.0
    for i, loss in enumerate(result.losses):
        avg = beta * avg + (1 - beta) * loss
        assert result.smoothed[i] == pytest.approx(avg / (1 - beta ** (i + 1)))


def test_network_weights_are_restored_exactly():
    lab = _network_lab(l2=1e-3, clip_norm=5.0)
    data = make_dataset(lab.problem.dataset, lab.seed)
    spec = validate_model(lab.problem.model, data.input_shape, data.n_outputs)
    model = build_model(spec, generator=torch.Generator().manual_seed(1))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moved = []
    first_weight = next(model.parameters())

    def watch(i, lr, loss):
        moved.append(not torch.equal(first_weight, before["0.weight"]))

    result = lr_range_test(lab, model=model, lr_min=1e-4, lr_max=10.0, steps=40, on_step=watch)
    assert any(moved), "the test must really train the model"
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        assert torch.equal(after[key], before[key]), key
    assert not model.training  # its mode is put back too
    assert all(p.grad is None for p in model.parameters())
    assert np.all(np.isfinite(result.losses))


def test_valley_is_the_longest_decreasing_run():
    values = np.array([5, 4, 6, 3, 2, 2.5, 1, 0.5, 7, 8])
    start, end = longest_valley(values)
    assert values[end] == 0.5 and end - start == 6  # 5, 4, 3, 2, 1, 0.5 (longest chain)


def test_bad_range_and_unknown_run_are_lab_errors():
    lab = _quadratic_lab()
    with pytest.raises(LabError, match="--min"):
        lr_range_test(lab, lr_min=1.0, lr_max=0.1)
    with pytest.raises(LabError, match="--run"):
        lr_range_test(lab, run="nope")
    with pytest.raises(LabError, match="--steps"):
        lr_range_test(lab, steps=2)


def test_apply_lr_sets_the_runs_lr():
    lab = apply_lr(_quadratic_lab(), "GD", 0.02)
    assert lab.runs[0].params["lr"] == 0.02


def test_cli_handler_writes_csv_and_suggestions(tmp_path, capsys):
    from cli.lr_find import register

    path = tmp_path / "bowl.lab.json"
    save_lab(_quadratic_lab(), path)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["lr-find", str(path), "--min", "1e-5", "--max", "1",
                              "--steps", "60", "--out", str(out)])
    assert args.handler(args) == 0
    rows = list(csv.DictReader((out / "lr_find.csv").open()))
    assert rows and set(rows[0]) == {"step", "lr", "loss", "smoothed_loss"}
    data = json.loads((out / "suggestions.json").read_text())
    assert set(data["suggestions"]) == set(RULES) and data["explanation"]
    printed = capsys.readouterr().out
    assert "valley" in printed and "minimum/10" in printed
