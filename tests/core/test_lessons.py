"""Lessons: every lesson loads, every claim its text makes holds when its labs run headless.

This is the test behind "every claim a lesson's text makes is checked by a test": each lesson's
claims are run through `core.teaching.lessons.check.check_claims`, which races the lesson's labs
with the real engines. The lessons are sized so that all of them together take well under a
minute of CPU; `make bench` (bench/lessons.py) measures that, the suite only that the claims hold.
Bad lesson files must be refused with a message naming the file and the field, and a false claim
(the runs swapped) must be reported as failed, with the numbers that refute it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from cli import lessons
from core.errors import LabError
from core.teaching.lessons.check import check_claims
from core.teaching.lessons.loader import (
    LESSONS_DIR,
    lesson_from_dict,
    lesson_names,
    list_lessons,
    load_lesson,
)
from core.teaching.lessons.registry import CLAIM_KINDS

ROOT = Path(__file__).resolve().parents[2]
# The topics the lessons must cover (the 14 README.md lists under Lessons), by lesson name.
REQUIRED_LESSONS = (
    "learning_rate", "ravine", "saddle", "rosenbrock", "rastrigin", "adaptive", "adamw",
    "schedules", "overfitting", "batch_norm", "batch_size", "flat_sharp", "lr_range_test",
    "search",
)


# --------------------------------------------------------------------------------------------
# The built-in lessons


def test_the_lessons_cover_every_required_topic():
    names = lesson_names()
    assert len(names) >= 12
    missing = [name for name in REQUIRED_LESSONS if name not in names]
    assert not missing, f"lessons missing: {missing}"
    assert [lesson.name for lesson in list_lessons()] == names


@pytest.mark.parametrize("name", lesson_names())
def test_every_lesson_loads(name):
    lesson = load_lesson(name)
    assert lesson.name == name
    assert lesson.path == LESSONS_DIR / name / "lesson.json"
    assert lesson.title and lesson.summary and lesson.why and lesson.question
    assert lesson.notice and all(text.strip() for text in lesson.notice)
    assert lesson.labs and len(lesson.labs) == len(lesson.lab_paths)
    assert lesson.lab is lesson.labs[0]
    assert lesson.claims, "a lesson without claims checks nothing it says"
    for claim in lesson.claims:
        assert claim.describe()
    # Lessons run on the CPU everywhere, so their numbers (and claims) are the same everywhere.
    for lab in lesson.labs:
        if lab.is_network:
            assert lab.problem.device == "cpu"


@pytest.mark.parametrize("name", lesson_names())
def test_every_claim_of_every_lesson_holds(name):
    results = check_claims(load_lesson(name))
    failed = [result.line() for result in results if not result.holds]
    assert not failed, f"{name}: claims that do not hold:\n" + "\n".join(failed)
    assert len(results) == len(load_lesson(name).claims)


def test_the_docs_list_every_lesson_and_every_claim_kind():
    docs = (ROOT / "docs" / "lessons.md").read_text(encoding="utf-8")
    for name in lesson_names():
        assert f"`{name}`" in docs, f"docs/lessons.md does not list the lesson {name}"
    for kind in CLAIM_KINDS:
        assert f"`{kind}`" in docs, f"docs/lessons.md does not document the claim kind {kind}"


# --------------------------------------------------------------------------------------------
# False claims fail


def _swapped(claim: dict) -> dict:
    """The claim with its two runs exchanged: what held must now fail."""
    other = "sooner_than" if "sooner_than" in claim else "than"
    return {**claim, "run": claim[other], other: claim["run"]}


def test_claims_with_the_runs_swapped_are_reported_as_failed():
    folder = LESSONS_DIR / "ravine"
    data = json.loads((folder / "lesson.json").read_text(encoding="utf-8"))
    comparisons = [c for c in data["claims"] if "sooner_than" in c or "than" in c]
    assert comparisons
    data["claims"] = [_swapped(c) for c in comparisons]
    results = check_claims(lesson_from_dict(data, folder, "ravine"))
    assert [r.holds for r in results] == [False] * len(comparisons)
    # The verdict shows the numbers that refute it: SGD reached 1e-3 much later than momentum.
    assert "SGD: step" in results[0].measured and "Momentum: step" in results[0].measured


def _write_lab(folder: Path, name: str = "lesson.lab.json", **changes) -> None:
    lab = {
        "format": "descent-lab/1", "name": "Tiny bowl", "seed": 0, "steps": 60,
        "problem": {"kind": "function", "function": "quadratic", "start": [-2.5, 2.0]},
        "runs": [{"label": "lr 0.1", "optimizer": "sgd", "params": {"lr": 0.1}},
                 {"label": "lr 1.1", "optimizer": "sgd", "params": {"lr": 1.1}}],
    }
    lab.update(changes)
    (folder / name).write_text(json.dumps(lab), encoding="utf-8")


def _lesson(**changes) -> dict:
    data = {
        "format": "descent-lesson/1", "name": "tiny", "title": "A tiny lesson",
        "lab": "lesson.lab.json", "summary": "Two learning rates on a bowl.",
        "notice": ["lr 1.1 diverges."], "why": "Because 1.1 > 2 / curvature.",
        "question": "What about lr 1?",
        "claims": [{"kind": "diverges", "run": "lr 1.1"},
                   {"kind": "stays_finite", "run": "lr 0.1"}],
    }
    data.update(changes)
    return data


@pytest.fixture
def lesson_dir(tmp_path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    _write_lab(folder)
    (folder / "lesson.json").write_text(json.dumps(_lesson()), encoding="utf-8")
    return folder


def _rewrite(folder: Path, **changes) -> None:
    (folder / "lesson.json").write_text(json.dumps(_lesson(**changes)), encoding="utf-8")


def test_a_lesson_loads_from_its_folder_or_its_file(lesson_dir):
    by_folder = load_lesson(lesson_dir)
    by_file = load_lesson(lesson_dir / "lesson.json")
    assert by_folder == by_file
    assert by_folder.name == "tiny" and by_folder.path == lesson_dir / "lesson.json"
    assert [r.holds for r in check_claims(by_folder)] == [True, True]


@pytest.mark.parametrize(
    "claim, measured",
    [
        ({"kind": "diverges", "run": "lr 0.1"}, "lr 0.1: ran 60 steps"),
        ({"kind": "stays_finite", "run": "lr 1.1"}, "lr 1.1: diverged at step"),
        ({"kind": "reaches", "run": "lr 1.1", "below": 1e-3}, "never in 60 steps (diverged"),
        ({"kind": "reaches", "run": "lr 0.1", "below": 1e-3, "within": 5}, "lr 0.1: step 21"),
        ({"kind": "never_reaches", "run": "lr 0.1", "below": 1e-3}, "lowest loss"),
        ({"kind": "final_loss_less", "run": "lr 1.1", "than": "lr 0.1"}, "diverged at step"),
        ({"kind": "ends_near", "run": "lr 0.1", "point": [1, 1], "tol": 0.1}, "distance 1.414"),
        ({"kind": "ends_far_from", "run": "lr 0.1", "point": [0, 0], "distance": 0.1},
         "distance"),
        ({"kind": "point_at", "run": "lr 0.1", "step": 1, "point": [0, 0], "tol": 0.1},
         "at step 1: (-2, 1.6)"),
        ({"kind": "lr_at", "run": "lr 0.1", "step": 10, "value": 0.2}, "lr at step 10 = 0.1"),
        ({"kind": "direction_changes", "run": "lr 0.1", "axis": "x", "within": 50,
          "at_least": 1}, "0 reversals"),
        ({"kind": "final_loss_below", "run": "lr 0.1", "value": 0}, "lr 0.1:"),
        ({"kind": "lr_at_divergence", "run": "lr 0.1", "low": 0, "high": 1}, "ran 60 steps"),
    ],
)
def test_false_claims_are_reported_as_failed_with_the_numbers(lesson_dir, claim, measured):
    _rewrite(lesson_dir, claims=[claim])
    [result] = check_claims(load_lesson(lesson_dir))
    assert not result.holds
    assert measured in result.measured
    assert result.line().startswith("✗ ")


# --------------------------------------------------------------------------------------------
# Bad lesson files are refused with clear messages


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"titel": "x"}, "titel", "unknown key"),
        ({"format": "descent-lesson/2"}, "format", 'must be "descent-lesson/1"'),
        ({"name": "Tiny Lesson"}, "name", "lower-case"),
        ({"name": "other"}, "name", "must match the lesson's folder 'tiny'"),
        ({"title": ""}, "title", "non-empty string"),
        ({"summary": "two\nlines"}, "summary", "single line"),
        ({"notice": "watch"}, "notice", "non-empty list"),
        ({"notice": ["ok", 3]}, "notice[1]", "non-empty string"),
        ({"hide_panels": ["sidebar"]}, "hide_panels[0]", "must be one of problem"),
        ({"lab": "../elsewhere.lab.json"}, "lab", "inside the lesson's folder"),
        ({"lab": "missing.lab.json"}, "lab", "no such lab file"),
        ({"lab": "lesson.json"}, "lab", 'ending in ".lab.json"'),
        ({"lab": ["lesson.lab.json", "lesson.lab.json"]}, "lab", "same lab file twice"),
        ({"claims": []}, "claims", "non-empty list"),
        ({"claims": [{"kind": "converges", "run": "lr 0.1"}]}, "claims[0].kind",
         "unknown claim kind"),
        ({"claims": [{"kind": "diverges", "run": "lr 2"}]}, "claims[0].run",
         "no run labelled 'lr 2'"),
        ({"claims": [{"kind": "reaches", "run": "lr 0.1"}]}, "claims[0].below", "is missing"),
        ({"claims": [{"kind": "diverges", "run": "lr 1.1", "steps": 3}]}, "claims[0].steps",
         "unknown key"),
        ({"claims": [{"kind": "reaches", "run": "lr 0.1", "below": "small"}]},
         "claims[0].below", "finite number"),
        ({"claims": [{"kind": "final_loss_less", "run": "lr 0.1", "than": "lr 1.1",
                      "factor": 0.5}]}, "claims[0].factor", "must be >= 1"),
        ({"claims": [{"kind": "final_loss_less", "run": "lr 0.1", "than": "lr 0.1"}]},
         "claims[0].than", "compares a run with itself"),
        ({"claims": [{"kind": "val_accuracy_at_least", "run": "lr 0.1", "value": 0.9}]},
         "claims[0].run", "needs a run of a network lab"),
        ({"claims": [{"kind": "direction_changes", "run": "lr 0.1", "axis": "x",
                      "within": 10}]}, "claims[0].at_least", "at_least, at_most or both"),
        ({"claims": [{"kind": "ends_near", "run": "lr 0.1", "point": [0], "tol": 1}]},
         "claims[0].point", "[x, y]"),
        ({"claims": [{"kind": "best_final_loss_less", "runs": ["grid*"], "than": ["lr*"]}]},
         "claims[0].runs[0]", "no run label starts with 'grid'"),
        ({"claims": [{"kind": "sweep_beats", "run": "lr 0.1", "params": ["lr=1:0.1"],
                      "trials": 5, "sampler": "random", "than_sampler": "grid"}]},
         "claims[0].params", ""),
        ({"claims": [{"kind": "sweep_beats", "run": "lr 0.1", "params": [], "trials": 5,
                      "sampler": "bayes", "than_sampler": "grid"}]},
         "claims[0].sampler", "must be one of grid, random, tpe, cmaes"),
    ],
)
def test_bad_lesson_files_are_refused_naming_the_file_and_field(lesson_dir, changes, field,
                                                               message):
    _rewrite(lesson_dir, **changes)
    with pytest.raises(LabError) as caught:
        load_lesson(lesson_dir)
    error = caught.value
    assert error.field == field
    assert message in error.message
    assert error.source == str(lesson_dir / "lesson.json")
    assert str(error).startswith(f"{lesson_dir / 'lesson.json'}: {field}: ")


def test_a_bad_lab_inside_a_lesson_is_refused_naming_the_lab_file(lesson_dir):
    _write_lab(lesson_dir, runs=[{"label": "bad", "optimizer": "sgd", "params": {"lr": -1}}])
    with pytest.raises(LabError) as caught:
        load_lesson(lesson_dir)
    assert caught.value.source == str(lesson_dir / "lesson.lab.json")
    assert caught.value.field == "runs[0].params.lr"


def test_run_labels_must_be_unique_across_a_lessons_labs(lesson_dir):
    _write_lab(lesson_dir, name="second.lab.json")
    _rewrite(lesson_dir, lab=["lesson.lab.json", "second.lab.json"])
    with pytest.raises(LabError, match=r"lab\[1\]: run label 'lr 0.1' is in two"):
        load_lesson(lesson_dir)


def test_files_that_are_not_lesson_json_are_refused(lesson_dir):
    path = lesson_dir / "lesson.json"
    path.write_text("{\"format\": ", encoding="utf-8")
    with pytest.raises(LabError, match="not valid JSON"):
        load_lesson(lesson_dir)
    path.write_text('{"claims": NaN}', encoding="utf-8")
    with pytest.raises(LabError, match="NaN is not allowed"):
        load_lesson(lesson_dir)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(LabError, match="not UTF-8"):
        load_lesson(lesson_dir)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(LabError, match="must be a JSON object"):
        load_lesson(lesson_dir)


def test_an_unknown_lesson_name_lists_the_lessons():
    with pytest.raises(LabError) as caught:
        load_lesson("no_such_lesson")
    assert caught.value.field == "lesson"
    assert "ravine" in caught.value.message


def test_multi_lab_lessons_compare_runs_across_labs(tmp_path):
    folder = tmp_path / "two"
    shutil.copytree(LESSONS_DIR / "batch_norm", folder)
    data = json.loads((folder / "lesson.json").read_text(encoding="utf-8"))
    assert len(data["lab"]) == 2
    data["name"] = "two"
    (folder / "lesson.json").write_text(json.dumps(data), encoding="utf-8")
    lesson = load_lesson(folder)
    assert [lab.name for lab in lesson.labs] == [
        "Six sigmoid layers, no batch norm", "Six sigmoid layers with batch norm"]


# --------------------------------------------------------------------------------------------
# Command line


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="descent-lab")
    lessons.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_lessons_lists_every_lesson(capsys):
    assert _cli(["lessons"]) == 0
    out = capsys.readouterr().out
    for lesson in list_lessons():
        assert lesson.name in out and lesson.title in out and lesson.summary in out


def test_lessons_check_exits_0_when_every_claim_holds(lesson_dir, capsys):
    assert _cli(["lessons", "check", str(lesson_dir)]) == 0
    out = capsys.readouterr().out
    assert "✓ lr 1.1 diverges  (lr 1.1: diverged at step" in out
    assert "2 of 2 claims hold" in out


def test_lessons_check_exits_1_and_shows_the_failed_claim(lesson_dir, capsys):
    _rewrite(lesson_dir, claims=[{"kind": "diverges", "run": "lr 1.1"},
                                 {"kind": "diverges", "run": "lr 0.1"}])
    assert _cli(["lessons", "check", str(lesson_dir)]) == 1
    out = capsys.readouterr().out
    assert "✗ lr 0.1 diverges  (lr 0.1: ran 60 steps)" in out
    assert "1 of 2 claims hold, 1 failed" in out


def test_lessons_check_of_an_unknown_lesson_is_a_user_error():
    with pytest.raises(LabError, match="unknown lesson 'nope'"):
        _cli(["lessons", "check", "nope"])


def test_the_search_lessons_random_trials_are_the_documented_draws():
    """Its text says the random trials come from numpy's default_rng(0); they must."""
    import math

    import numpy as np

    rng = np.random.default_rng(0)
    expected = []
    for _ in range(9):
        lr = float(f"{10 ** rng.uniform(-3, math.log10(0.03)):.3g}")
        weight_decay = float(f"{rng.uniform(0, 1e-3):.2g}")
        expected.append((lr, weight_decay))
    lab = load_lesson("search").lab
    drawn = [(run.params["lr"], run.params["weight_decay"]) for run in lab.runs
             if run.label.startswith("random")]
    assert drawn == expected
