"""Reading lesson files: lesson.json and its labs, by name or path (`load_lesson`, `list_lessons`).

Like lab files, lesson files are parsed strictly: an unknown key, a claim of an unknown kind, a
claim naming a run that is not in the lesson's labs: each raises `LabError` naming the file and
the field (``claims[2].run``). `CLAIM_KINDS` (registry.py) lists every kind with its fields.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import LabError
from core.lab.checks import check_keys
from core.lab.format import load_lab
from core.teaching.lessons.lesson import Lesson
from core.teaching.lessons.validate import claim_from_dict, show, text_field

FORMAT = "descent-lesson/1"
LESSONS_DIR = Path(__file__).resolve().parents[3] / "resources" / "lessons"
LESSON_FILE = "lesson.json"
MAX_LESSON_BYTES = 256 * 1024
MAX_LABS = 6
MAX_NOTICE_CHARS = 500
# Panels a lesson may hide to focus attention (the GUI's lesson panel interprets them).
PANELS = ("problem", "runs", "curves", "landscape", "network", "diagram")

# The order a student meets the lessons in (Lessons menu, the start page, next / previous):
# the learning rate and momentum on 2-D functions first, then harder landscapes and adaptive
# methods, then the lr's schedule and how to find it, then networks: noise, generalisation,
# regularisation, a matrix optimizer after the adaptive ones (Muon against Adam on a weight
# matrix), normalisation, the landscape of a network, and searching hyperparameters.
TEACHING_ORDER = (
    "learning_rate", "ravine", "saddle", "rosenbrock", "adaptive", "rastrigin", "schedules",
    "lr_range_test", "batch_size", "overfitting", "adamw", "muon_matrices", "batch_norm",
    "vanishing_gradients",
    "rnn_memory", "cliff", "imbalance", "flat_sharp", "search", "moving_targets",
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,59}$")
_KEYS = ("format", "name", "title", "lab", "summary", "notice", "why", "question",
         "hide_panels", "claims")
_REQUIRED_KEYS = set(_KEYS) - {"hide_panels"}


def _lab_paths(value: Any, folder: Path) -> list[Path]:
    names = value if isinstance(value, list) else [value]
    if not names or len(names) > MAX_LABS:
        raise LabError("lab", f"must be a lab file name or a list of 1 to {MAX_LABS} of them")
    paths = []
    for i, name in enumerate(names):
        where = f"lab[{i}]" if isinstance(value, list) else "lab"
        if not isinstance(name, str) or not name.endswith(".lab.json"):
            raise LabError(where, f'must be a file name ending in ".lab.json", got {show(name)}')
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise LabError(where, f"must be a file inside the lesson's folder, got {show(name)}")
        path = folder / relative
        if not path.is_file():
            raise LabError(where, f"no such lab file {name!r} next to the lesson")
        paths.append(path)
    if len(set(paths)) != len(paths):
        raise LabError("lab", "names the same lab file twice")
    return paths


def lesson_from_dict(data: Any, folder: Path, expected_name: str | None = None) -> Lesson:
    """Check a parsed lesson.json whose labs lie in ``folder``; raise `LabError` naming the field.

    ``expected_name``: the name the lesson must have (its folder's), or None.
    """
    if not isinstance(data, dict):
        raise LabError("", f"must be a JSON object, got {show(data)}")
    check_keys(data, set(_KEYS), _REQUIRED_KEYS, "")
    if data["format"] != FORMAT:
        raise LabError("format", f'must be "{FORMAT}", got {show(data["format"])}')
    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise LabError("name", "must be 1-60 lower-case letters, digits or _, starting with a "
                       f"letter or digit, got {show(name)}")
    if expected_name is not None and name != expected_name:
        raise LabError("name", f"must match the lesson's folder {expected_name!r}, got {name!r}")
    title, summary = text_field(data["title"], "title", 80), text_field(data["summary"], "summary", 200)
    for key, text in (("title", title), ("summary", summary)):
        if "\n" in text:
            raise LabError(key, "must be a single line")
    notice = data["notice"]
    if not isinstance(notice, list) or not notice:
        raise LabError("notice", f"must be a non-empty list of strings, got {show(notice)}")
    notice = tuple(text_field(v, f"notice[{i}]", MAX_NOTICE_CHARS) for i, v in enumerate(notice))
    hide = data.get("hide_panels", [])
    if not isinstance(hide, list):
        raise LabError("hide_panels", f"must be a list of panel names, got {show(hide)}")
    for i, panel in enumerate(hide):
        if panel not in PANELS:
            raise LabError(f"hide_panels[{i}]",
                           f"must be one of {', '.join(PANELS)}, got {show(panel)}")
    lab_paths = _lab_paths(data["lab"], folder)
    labs = [load_lab(path) for path in lab_paths]  # a LabError here names the lab file
    runs: dict[str, bool] = {}
    optimizers: dict[str, str] = {}
    for lab_index, lab in enumerate(labs):
        for run in lab.enabled_runs():
            if run.label in runs:
                raise LabError(f"lab[{lab_index}]", f"run label {run.label!r} is in two of the "
                               "lesson's labs; claims name runs by label, so labels must be unique")
            runs[run.label] = lab.is_network
            optimizers[run.label] = run.optimizer
    claims = data["claims"]
    if not isinstance(claims, list) or not claims:
        raise LabError("claims", "must be a non-empty list: every measurable sentence of the text "
                       "needs a claim that checks it")
    return Lesson(
        name=name,
        title=title,
        summary=summary,
        notice=notice,
        why=text_field(data["why"], "why"),
        question=text_field(data["question"], "question"),
        labs=tuple(labs),
        lab_paths=tuple(lab_paths),
        claims=tuple(claim_from_dict(c, i, runs, optimizers) for i, c in enumerate(claims)),
        hide_panels=tuple(dict.fromkeys(hide)),
    )


def lesson_names() -> list[str]:
    """The names of the lessons in `LESSONS_DIR` in `TEACHING_ORDER` (a lesson not in it comes
    after those, by name), without loading them."""
    if not LESSONS_DIR.is_dir():
        return []
    found = sorted(p.name for p in LESSONS_DIR.iterdir() if (p / LESSON_FILE).is_file())
    rank = {name: i for i, name in enumerate(TEACHING_ORDER)}
    return sorted(found, key=lambda name: (rank.get(name, len(rank)), name))


def _lesson_file(name_or_path: str | Path) -> tuple[Path, str | None]:
    """The lesson.json a name or a path means, and the name its folder requires (or None).

    A plain name (``"ravine"``) is a built-in lesson in `LESSONS_DIR`; anything else is a path
    to a lesson's folder or to its lesson.json.
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and _NAME_RE.match(text):
        builtin = LESSONS_DIR / text / LESSON_FILE
        if builtin.is_file():
            return builtin, text
        if not Path(text).exists():
            known = ", ".join(lesson_names()) or "none"
            raise LabError("lesson", f"unknown lesson {text!r}; the lessons are: {known}")
    path = Path(name_or_path)
    if path.is_dir():
        path = path / LESSON_FILE
    if not path.is_file():
        raise LabError("", "no such lesson file", str(path))
    return path, path.parent.name if _NAME_RE.match(path.parent.name) else None


def load_lesson(name_or_path: str | Path) -> Lesson:
    """A lesson by name (``"ravine"``, from `LESSONS_DIR`) or by path (its folder or lesson.json).

    Every problem raises `LabError` naming the file and the field.
    """
    path, expected_name = _lesson_file(name_or_path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_LESSON_BYTES:
            raise LabError("", f"{size} bytes; a lesson file may be at most {MAX_LESSON_BYTES}",
                           source)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LabError("", "not UTF-8 text; a lesson file is JSON", source) from None
    except OSError as exc:
        raise LabError("", f"cannot read the file ({exc.strerror or exc})", source) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise LabError("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       source) from None
    except (ValueError, RecursionError) as exc:
        raise LabError("", str(exc) or "nested too deeply", source) from None
    try:
        lesson = lesson_from_dict(data, path.parent, expected_name)
    except LabError as exc:
        # An error inside a lab file already names that file; the others are about lesson.json.
        raise (exc if exc.source else exc.from_file(source)) from None
    return replace(lesson, path=path)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a lesson file (numbers must be finite)")


def list_lessons() -> list[Lesson]:
    """Every lesson in `LESSONS_DIR`, in teaching order (`lesson_names`). A broken lesson
    raises its `LabError`."""
    return [load_lesson(LESSONS_DIR / name) for name in lesson_names()]
