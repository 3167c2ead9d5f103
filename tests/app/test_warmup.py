"""The background warm-up makes the first optimizer of a process cheap (it imports torch._dynamo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys
sys.path.insert(0, {root!r})
import torch
assert "torch._dynamo" not in sys.modules
from app.shell.warmup import start_warmup
thread = start_warmup()
assert start_warmup() is None, "a second call must not start another import"
thread.join(120)
assert "torch._dynamo" in sys.modules
before = set(sys.modules)
torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
print(len([m for m in set(sys.modules) - before if m.startswith("torch._dynamo")]))
"""


def test_after_the_warmup_the_first_optimizer_is_built_without_the_import():
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT))],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    # Without the warm-up this first optimizer imports ~100 torch._dynamo modules (seconds).
    assert int(out.stdout.strip()) == 0
