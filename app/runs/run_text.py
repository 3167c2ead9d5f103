"""What the runs panel says about a run, the name and colour a new run gets, and the red line
that says why an edit was refused.

Shared by the runs table (`app.runs.runs_table`: the summary columns, new and renamed labels),
the run editor (`app.runs.run_editor`: undo texts, the label that follows the optimizer), the
timeline's branches (`app.shell.timeline_slider`: the colour of a new branch) and the note on a
run that stopped in the race (`stop_note`: diverged, or its optimizer failed, with the traceback).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel

from app.widgets.hyperparam_form import error_color, same_value
from app.widgets.number_boxes import format_float
from core.errors import LabError
from core.lab.format import RUN_COLORS, Lab, RunSpec
from core.optim.catalog import get_optimizer_info
from core.optim.hyperparams import HyperParam
from core.optim.optimizers import OptimizerInfo
from core.optim.schedules import SCHEDULES

NO_SCHEDULE = "constant"  # the registry's "constant" is stored as RunSpec.schedule = None

# Short names for the table's summary column; the full names are in the cell's tooltip.
_SHORT_NAMES = {"betas": "β", "weight_decay": "wd", "momentum": "mom"}

_NUMBERED = re.compile(r"^(.*?)(?: (\d+))?$")


def label_stem(label: str) -> str:
    """``"Adam 2"`` → ``"Adam"``: the label without the number `unique_label` adds."""
    return _NUMBERED.match(label).group(1)


# Names a lab gives a run after its optimizer other than the optimizer's title: a label that is one
# of these (or the title) describes the optimizer, so it follows a change of optimizer.
OPTIMIZER_NICKNAMES = {
    "sgd": ("GD", "Gradient descent", "Momentum", "Nesterov", "SGD + momentum", "SGD + Nesterov",
            "Heavy ball"),
}


def optimizer_info(name: str) -> OptimizerInfo | None:
    """The description of any optimizer name (torch.optim, zoo, loaded user code), or None
    where there is none to show (user code not loaded yet, a zoo class that is gone)."""
    try:
        return get_optimizer_info(name)
    except LabError:
        return None


def names_optimizer(label: str, optimizer: str) -> bool:
    """Whether ``label`` (less the number `unique_label` adds) is just the name of ``optimizer``:
    its title ("Adam", "Adam 2") or a nickname ("Momentum" for SGD), in any case. Such a label
    is automatic; any other ("Adam + cosine", "lr 0.3 (about right)") was chosen by a person."""
    stem = label_stem(label).strip().casefold()
    info = optimizer_info(optimizer)
    title = info.title if info is not None else optimizer.rsplit(":", 1)[-1]
    names = (title, *OPTIMIZER_NICKNAMES.get(optimizer, ()))
    return stem in {name.casefold() for name in names}


def round_lr(lr: float) -> float:
    """An lr to 2 significant digits (0.0265604… → 0.027): what a person would type; no
    suggestion is more precise than that."""
    return float(f"{lr:.2g}")


def unique_label(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``"base 2"``, ``"base 3"``, …; a trailing number is replaced."""
    base = base.strip() or "Run"
    if base not in taken:
        return base
    stem = label_stem(base) or base
    n = 2
    while f"{stem} {n}" in taken:
        n += 1
    return f"{stem} {n}"


def next_color(lab: Lab) -> str:
    """The first palette colour no run shows yet (the cycle goes on when all are used)."""
    used = {lab.run_color(i).lower() for i in range(len(lab.runs))}
    for color in RUN_COLORS:
        if color.lower() not in used:
            return color
    return RUN_COLORS[len(lab.runs) % len(RUN_COLORS)]


