"""``main.py check-optimizer REF`` (cli/check_optimizer.py): the card for torch.optim, the zoo and
the user's own file; user code only with --trust-code; exit 0 all pass, 1 a property fails, 2 a
mistake, as one line."""

from __future__ import annotations

import json
import textwrap

import pytest

import main
from core.optim.check_report import PROPERTIES

# A user's file with all three defects of tests/core/test_checkup.py's BrokenSGD. Importing it
# writes a marker file, so a test can tell whether its code ran.
BROKEN = textwrap.dedent("""\
    from pathlib import Path

    import torch

    Path(__file__).with_suffix(".ran").write_text("executed")


    class BrokenSGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1, momentum=0.9):
            super().__init__(params, {"lr": lr, "momentum": momentum})
            self.velocity = {}  # not in state_dict()

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    v = self.velocity.setdefault(id(p), torch.zeros_like(p))
                    v.mul_(group["momentum"]).add_(p.grad / p.grad.norm())  # 0/0 on zero grad
                    p.add_(v + 1e-12 * torch.randn_like(p), alpha=-group["lr"])  # unseeded
    """)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    # Checked first: main() opens the window for a word that is not a sub-command.
    assert argv[0] in main.SUBCOMMANDS
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def broken_file(tmp_path, monkeypatch):
    (tmp_path / "opts").mkdir()
    path = tmp_path / "opts" / "broken.py"
    path.write_text(BROKEN)
    monkeypatch.chdir(tmp_path)  # the ref is relative to the current folder
    return path


def test_torch_optimizers_pass_with_exit_0(capsys):
    code, out, err = cli(capsys, "check-optimizer", "sgd")
    assert code == 0, out + err
    assert out.startswith("Check of sgd (its defaults), seed 0")
    for title in PROPERTIES.values():
        assert f"✓ {title}" in out
    assert "Passes every check." in out
    code, out, _ = cli(capsys, "check-optimizer", "adam", "--json", "--params", '{"lr": 0.01}')
    assert code == 0
    report = json.loads(out)
    assert report["optimizer"] == "adam" and report["kwargs"] == {"lr": 0.01}
    assert report["passed"] is True and report["failed"] == []
    assert {r["key"]: r["status"] for r in report["results"]} == dict.fromkeys(PROPERTIES,
                                                                                "passed")


def test_user_code_is_refused_without_trust_code_and_never_runs(capsys, broken_file):
    code, out, err = cli(capsys, "check-optimizer", "opts/broken.py:BrokenSGD")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert str(broken_file) in lines[0] and "--trust-code" in lines[0]
    assert not broken_file.with_suffix(".ran").exists()


def test_broken_user_optimizer_card_names_each_broken_property_with_exit_1(capsys, broken_file):
    code, out, err = cli(capsys, "check-optimizer", "opts/broken.py:BrokenSGD", "--trust-code")
    assert broken_file.with_suffix(".ran").exists()
    assert code == 1, out + err
    for key in ("deterministic", "state_dict", "zero_gradient"):
        assert f"✗ {PROPERTIES[key]}" in out
    assert "between two runs with seed 0" in out
    assert "Fails 3 of 9 checks: deterministic, state_dict, zero_gradient." in out
    code, out, _ = cli(capsys, "check-optimizer", "opts/broken.py:BrokenSGD", "--trust-code",
                       "--json", "--seed", "4")
    assert code == 1
    report = json.loads(out)
    assert report["failed"] == ["deterministic", "state_dict", "zero_gradient"]
    assert report["seed"] == 4


def test_zoo_lion_checks_clean(capsys):
    pytest.importorskip("pytorch_optimizer")
    code, out, err = cli(capsys, "check-optimizer", "pytorch_optimizer:Lion", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["optimizer"] == "pytorch_optimizer:Lion" and report["passed"] is True
    assert report["adapters"] == []


@pytest.mark.parametrize("argv, says", [
    (["adamm"], "REF: unknown optimizer 'adamm'"),
    (["adam", "--params", "{lr: 1}"], "--params: must be a JSON object such as"),
    (["adam", "--params", "[1]"], "--params: must be a JSON object, got list"),
    (["adam", "--params", '{"lr": -1}'], "--params.lr: must be >= 0, got -1"),
    (["opts/broken.py:Nope", "--trust-code"], "has no class 'Nope'; its optimizer classes are "
                                              "BrokenSGD"),
    (["opts/missing.py:Lion", "--trust-code"], "REF: no such file"),
])
def test_mistakes_exit_2_with_one_line(capsys, broken_file, argv, says):
    code, out, err = cli(capsys, "check-optimizer", *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and says in err


def test_help_lists_the_sub_command(capsys):
    with pytest.raises(SystemExit):
        main.main(["--help"])
    assert "check-optimizer" in capsys.readouterr().out


def test_what_the_optimizer_prints_stays_out_of_the_json(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chatty.py").write_text(textwrap.dedent("""\
        import torch


        class ChattySGD(torch.optim.SGD):
            def step(self, closure=None):
                print("stepping")  # Schedule-Free's reference classes print their mode switches
                return super().step(closure)
        """))
    code, out, err = cli(capsys, "check-optimizer", "chatty.py:ChattySGD", "--trust-code",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["passed"] is True
    assert "stepping" in err
