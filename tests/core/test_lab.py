"""Lab files: round trips, strict checking with messages that name the field, atomic saves."""

from __future__ import annotations

import json
import os

import pytest

from core.errors import LabError
from core.lab.format import (
    FORMAT,
    Lab,
    default_lab,
    lab_from_dict,
    lab_from_json,
    lab_to_dict,
    load_lab,
    save_lab,
    write_atomic,
)

GOOD = {
    "format": FORMAT,
    "name": "Banana race",
    "seed": 0,
    "steps": 500,
    "problem": {"kind": "function", "function": "rosenbrock", "start": [-1.5, 2.0]},
    "runs": [
        {"label": "SGD+momentum", "optimizer": "sgd", "params": {"lr": 0.0005, "momentum": 0.9}},
        {"label": "Adam", "optimizer": "adam", "params": {"lr": 0.02},
         "schedule": {"name": "cosine", "params": {"T_max": 500}}},
    ],
}


def test_design_example_loads_and_round_trips(tmp_path):
    lab = lab_from_dict(GOOD)
    assert lab.runs[1].schedule.name == "cosine"
    path = tmp_path / "banana.lab.json"
    save_lab(lab, path)
    again = load_lab(path)
    assert again == lab
    assert lab_to_dict(again)["runs"][0]["params"] == {"lr": 0.0005, "momentum": 0.9}


def test_expression_function_round_trips(tmp_path):
    data = json.loads(json.dumps(GOOD))
    data["problem"]["function"] = {"expression": "(1-x)**2 + 100*(y-x**2)**2"}
    lab = lab_from_dict(data)
    save_lab(lab, tmp_path / "e.lab.json")
    assert load_lab(tmp_path / "e.lab.json") == lab


def _bad(mutate) -> str:
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    with pytest.raises(LabError) as info:
        lab_from_dict(data)
    return str(info.value)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["runs"][0]["params"].update(lr=-0.1), "runs[0].params.lr: must be >= 0"),
        (lambda d: d.update(steps=0), "steps: must be in [1, 1000000], got 0"),
        (lambda d: d.update(steps=True), "steps: must be"),
        (lambda d: d.update(step=5), "step: unknown key"),
        (lambda d: d["runs"][1].update(label="SGD+momentum"), "runs[1].label: duplicate label"),
        (lambda d: d["runs"][0].update(optimizer="adamm"), "runs[0].optimizer"),
        (lambda d: d["runs"][1]["schedule"].update(name="cosinus"), "runs[1].schedule.name"),
        (lambda d: d["problem"].update(function="banana"), "problem.function: unknown function"),
        (lambda d: d["problem"].update(start=[1]), "problem.start"),
        (lambda d: d["problem"].update(kind="picture"), "problem.kind"),
        (lambda d: d["runs"][0].update(l2=0.1), "runs[0].l2: only network problems"),
        (lambda d: d.update(format="descent-lab/9"), "newer Descent Lab"),
        (lambda d: d.update(format="something"), "format"),
        (lambda d: d["runs"][0].update(color="red"), "runs[0].color"),
        (lambda d: d.update(runs=[{"optimizer": "muon"}]), "runs[0].optimizer"),
        (lambda d: d["problem"].update(function={"expression": "x +* y"}), "problem.function"),
    ],
)
def test_bad_fields_are_named_with_what_is_allowed(mutate, expected):
    assert expected in _bad(mutate)


def test_bad_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.lab.json"
    path.write_text('{"format": "descent-lab/1",\n  "runs": [,]}')
    with pytest.raises(LabError) as info:
        load_lab(path)
    assert "broken.lab.json" in str(info.value) and "line 2" in str(info.value)


def test_nan_and_huge_files_are_refused(tmp_path):
    with pytest.raises(LabError, match="NaN"):
        lab_from_json('{"problem": {"kind": "function", "function": "booth", "start": [NaN, 1]},'
                      ' "runs": []}')
    huge = tmp_path / "huge.lab.json"
    huge.write_text(" " * (6 * 1024 * 1024))
    with pytest.raises(LabError, match="at most"):
        load_lab(huge)


def test_a_failed_save_never_truncates_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.lab.json"
    save_lab(default_lab(), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_lab(Lab(name="other"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.lab.json"], "temp file left behind"


def test_write_atomic_writes_whole_file(tmp_path):
    write_atomic(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_default_lab_is_valid():
    lab = default_lab()
    assert lab_from_dict(lab_to_dict(lab)) == lab
