"""The internals panel: per-run toggles for the overlay, the step's readout and the update rule.

* A table, one row per run of the race and one checkable column per part (`core.optim.internals.PARTS`):
  what the landscape draws for that run. Parts the run's optimizer does not have (SGD without
  momentum has no velocity) are greyed out with a tooltip saying why.
* The selected row's readout: ``step 12: g = (…), b = (…), Δ = (…)`` and the rest of the state,
  read from the real torch optimizer state (core.optim.internals).
* The selected run's update rule, typeset as rich text: italic variables, Greek letters, sub- and
  superscripts, square roots with a bar (`rule_to_html` turns core/optim/optimizers.py's text rules into
  HTML; no math renderer is available offline, and Qt's rich text does this well).
"""

from __future__ import annotations

import re
from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.runs.run_text import optimizer_info
from core.lab.format import Lab
from core.optim.hyperparams import format_number
from core.optim.internals import PART_TITLES, PARTS, available_parts
from core.optim.optimizers import OptimizerInfo


def _class_path(info: OptimizerInfo) -> str:
    """``torch.optim.Adam``, ``pytorch_optimizer.Lion``, or the user's class name."""
    if info.group == "torch.optim":
        return f"torch.optim.{info.cls.__name__}"
    return f"{info.cls.__module__.split('.')[0]}.{info.cls.__name__}" if info.group != "yours" \
        else info.cls.__name__

DEFAULT_PARTS = ("gradient", "velocity", "step")
SHORT_TITLES = {"gradient": "−γg", "velocity": "mom.", "step": "Δ", "effective": "eff.",
                "accumulator": "box"}
PART_TIPS = {
    "gradient": "Show −γ·g: where plain gradient descent with this run's learning rate would step",
    "velocity": "Show the move the momentum alone asks for (−γ·b for SGD, −γ·m̂ for Adam)",
    "step": "Show Δ, the step the point really took",
    "effective": "Show an adaptive method's effective step, −γ·numerator/divisor, with its two "
                 "per-coordinate legs",
    "accumulator": "Show the accumulator as a box of half-sides γ·√accumulator per coordinate: "
                   "step/γ = arrow reach / box half-side",
}
MISSING_TIPS = {
    "velocity": "This run's optimizer keeps no momentum (set momentum > 0, or use Adam)",
    "effective": "Not an adaptive method: its step is not scaled per coordinate",
    "accumulator": "This optimizer keeps no squared-gradient accumulator",
}

_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋ₜ", "0123456789+−t"))
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹ᵗ⁻", "0123456789t−"))
_GREEK = "αβγδεζηθικλμνξοπρστυφχψωΔΘΛΣΨΩ"
_LETTERS = "A-Za-z" + _GREEK
_HAT_OR_TILDE = "\u0302\u0303\u0304"  # combining ^ ~ ¯
_WORD = re.compile(rf"[{_LETTERS}][{_LETTERS}{_HAT_OR_TILDE}]*")
_UPRIGHT_GREEK = set("ΔΘΛΣΨΩ")


def _sub_sup(text: str) -> str:
    """Runs of Unicode sub/superscript characters → <sub>/<sup> (t stays italic)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        table, tag = (_SUBSCRIPTS, "sub") if ch in _SUBSCRIPTS else (
            (_SUPERSCRIPTS, "sup") if ch in _SUPERSCRIPTS else (None, None))
        if table is None:
            out.append(ch)
            i += 1
            continue
        j = i
        while j < len(text) and text[j] in table:
            j += 1
        inner = "".join(table[c] for c in text[i:j]).replace("t", "<i>t</i>")
        out.append(f"<{tag}>{inner}</{tag}>")
        i = j
    return "".join(out)


def _italicize(text: str) -> str:
    """Single-letter variables (with their hats) in italics; words (if, max, sign) upright;
    ``_max``-style suffixes as subscripts."""

    def word(match: re.Match) -> str:
        token = match.group(0)
        base = token.rstrip(_HAT_OR_TILDE)
        if len(base) == 1 and base not in _UPRIGHT_GREEK:
            return f"<i>{token}</i>"
        return token

    # v̂_max, λ_wd: a subscript after a one-letter symbol only (not in decoupled_weight_decay)
    one_letter = rf"(?<![{_LETTERS}])([{_LETTERS}][{_HAT_OR_TILDE}]?)"
    text = re.sub(one_letter + r"_([A-Za-z]+)", r"\1‹\2›", text)
    text = _WORD.sub(word, text)
    return re.sub(r"‹([A-Za-z]+)›", r"<sub>\1</sub>", text)


def _roots(text: str) -> str:
    """√(…) and √x get a bar over what is under the root."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "√":
            out.append(text[i])
            i += 1
            continue
        j = i + 1
        if j < len(text) and text[j] == "(":
            depth, k = 0, j
            while k < len(text):
                depth += {"(": 1, ")": -1}.get(text[k], 0)
                if depth == 0:
                    break
                k += 1
            body, i = text[j + 1 : k], k + 1
        else:
            m = re.match(rf"[{_LETTERS}][{_HAT_OR_TILDE}]*[₀-₉ₜ₊₋]*|\d+", text[j:])
            body = m.group(0) if m else ""
            i = j + len(body)
        out.append(f"√<span style='text-decoration: overline'>{body}</span>")
    return "".join(out)


