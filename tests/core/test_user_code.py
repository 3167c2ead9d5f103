"""A lab that names the user's own optimizer code: consent before anything runs, clear errors,
files that save and reopen, and a changed file reported (core/lab/code.py, core/optim/user_code.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import LabError
from core.lab.code import TRUST_ALL, code_changes, code_in_lab
from core.lab.format import load_lab, save_lab
from core.optim import user_code
from core.optim.catalog import build_optimizer, get_optimizer_info
from core.optim.user_code import CodeNotTrusted

ROOT = Path(__file__).resolve().parents[2]

# A file whose loading leaves a mark: proof of whether its code ran.
SGD_SOURCE = '''\
from pathlib import Path
import torch

Path(__file__).with_suffix(".ran").write_text("loaded")

HYPERPARAMS = {"lr": {"default": 0.01, "low": 0.0, "log": True, "search": [1e-4, 1.0],
                      "help": "How far each step goes."}}


class MySGD(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
'''


def _lab(tmp_path: Path, optimizer) -> Path:
    path = tmp_path / "byo.lab.json"
    path.write_text(json.dumps({
        "format": "descent-lab/1", "name": "byo", "steps": 30,
        "problem": {"kind": "function", "function": "rosenbrock"},
        "runs": [{"label": "torch", "optimizer": "sgd", "params": {"lr": 0.001}},
                 {"optimizer": optimizer, "params": {"lr": 0.001}}],
    }))
    return path


@pytest.fixture
def code_dir(tmp_path):
    (tmp_path / "opts").mkdir()
    source = tmp_path / "opts" / "mysgd.py"
    source.write_text(SGD_SOURCE)
    yield tmp_path
    user_code._LOADED.clear()


def test_a_lab_naming_code_is_refused_without_consent_and_nothing_runs(code_dir):
    lab_path = _lab(code_dir, {"class": "opts/mysgd.py:MySGD"})
    asked = []
    with pytest.raises(CodeNotTrusted) as info:
        load_lab(lab_path, consent=lambda ref, sha: asked.append((ref, sha)) or False)
    assert info.value.field == "runs[1].optimizer"
    assert "opts/mysgd.py:MySGD" in info.value.message and "--trust-code" in info.value.message
    assert not (code_dir / "opts" / "mysgd.ran").exists(), "the file ran without consent"
    # The question showed the file and the SHA-256 of exactly its bytes.
    [(ref, sha)] = asked
    assert Path(ref.target) == (code_dir / "opts" / "mysgd.py").resolve()
    import hashlib
    assert sha == hashlib.sha256((code_dir / "opts" / "mysgd.py").read_bytes()).hexdigest()
    with pytest.raises(CodeNotTrusted):
        load_lab(lab_path)  # no consent callback at all: refused too
    assert not (code_dir / "opts" / "mysgd.ran").exists()


def test_with_consent_the_class_loads_and_is_described_from_its_constructor(code_dir):
    lab = load_lab(_lab(code_dir, {"class": "opts/mysgd.py:MySGD"}), consent=TRUST_ALL)
    assert (code_dir / "opts" / "mysgd.ran").exists()
    run = lab.runs[1]
    assert run.label == "MySGD"
    info = get_optimizer_info(run.optimizer)
    assert info.group == "yours" and info.cls.__name__ == "MySGD"
    assert info.hyperparam("lr").default == 0.01  # the file's HYPERPARAMS
    assert info.hyperparam("momentum").default == 0.0  # introspected
    import torch
    opt = build_optimizer(run.optimizer, run.params, [torch.zeros(2, requires_grad=True)])
    assert type(opt).__name__ == "MySGD" and opt.param_groups[0]["lr"] == 0.001
    # Code loaded once needs no new consent while its content is unchanged (the GUI's edits
    # re-check labs through lab_from_dict without a consent callback).
    again = load_lab(_lab(code_dir, {"class": "opts/mysgd.py:MySGD"}))
    assert again.runs[1].optimizer == run.optimizer


def test_saving_writes_the_path_relative_to_the_lab_and_the_content_hash(code_dir, tmp_path):
    lab = load_lab(_lab(code_dir, {"class": "opts/mysgd.py:MySGD"}), consent=TRUST_ALL)
    save_lab(lab, code_dir / "saved.lab.json")
    entry = json.loads((code_dir / "saved.lab.json").read_text())["runs"][1]["optimizer"]
    import hashlib
    sha = hashlib.sha256((code_dir / "opts" / "mysgd.py").read_bytes()).hexdigest()
    assert entry == {"class": "opts/mysgd.py:MySGD", "sha256": sha}
    # Saved into another folder: the path is rewritten relative to the new place, so the
    # saved lab still finds the same file.
    elsewhere = code_dir / "sub" / "deeper"
    elsewhere.mkdir(parents=True)
    save_lab(lab, elsewhere / "moved.lab.json")
    moved = json.loads((elsewhere / "moved.lab.json").read_text())["runs"][1]["optimizer"]
    assert moved["class"] == "../../opts/mysgd.py:MySGD"
    reopened = load_lab(elsewhere / "moved.lab.json")
    assert reopened.runs[1].optimizer == lab.runs[1].optimizer


def test_a_changed_file_asks_again_and_is_reported(code_dir):
    lab_path = _lab(code_dir, {"class": "opts/mysgd.py:MySGD"})
    lab = load_lab(lab_path, consent=TRUST_ALL)
    save_lab(lab, lab_path)
    source = code_dir / "opts" / "mysgd.py"
    source.write_text(SGD_SOURCE.replace("alpha=-group[\"lr\"]", "alpha=-2 * group[\"lr\"]"))
    with pytest.raises(CodeNotTrusted):
        load_lab(lab_path)  # new content: the old consent does not cover it
    reloaded = load_lab(lab_path, consent=TRUST_ALL)
    [line] = code_changes(reloaded)
    assert "runs[1] (MySGD)" in line and "opts/mysgd.py:MySGD changed since the lab was saved" in line
    # The new content is what races now.
    import torch
    point = torch.ones(1, requires_grad=True)
    point.grad = torch.ones(1)
    build_optimizer(reloaded.runs[1].optimizer, {"lr": 0.1}, [point]).step()
    assert point.item() == pytest.approx(0.8)


@pytest.mark.parametrize("optimizer, field, words", [
    ({"class": "opts/missing.py:MySGD"}, "runs[1].optimizer", "no such file"),
    ({"class": "opts/mysgd.py:Nope"}, "runs[1].optimizer", "has no class 'Nope'; its optimizer classes are MySGD"),
    ({"class": "opts/mysgd.py:Path"}, "runs[1].optimizer", "is not a torch.optim.Optimizer subclass"),
    ({"class": "opts/mysgd.py"}, "runs[1].optimizer", 'must name a class like "opts/lion.py:Lion"'),
    ({"class": "opts/mysgd.py:1x"}, "runs[1].optimizer", "is not a Python class name"),
    ({"clas": "opts/mysgd.py:MySGD"}, "runs[1].optimizer.clas", "unknown key"),
    ({"class": "opts/mysgd.py:MySGD", "sha256": "abc"}, "runs[1].optimizer.sha256", "64 lower-case hex"),
    (42, "runs[1].optimizer", 'an optimizer name like "adam"'),
])
def test_bad_references_name_the_field(code_dir, optimizer, field, words):
    with pytest.raises(LabError) as info:
        load_lab(_lab(code_dir, optimizer), consent=TRUST_ALL)
    assert info.value.field == field
    assert words in info.value.message


def test_a_file_that_fails_to_load_says_where(code_dir):
    (code_dir / "opts" / "broken.py").write_text("import torch\n\nx = 1 +\n")
    with pytest.raises(LabError) as info:
        load_lab(_lab(code_dir, {"class": "opts/broken.py:X"}), consent=TRUST_ALL)
    assert "failed to load (line 3): SyntaxError" in info.value.message
    (code_dir / "opts" / "raises.py").write_text("import torch\n\nraise RuntimeError('nope')\n")
    with pytest.raises(LabError) as info:
        load_lab(_lab(code_dir, {"class": "opts/raises.py:X"}), consent=TRUST_ALL)
    assert "failed to load (line 3): RuntimeError: nope" in info.value.message


def test_an_installed_module_is_code_too_and_is_found_without_running(code_dir, monkeypatch):
    package = code_dir / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('init.ran').write_text('x')\n")
    (package / "fast.py").write_text(SGD_SOURCE)
    monkeypatch.syspath_prepend(str(code_dir))
    lab_path = _lab(code_dir, "mypkg.fast:MySGD")
    [(field, ref)] = code_in_lab(json.loads(lab_path.read_text()), code_dir)
    assert field == "runs[1].optimizer" and ref.kind == "module"
    assert user_code.code_file(ref) == package / "fast.py"
    with pytest.raises(CodeNotTrusted):
        load_lab(lab_path)
    assert not (package / "init.ran").exists(), "finding the module ran its package"
    lab = load_lab(lab_path, consent=TRUST_ALL)
    assert get_optimizer_info(lab.runs[1].optimizer).cls.__module__ == "mypkg.fast"
    sys.modules.pop("mypkg.fast", None)
    sys.modules.pop("mypkg", None)


def test_zoo_names_need_no_consent(code_dir):
    lab = load_lab(_lab(code_dir, "pytorch_optimizer:Lion"))
    info = get_optimizer_info(lab.runs[1].optimizer)
    assert info.group == "pytorch-optimizer" and info.cls.__name__ == "Lion"
    assert json.loads(json.dumps(lab.runs[1].optimizer)) == "pytorch_optimizer:Lion"


def test_the_command_line_refuses_code_without_trust_code(code_dir):
    lab_path = _lab(code_dir, {"class": "opts/mysgd.py:MySGD"})
    refused = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run", str(lab_path), "--out", str(code_dir / "o")],
        capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "runs[1].optimizer: opts/mysgd.py:MySGD is Python code" in line and "--trust-code" in line
    assert not (code_dir / "opts" / "mysgd.ran").exists()
    ran = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "run", str(lab_path), "--out", str(code_dir / "o"),
         "--trust-code"], capture_output=True, text=True, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((code_dir / "o" / "summary.json").read_text())
    torch_run, mine = summary["runs"]
    # The user's SGD is torch's SGD: the same numbers to the last bit.
    assert mine["final_point"] == torch_run["final_point"]
    assert mine["optimizer"] == "opts/mysgd.py:MySGD"