def show_value(value: Any) -> str:
    """A value as the summary and undo text show it: ``0.001``, ``(0.9, 0.999)``, ``auto``."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(show_value(v) for v in value) + ")"
    return str(value)


def run_lr(run: RunSpec) -> float:
    """The run's learning rate: its own, or the optimizer's default."""
    lr = run.params.get("lr")
    if lr is None:
        info = optimizer_info(run.optimizer)
        lr = info.defaults().get("lr", 0.0) if info is not None else 0.0
    return float(lr)


def params_summary(run: RunSpec) -> str:
    """``lr=0.001, β=(0.9, 0.99)``: the lr (always), then what the run sets explicitly."""
    parts = [f"lr={show_value(run_lr(run))}"]
    for name, value in run.params.items():
        if name == "lr":
            continue
        if isinstance(value, bool):
            if value:
                parts.append(name)  # "nesterov" reads better than "nesterov=on"
            continue
        parts.append(f"{_SHORT_NAMES.get(name, name)}={show_value(value)}")
    return ", ".join(parts)


def schedule_name(run: RunSpec) -> str:
    """The registry name ("cosine", "constant"): short enough for the table's last column."""
    return run.schedule.name if run.schedule else NO_SCHEDULE


# An rl race refuses a schedule (core/engine/rl_race.py) and the run editor hides it for rl labs
# (app/runs/run_editor.py): "constant" there read as a schedule one could change.
RL_SCHEDULE_TEXT = "—"
RL_SCHEDULE_TIP = ("rl races have no lr schedule: each run keeps its lr for the whole run "
                   "(its budget is episodes, not steps)")


def schedule_cell(run: RunSpec, rl: bool = False) -> tuple[str, str]:
    """The runs table's Schedule cell of ``run``: (text, tooltip). ``rl``: the run is in an rl
    lab, where no schedule applies ("—")."""
    if rl:
        return RL_SCHEDULE_TEXT, RL_SCHEDULE_TIP
    name = schedule_name(run)
    title = SCHEDULES[name].title
    if run.schedule and run.schedule.params:
        details = ", ".join(f"{k}={show_value(v)}" for k, v in run.schedule.params.items())
        return name, f"{title}: {details}"
    return name, title


def change_text(owner: str, specs: tuple[HyperParam, ...], before: Mapping, after: Mapping) -> str:
    """``Change Adam lr to 0.01`` (one value), ``Change SGD momentum, nesterov``, or ""."""
    changed = [
        spec.name
        for spec in specs
        if not same_value(before.get(spec.name, spec.default), after.get(spec.name, spec.default))
    ]
    if not changed:
        return ""
    if len(changed) == 1:
        name = changed[0]
        default = next(s.default for s in specs if s.name == name)
        return f"Change {owner} {name} to {show_value(after.get(name, default))}"
    return f"Change {owner} {', '.join(changed)}"


# A run's note in a tooltip: its first lines and the end of a traceback (where the optimizer's own
# frame and the error are), not a screenful; the whole of it is in "Why it stopped…".
NOTE_TOOLTIP_HEAD, NOTE_TOOLTIP_TAIL = 6, 12


def stop_note(event) -> str:
    """What the runs table says about a run that stopped in the race shown (a
    `core.engine.function_race.Divergence`): how and when, the forensics line by line, and the
    traceback of an optimizer that failed."""
    details = event.describe()
    lines = [f"{event.verb.capitalize()} at step {event.step}: {event.reason}"]
    lines += [part for part in details.split("; ") if part]
    if event.traceback:
        lines += ["", event.traceback.rstrip()]
    return "\n".join(lines).strip()


def note_tooltip(note: str) -> str:
    """``note`` cut for a tooltip: its head and its tail (a traceback's last frames)."""
    lines = note.splitlines()
    if len(lines) <= NOTE_TOOLTIP_HEAD + NOTE_TOOLTIP_TAIL + 1:
        return note
    left = len(lines) - NOTE_TOOLTIP_HEAD - NOTE_TOOLTIP_TAIL
    return "\n".join(lines[:NOTE_TOOLTIP_HEAD]
                     + [f"… ({left} lines: right-click ▸ Why it stopped…)"]
                     + lines[-NOTE_TOOLTIP_TAIL:])


def error_label(name: str, palette: QPalette) -> QLabel:
    """A red, selectable, wrapping line under a form or the table; hidden until it is needed."""
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(f"color: {error_color(palette)};")
    label.hide()
    return label