def _line_to_html(line: str) -> str:
    indent = len(line) - len(line.lstrip(" "))
    body = line.strip()
    comment = ""
    found = re.search(r"\s{2,}(\(.*\))\s*$", body)
    if found:  # "(b ← g on the first step)": a remark, set smaller and grey
        comment, body = found.group(1), body[: found.start()]
    html = _sub_sup(_italicize(_roots(escape(body, quote=False))))
    if comment:
        note = _sub_sup(_italicize(_roots(escape(comment, quote=False))))
        html += f"&nbsp;&nbsp;&nbsp;<span style='color:#9aa3b5; font-size:small'>{note}</span>"
    return "&nbsp;" * (2 * indent) + html


def rule_to_html(rule: str) -> str:
    """An update rule from core/optim/optimizers.py, typeset for a rich-text QLabel."""
    lines = "<br>".join(_line_to_html(line) for line in rule.splitlines())
    # "large": relative to the label's font, so presenter mode enlarges it (12pt did not grow).
    return f"<div style='font-family:\"DejaVu Serif\", serif; font-size:large'>{lines}</div>"


class InternalsPanel(QWidget):
    """Toggles per run and part, the readout of the selected run, its typeset update rule."""

    toggles_changed = Signal()
    selected_changed = Signal(int)  # race index

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("internalsPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.table = QTableWidget(0, len(PARTS), objectName="internalsTable")
        self.table.setHorizontalHeaderLabels([SHORT_TITLES[p] for p in PARTS])
        for col, part in enumerate(PARTS):
            tip = f"{PART_TITLES[part]}: {PART_TIPS[part]}"
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Tick what the landscape draws for each run; select a row to read "
                              "its update below")
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table)

        readout_box = QGroupBox("This step (from the optimizer's state)")
        box_layout = QVBoxLayout(readout_box)
        self.readout = QLabel(objectName="internalsReadout")
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        # Monospaced, at the panel's size: only the family is set, so the size follows the
        # window's font (presenter mode enlarges it; a fixed 9 pt stayed small).
        mono = QFont()
        mono.setFamilies(["DejaVu Sans Mono"])
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.readout.setFont(mono)
        self.readout.setWordWrap(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setToolTip("g: the gradient at the previous point; Δ: the step taken; the "
                                "other numbers are read from torch.optim's state for this run")
        box_layout.addWidget(self.readout)
        layout.addWidget(readout_box)

        rule_box = QGroupBox("Update rule")
        rule_layout = QVBoxLayout(rule_box)
        self.equation_title = QLabel(objectName="equationTitle")
        self.equation_title.setTextFormat(Qt.TextFormat.RichText)
        # Wrapped: a long run label or many settings must not widen the dock (and the window).
        self.equation_title.setWordWrap(True)
        self.equation = QLabel(objectName="equation")
        self.equation.setTextFormat(Qt.TextFormat.RichText)
        self.equation.setWordWrap(True)
        self.equation.setToolTip("The update torch.optim applies for the selected run "
                                 "(γ learning rate, g gradient, θ the point)")
        rule_layout.addWidget(self.equation_title)
        rule_layout.addWidget(self.equation)
        layout.addWidget(rule_box)
        layout.addStretch(1)

        self._runs: list[tuple[str, str, dict]] = []  # (label, optimizer, params) per race run
        self._internals: list | None = None
        self._step = 0
        self._filling = False

    # -- the runs -------------------------------------------------------------------------------

    def set_runs(self, lab: Lab, race_indices: list[int]) -> None:
        """One row per race run (the lab's enabled runs), default parts ticked."""
        self._filling = True
        self._runs = [(lab.runs[i].label, lab.runs[i].optimizer, dict(lab.runs[i].params))
                      for i in race_indices]
        self.table.setRowCount(len(self._runs))
        self.table.setVerticalHeaderLabels([label for label, _, _ in self._runs])
        for row, (label, name, params) in enumerate(self._runs):
            header = self.table.verticalHeaderItem(row)
            header.setForeground(QColor(lab.run_color(race_indices[row])))
            info = optimizer_info(name)
            header.setToolTip(f"{label}: {info.title if info else name}")
            have = available_parts(name, params)
            for col, part in enumerate(PARTS):
                item = QTableWidgetItem()
                if part in have:
                    item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
                                  | Qt.ItemFlag.ItemIsSelectable)
                    on = part in DEFAULT_PARTS
                    item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                    item.setToolTip(f"{label}: {PART_TIPS[part]}")
                else:
                    item.setFlags(Qt.ItemFlag.ItemIsSelectable)
                    item.setToolTip(f"{label}: {MISSING_TIPS.get(part, '')}")
                self.table.setItem(row, col, item)
        self._filling = False
        # As tall as its rows: the readout and the rule below want the room.
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(rows + self.table.horizontalHeader().height()
                                  + 2 * self.table.frameWidth() + 2)
        self._internals = None
        if self._runs:
            self.table.selectRow(0)
        self._show()
        self.toggles_changed.emit()

    def set_shown(self, row: int, part: str, on: bool) -> None:
        item = self.table.item(row, PARTS.index(part))
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def shown(self) -> list[set[str]]:
        """Per race run, the parts the overlay draws."""
        out = []
        for row in range(self.table.rowCount()):
            parts = set()
            for col, part in enumerate(PARTS):
                item = self.table.item(row, col)
                if item is not None and item.checkState() == Qt.CheckState.Checked:
                    parts.add(part)
            out.append(parts)
        return out

    def selected_run(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def select_run(self, row: int) -> None:
        if 0 <= row < self.table.rowCount() and row != self.selected_run():
            self.table.selectRow(row)

    # -- the step -------------------------------------------------------------------------------

    def set_internals(self, step: int, internals: list | None) -> None:
        self._step, self._internals = step, internals
        self._show_readout()

    def _show(self) -> None:
        self._show_readout()
        self._show_equation()

    def _show_readout(self) -> None:
        row = self.selected_run()
        if row < 0:
            self.readout.setText("Select a run above.")
            return
        info = self._internals[row] if self._internals and row < len(self._internals) else None
        if info is not None:
            # Wrap between the vectors, never inside one: "(0.09, -0.06)" keeps its space.
            self.readout.setText(re.sub(r"\(([^()]*)\)",
                                        lambda m: m.group(0).replace(" ", "\u00a0"), info.text))
        elif self._step <= 0:
            self.readout.setText("step 0: the start point, no update yet. Press → to step.")
        elif self._internals is None:
            self.readout.setText(f"step {self._step}: internals of this step were not kept.")
        else:
            self.readout.setText(f"step {self._step}: this run has stopped (diverged).")

    def _show_equation(self) -> None:
        row = self.selected_run()
        if row < 0:
            self.equation_title.setText("")
            self.equation.setText("")
            return
        label, name, params = self._runs[row]
        info = optimizer_info(name)
        if info is None:  # the user's code, not loaded: nothing to describe yet
            self.equation_title.setText(f"<b>{escape(label)}</b>")
            self.equation.setText("")
            return
        values = {**info.defaults(), **params}
        settings = ", ".join(f"{k} = {format_number(v) if isinstance(v, float) else v}"
                             for k, v in values.items() if k in params or k == "lr")
        self.equation_title.setText(
            f"<b>{escape(info.title)}</b> &nbsp;<span style='color:#9aa3b5'>"
            f"{escape(_class_path(info))} · {escape(label)}: {escape(settings)}</span>"
        )
        # A zoo class or the user's own has no hand-written rule: its description says what it is.
        self.equation.setText(rule_to_html(info.update_rule) if info.update_rule
                              else escape(info.description or info.origin))

    def _on_item_changed(self, _item) -> None:
        if not self._filling:
            self.toggles_changed.emit()

    def _on_selection(self) -> None:
        self._show()
        self.selected_changed.emit(self.selected_run())
