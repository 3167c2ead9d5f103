"""docs/optimizers.md's "bring your own" Lion is real: loaded through a lab with consent, it races
pytorch-optimizer's Lion step for step (an independent implementation of the same rule)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from core.engine.factory import make_race
from core.lab.code import TRUST_ALL
from core.lab.format import load_lab
from core.optim import user_code

DOC = Path(__file__).resolve().parents[2] / "docs" / "optimizers.md"


def test_the_documented_lion_races_like_pytorch_optimizers_lion(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    source = "\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines())
    (tmp_path / "opts").mkdir()
    (tmp_path / "opts" / "lion.py").write_text(source)
    lab_path = tmp_path / "lion.lab.json"
    lab_path.write_text(json.dumps({
        "format": "descent-lab/1", "name": "lion", "steps": 60, "seed": 3,
        "problem": {"kind": "network", "dataset": {"name": "moons", "n": 128},
                    "model": {"layers": [{"linear": 8}, {"act": "tanh"}, {"linear": 2}]},
                    "batch_size": 32, "eval_every": 20},
        "runs": [{"label": "docs", "optimizer": {"class": "opts/lion.py:Lion"},
                  "params": {"lr": 3e-3, "weight_decay": 0.01}},
                 {"label": "zoo", "optimizer": "pytorch_optimizer:Lion",
                  "params": {"lr": 3e-3, "weight_decay": 0.01}}],
    }))
    try:
        lab = load_lab(lab_path, consent=TRUST_ALL)
        losses = np.array([record.loss for record in make_race(lab).records()])
    finally:
        user_code._LOADED.clear()
    assert len(losses) >= 60
    np.testing.assert_allclose(losses[:, 0], losses[:, 1], rtol=1e-6, atol=1e-9)
    assert losses[-1, 0] < 0.6 < losses[0, 0]  # it learned (ln 2 ≈ 0.69 at the start)
