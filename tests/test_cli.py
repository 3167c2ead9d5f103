"""The headless command: the files docs/lab-format.md promises, and exit code 2 with one line for
mistakes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.engine.function_race import race
from core.lab.format import load_lab

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "resources" / "labs" / "too_large_lr.lab.json"


def _main(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True
    )


def test_run_writes_summary_metrics_and_trajectory_matching_the_engine(tmp_path):
    out = tmp_path / "out"
    result = _main("run", str(LAB), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    runs = {r["label"]: r for r in summary["runs"]}
    assert set(runs) == {"lr 0.01 (too small)", "lr 0.3 (about right)", "lr 0.95 (oscillates)",
                         "lr 1.1 (diverges)"}
    for r in runs.values():
        assert {"label", "final_loss", "best_loss", "steps", "diverged", "diverged_at", "wall_s",
                "final_point"} <= set(r)
    assert runs["lr 1.1 (diverges)"]["diverged"] and runs["lr 1.1 (diverges)"]["diverged_at"] > 0
    assert not runs["lr 0.3 (about right)"]["diverged"]
    assert runs["lr 0.3 (about right)"]["steps"] == 100

    with open(out / "trajectory.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "step", "x", "y", "loss"]
    right = [r for r in rows if r["run"] == "lr 0.3 (about right)"]
    assert [int(r["step"]) for r in right] == list(range(101))
    with open(out / "metrics.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["run", "step", "loss", "lr", "grad_norm"]

    # Same engine, same numbers, to the bit: the CSV holds repr()-exact floats.
    records = list(race(load_lab(LAB)))
    xs = np.array([[float(r["x"]), float(r["y"])] for r in right])
    assert np.array_equal(xs, np.stack([rec.point[1] for rec in records]))
    final = runs["lr 0.3 (about right)"]["final_point"]
    assert final == records[-1].point[1].tolist()


def test_bad_lab_exits_2_with_one_clear_line(tmp_path):
    bad = tmp_path / "bad.lab.json"
    bad.write_text(json.dumps({
        "format": "descent-lab/1",
        "problem": {"kind": "function", "function": "rosenbrock"},
        "runs": [{"label": "a", "optimizer": "adam", "params": {"betas": [1.0, 0.9]}}],
    }))
    result = _main("run", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.lab.json" in lines[0] and "runs[0].params.betas" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o" / "summary.json").exists()


def test_missing_file_and_bad_flags_exit_2(tmp_path):
    result = _main("run", str(tmp_path / "nope.lab.json"), "--out", str(tmp_path))
    assert result.returncode == 2 and "nope.lab.json" in result.stderr
    assert _main("run").returncode == 2


@pytest.mark.parametrize("runs, hint", [
    ([], ""),
    ([{"label": "a", "optimizer": "adam", "enabled": False},
      {"label": "b", "optimizer": "sgd", "enabled": False}], "all 2 runs are disabled"),
])
def test_run_with_no_enabled_run_exits_2_and_writes_nothing(tmp_path, runs, hint):
    lab = tmp_path / "empty.lab.json"
    lab.write_text(json.dumps({
        "format": "descent-lab/1",
        "problem": {"kind": "function", "function": "rosenbrock"},
        "runs": runs,
    }))
    result = _main("run", str(lab), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "empty.lab.json: runs: add at least one run" in lines[0]
    assert hint in lines[0]
    assert not (tmp_path / "o").exists()
