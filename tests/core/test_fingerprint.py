"""An optimizer's fingerprint (core/optim/fingerprint.py, ``main.py fingerprint``): each measured
property against its closed form (2/λ, (2 + 2β)/λ, Adam's ε identity, rotation equivariance of
gradient descent), the card and its JSON, a zoo optimizer, and a raising optimizer."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

import main
from core.optim.catalog import get_optimizer_info
from core.optim.check_report import Adapters
from core.optim.fingerprint import (
    FAILED,
    INVARIANCE_TOL,
    PROPERTIES,
    Problem,
    fingerprint,
    largest_stable_lr,
    trajectory,
)


@pytest.fixture(scope="module")
def sgd():
    return fingerprint(torch.optim.SGD, {"lr": 0.01}, name="sgd")


@pytest.fixture(scope="module")
def heavy_ball():
    return fingerprint(torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "dampening": 0.0},
                       name="sgd")


@pytest.fixture(scope="module")
def adam():
    return fingerprint(torch.optim.Adam, {"lr": 0.01}, name="adam")


def test_gradient_descent_largest_stable_lr_is_two_over_lambda(sgd):
    measured = sgd.result("stable_lr").value
    assert measured == pytest.approx(2 / 10, rel=0.01)
    assert sgd.result("stable_lr").numbers["theory"] == pytest.approx(0.2)


def test_heavy_ball_largest_stable_lr_is_two_plus_two_beta_over_lambda(heavy_ball):
    assert heavy_ball.result("stable_lr").value == pytest.approx((2 + 2 * 0.9) / 10, rel=0.01)


def test_stable_lr_follows_the_curvature():
    def make(params, **over):
        return torch.optim.SGD(params, **{"lr": 0.01, **over})

    lr, _ = largest_stable_lr(make, Adapters(), 4.0, 0.01)
    assert lr == pytest.approx(2 / 4, rel=0.01)


def test_adam_is_scale_invariant_to_the_eps_effect_and_sgd_is_not(adam, sgd):
    # Tolerance: INVARIANCE_TOL = 1e-6 relative to how far the run moved; Adam's ε = 1e-8 beside
    # gradients of order 0.1-10 leaves ~1e-7, gradient descent differs by order 1.
    assert INVARIANCE_TOL == 1e-6
    assert adam.result("scale").holds and adam.result("scale").value <= INVARIANCE_TOL
    assert not sgd.result("scale").holds and sgd.result("scale").value > 0.1
    # The probe's own ε identity (what holds at any lr, where ε/|g| may exceed the tolerance).
    numbers = adam.result("scale").numbers
    assert numbers["c=10 vs eps/c"] < 1e-12 and numbers["c=0.1 vs eps/c"] < 1e-12
    # What is left is exactly the ε effect: Adam on 10·f with ε is Adam on f with ε/10.
    problem = Problem(0)

    def make(params, **over):
        return torch.optim.Adam(params, **{"lr": 0.01, **over})

    scaled, _ = trajectory(make, Adapters(), lambda x: problem.loss(x, scale=10.0),
                           problem.start, 50)
    small_eps, _ = trajectory(make, Adapters(), problem.loss, problem.start, 50, eps=1e-9)
    assert max(float((a - b).abs().max()) for a, b in zip(scaled, small_eps)) < 1e-12


def test_sgd_is_rotation_equivariant_and_adam_is_not(sgd, heavy_ball, adam):
    assert sgd.result("rotation").value <= 1e-10 and sgd.result("rotation").holds
    assert heavy_ball.result("rotation").value <= 1e-10
    assert adam.result("rotation").value > 0.1 and not adam.result("rotation").holds


def test_update_and_eps(sgd, adam):
    assert sgd.result("update").numbers["effective_step_mean"] == pytest.approx(1.0, rel=1e-9)
    assert adam.result("update").numbers["update_rms_first"] == pytest.approx(0.01, rel=1e-4)
    assert sgd.result("eps").status == "not applicable"
    eps = adam.result("eps")
    assert 0 < eps.value < 1e-5  # measured, small at ε = 1e-8


def test_zoo_lion_is_scale_invariant():
    info = get_optimizer_info("pytorch_optimizer:Lion")
    fp = fingerprint(info.cls, {"lr": 1e-3}, build=info.build, declared=Adapters.of(info),
                     name="pytorch_optimizer:Lion")
    assert fp.result("scale").holds and fp.result("scale").value == 0.0  # sign updates
    assert not fp.result("rotation").holds
    assert fp.result("update").numbers["update_rms_over_lr"] == pytest.approx(1.0)


class Raising(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("boom in step")


def test_a_raising_optimizer_fails_each_probe_with_its_message_and_leaves_the_global_rng():
    before = torch.get_rng_state()
    fp = fingerprint(Raising, {"lr": 0.01})
    assert torch.equal(before, torch.get_rng_state())
    assert [r.key for r in fp.results] == list(PROPERTIES)
    for key in ("scale", "rotation", "stable_lr", "update"):
        assert fp.result(key).status == FAILED
        assert "boom in step" in fp.result(key).measured


def test_cli_card_and_json(capsys):
    code = main.main(["fingerprint", "sgd", "--params", '{"lr": 0.01, "momentum": 0.9}'])
    out = capsys.readouterr().out
    assert code == 0
    assert "Fingerprint of sgd(lr=0.01, momentum=0.9)" in out
    assert "largest stable lr 0.38" in out and "(2 + 2β)/((1 − dampening)·λ) = 0.38" in out
    code = main.main(["fingerprint", "sgd", "--curvature", "4", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["curvature"] == 4.0
    stable = next(r for r in data["results"] if r["key"] == "stable_lr")
    assert stable["value"] == pytest.approx(0.5, rel=0.01)
    assert [r["key"] for r in data["results"]] == list(PROPERTIES)


def test_cli_mistakes_are_one_line_exit_2_and_user_code_runs_with_consent(capsys, tmp_path):
    assert main.main(["fingerprint", "sgd", "--curvature", "0"]) == 2
    assert "--curvature" in capsys.readouterr().err
    mine = tmp_path / "mine.py"
    mine.write_text(textwrap.dedent("""\
        from pathlib import Path
        Path(__file__).with_suffix(".ran").write_text("executed")
        import torch
        class Mine(torch.optim.SGD):
            pass
        """))
    assert main.main(["fingerprint", f"{mine}:Mine"]) == 2
    assert "--trust-code" in capsys.readouterr().err
    assert not mine.with_suffix(".ran").exists()
    # With consent it runs, and is fingerprinted like torch's SGD, which it is.
    assert main.main(["fingerprint", f"{mine}:Mine", "--trust-code", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert mine.with_suffix(".ran").exists()
    stable = next(r for r in data["results"] if r["key"] == "stable_lr")
    assert stable["value"] == pytest.approx(0.2, rel=0.01)


def test_a_diverging_setting_fails_the_trajectory_probes_and_still_measures_stability():
    # lr = 1 on curvatures up to 10: |1 − 10| = 9 a step, 9⁵⁰ after the run; the stability
    # probe searches its own lr and still finds 2/λ.
    fp = fingerprint(torch.optim.SGD, {"lr": 1.0})
    for key in ("scale", "rotation", "update"):
        assert fp.result(key).status == FAILED and "diverges" in fp.result(key).measured
    assert fp.result("stable_lr").value == pytest.approx(0.2, rel=0.01)


def test_traces_hold_the_series_behind_the_numbers(sgd, adam):
    # The window's plots draw these: their extremes are the card's numbers, and the bisection's
    # last stable lr is the measured one.
    scale = sgd.result("scale")
    for c, gaps in scale.traces.items():
        assert max(gaps) == pytest.approx(scale.numbers[c], rel=1e-12)
    tried = sgd.result("stable_lr").traces["tried"]
    assert max(lr for lr, stable in tried if stable) == sgd.result("stable_lr").value
    assert min(lr for lr, stable in tried if not stable) > sgd.result("stable_lr").value
    update = adam.result("update")
    effective = update.traces["effective_step"]
    assert sum(effective) / len(effective) == pytest.approx(update.numbers["effective_step_mean"])
    assert "traces" not in json.dumps(adam.to_json())
    assert json.loads(adam.to_json_text()) == adam.to_json()


def test_stop_cancels_between_runs_and_progress_names_each_probe():
    from core.optim.fingerprint import Cancelled

    seen = []

    def progress(key, index, runs):
        seen.append((key, index, runs))

    fingerprint(torch.optim.SGD, {"lr": 0.01}, progress=progress)
    assert seen[0][:2] == ("scale", 0)
    # Each probe is named with its index (the eps probe builds SGD once to read its group).
    assert {(k, i) for k, i, _ in seen} == {(k, i) for i, k in enumerate(PROPERTIES)}
    assert max(runs for k, _, runs in seen if k == "stable_lr") > 10  # the bisection's runs
    with pytest.raises(Cancelled):
        fingerprint(torch.optim.SGD, {"lr": 0.01}, stop=lambda: len(seen) > 0,
                    progress=progress)


def test_resolve_optimizer_names_and_consent(tmp_path):
    from core.errors import LabError
    from core.lab.code import resolve_optimizer
    from core.optim.user_code import CodeNotTrusted

    name, info, kwargs = resolve_optimizer("Adam", {"lr": 0.1}, None)
    assert (name, info.cls, kwargs) == ("adam", torch.optim.Adam, {"lr": 0.1})
    with pytest.raises(LabError, match=r"params\.lr"):
        resolve_optimizer("sgd", {"lr": -1}, None)
    mine = tmp_path / "mine2.py"
    mine.write_text("import torch\nclass Mine(torch.optim.SGD):\n    pass\n")
    asked = []
    with pytest.raises(CodeNotTrusted):
        resolve_optimizer(f"{mine}:Mine", {}, lambda ref, sha: asked.append(sha) or False)
    assert len(asked) == 1
    name, info, _ = resolve_optimizer(f"{mine}:Mine", {}, lambda ref, sha: True)
    assert issubclass(info.cls, torch.optim.SGD) and name.endswith(":Mine")
