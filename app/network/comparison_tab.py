"""The network view's Comparison tab: one row per run, sortable by number, exportable to CSV.

The numbers are the history's (core/engine/history.py): validation (or, without a validation
split, full-training-set) loss and score at the latest evaluation and at their best, the first
step at the target loss, the sharpness (tracked by the race, else measured on the Surface tab:
`app.surface.view.SurfaceView`), the wall time, and the run's status. A race over several seeds
shows "mean ± std"; sorting and the CSV use the mean. The CSV is written atomically
(`core.lab.format.write_atomic`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.network.race_state import ShownRace
from app.shell.theme import FOREGROUND
from app.widgets.tables import save_table_csv
from core.lab.format import write_atomic


class NumericItem(QTableWidgetItem):
    """A cell that sorts by the number in its UserRole (missing values sort after all others)."""

    def __init__(self, text: str = "", key: float = math.inf):
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, key)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def set_value(self, text: str, key: float) -> None:
        self.setText(text)
        self.setData(Qt.ItemDataRole.UserRole, key)

    def key(self) -> float:
        value = self.data(Qt.ItemDataRole.UserRole)
        return math.inf if value is None else float(value)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, NumericItem):
            return self.key() < other.key()
        return super().__lt__(other)


# Status ranks for sorting: running < finished < stopped early < diverged.
_STATUS_RANK = {"running": 0, "finished": 1, "stopped": 2, "diverged": 3}
_STATUS_COLORS = {"diverged": QColor("#ff6b6b"), "stopped": QColor("#e6c35c")}
# A run whose optimizer failed or was too slow (core/engine/faults.py) ranks and reads as ended
# in red, like a diverged one; its status says which.
_STATUS_COLORS["failed"] = _STATUS_COLORS["too"] = _STATUS_COLORS["diverged"]
_STOP_WORDS = {"diverged": "diverged", "failed": "failed", "too slow": "too slow"}


@dataclass(frozen=True)
class _Column:
    header: str
    tooltip: str


def _fmt(value: float, spec: str) -> str:
    return "—" if not math.isfinite(value) else format(value, spec)


def _fmt_pm(value: float, std: float, spec: str, std_spec: str) -> str:
    """``value`` alone, or "value ± std" when a std over seeds is known ("0.123 ± 0.004")."""
    if not math.isfinite(value) or not math.isfinite(std):
        return _fmt(value, spec)
    return f"{format(value, spec)} ± {format(std, std_spec)}"


class ComparisonTab(QWidget):
    """The target-loss box and the export button over the table of runs."""

    def __init__(self, race: ShownRace, surface_view, parent=None):
        super().__init__(parent)
        self.race = race
        # Its on-demand sharpness measurements fill the column when the race tracks none.
        self.surface_view = surface_view
        # Replaceable in tests: (parent, caption, dir, filter) → (path, selected filter).
        self.save_dialog: Callable = QFileDialog.getSaveFileName
        # Replaceable in tests: (parent, title, text) → None.
        self.report_error: Callable = QMessageBox.warning
        self.table_items: list[list[QTableWidgetItem]] = []
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("Target loss"))
        self.target_spin = QDoubleSpinBox(objectName="targetLossSpin")
        self.target_spin.setDecimals(4)
        self.target_spin.setRange(1e-4, 1e6)
        self.target_spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.target_spin.setValue(0.1)
        self.target_spin.setToolTip(
            "The validation loss a run has to reach; the table shows the first step it did."
        )
        self.target_spin.valueChanged.connect(self.refresh)
        controls.addWidget(self.target_spin)
        controls.addStretch(1)
        self.export_button = QPushButton("Export CSV…", objectName="exportCsvButton")
        self.export_button.setToolTip("Save this table, one row per run, as a CSV file.")
        self.export_button.clicked.connect(self._on_export)
        controls.addWidget(self.export_button)

        self.table = QTableWidget(0, 0, objectName="comparisonTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("One row per run; click a column header to sort by it.")
        self._set_columns("accuracy")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.table, 1)

    def _set_columns(self, metric: str, split: str = "val") -> None:
        """Headers for a classification ("accuracy") or regression ("r2") lab.

        ``split`` is "val", or "train" when the data set has no validation split (the table then
        compares full-training-set numbers and says so).
        """
        name = "R²" if metric == "r2" else "accuracy"
        short = "R²" if metric == "r2" else "acc."
        where = "Validation" if split == "val" else "Full-training-set"
        self.columns = [
            _Column("#", "The run's place in the lab (sort by it to restore the lab's order)."),
            _Column("Run", "The run's label."),
            _Column(f"{split.capitalize()} loss", f"{where} loss at the latest evaluation."),
            _Column(f"Best {split} loss", f"Lowest {where.lower()} loss over all evaluations."),
            _Column(f"{split.capitalize()} {short}", f"{where} {name} at the latest evaluation."),
            _Column(f"Best {split} {short}",
                    f"Highest {where.lower()} {name} over all evaluations."),
            _Column("Step to target", f"First evaluated step whose {where.lower()} loss was at "
                                      "or below the target loss."),
            _Column("Sharpness", "Top Hessian eigenvalue λ_max at the run's latest tracked "
                                 "step (problem.sharpness_every), else the last measurement of "
                                 "the Surface tab's Sharpness page. Gradient descent is stable "
                                 "only while λ_max < 2/lr."),
            _Column("Wall (s)", "Seconds since the race started when the run last trained."),
            _Column("Status", "Running, finished, stopped early or diverged (with the step)."),
        ]
        self.table.setColumnCount(len(self.columns))
        for k, column in enumerate(self.columns):
            item = QTableWidgetItem(column.header)
            item.setToolTip(column.tooltip)
            self.table.setHorizontalHeaderItem(k, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)  # spare width goes to the status text

    # -- public API ----------------------------------------------------------------------------

    def set_runs(self) -> None:
        """A row per run of the race (after `ShownRace` changed), its cells empty."""
        race = self.race
        table = self.table
        table.setSortingEnabled(False)
        table.clearContents()
        has_val = race.dataset is not None and len(race.dataset.y_val) > 0
        self._set_columns(race.metric, "val" if has_val else "train")
        table.setRowCount(len(race.labels))
        self.table_items = []
        for i, (label, color) in enumerate(zip(race.labels, race.colors)):
            run_item = QTableWidgetItem(label)
            run_item.setData(Qt.ItemDataRole.DecorationRole, QColor(color))
            row = [NumericItem(str(i + 1), i), run_item]
            row += [NumericItem("—") for _ in range(len(self.columns) - 3)]
            row.append(NumericItem("waiting", -1))
            row[-1].setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            for col, item in enumerate(row):
                table.setItem(i, col, item)
            self.table_items.append(row)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def _run_stats(self, i: int) -> list[tuple[str, float]]:
        """The numeric cells of run i as (text, sort key), in column order after "Run".

        A race over several seeds shows "mean ± std" (the std at the same evaluation); the sort
        key is the mean."""
        history = self.race.history
        metric = self.race.metric
        nan = math.nan
        values = {"final_loss": nan, "best_loss": nan, "final_m": nan, "best_m": nan,
                  "target_step": nan}
        stds = {"final_loss": nan, "best_loss": nan, "final_m": nan, "best_m": nan}
        evals = history.evals[i] if history.evals is not None else None
        fields = history.eval_fields
        split = "val" if "val_loss" in fields else "train"
        if evals is not None and len(evals):
            loss = evals.column(f"{split}_loss")
            best = int(np.argmin(loss))
            values["final_loss"], values["best_loss"] = float(loss[-1]), float(loss[best])
            if f"{split}_loss_std" in fields:
                loss_std = evals.column(f"{split}_loss_std")
                stds["final_loss"], stds["best_loss"] = float(loss_std[-1]), float(loss_std[best])
            if f"{split}_{metric}" in fields:
                score = evals.column(f"{split}_{metric}")
                top = int(np.argmax(score))
                values["final_m"], values["best_m"] = float(score[-1]), float(score[top])
                if f"{split}_{metric}_std" in fields:
                    score_std = evals.column(f"{split}_{metric}_std")
                    stds["final_m"], stds["best_m"] = float(score_std[-1]), float(score_std[top])
            reached = np.flatnonzero(loss <= self.target_spin.value())
            if len(reached):
                values["target_step"] = float(evals.column("step")[reached[0]])
        steps = history.steps[i]
        wall = steps.last("wall") if len(steps) else nan
        # Tracked sharpness, else an on-demand measurement; one that was measured but did not
        # converge says so rather than showing a blank (or an older number).
        tracked = history.sharpness is not None and len(history.sharpness[i]) > 0
        sharpness = history.last_sharpness(i)
        measured = tracked
        if not tracked:
            sharpness = self.surface_view.sharpness_value(i)
            measured = self.surface_view.has_sharpness(i)
        sharpness_text = ("not converged" if measured and math.isnan(sharpness)
                          else _fmt(sharpness, ".4g"))
        metric_spec = ".1%" if metric == "accuracy" else ".3f"

        def cell(name: str, spec: str, std_spec: str) -> tuple[str, float]:
            return _fmt_pm(values[name], stds[name], spec, std_spec), values[name]

        return [
            cell("final_loss", ".4g", ".2g"),
            cell("best_loss", ".4g", ".2g"),
            cell("final_m", metric_spec, metric_spec),
            cell("best_m", metric_spec, metric_spec),
            (_fmt(values["target_step"], ".0f"), values["target_step"]),
            (sharpness_text, sharpness),
            (_fmt(wall, ".1f"), wall),
        ]

    def run_status(self, i: int) -> tuple[str, float]:
        """(text, sort key) of run i: running / finished / stopped early at N / diverged at N."""
        history = self.race.history
        if history is None:
            return "waiting", -1.0
        if i in history.divergences:
            event = history.divergences[i]
            what = _STOP_WORDS.get(getattr(event, "kind", "diverged"), "diverged")
            return f"{what} at {event.step}", _STATUS_RANK["diverged"] * 1e9 + event.step
        if i in history.stops:
            step = history.stops[i].step
            return f"stopped early at {step}", _STATUS_RANK["stopped"] * 1e9 + step
        if self.race.total_steps is not None and history.last_step >= self.race.total_steps:
            return "finished", _STATUS_RANK["finished"] * 1e9
        return "running", 0.0

    def refresh(self) -> None:
        """Every run's numbers and status from the race's history."""
        if self.race.history is None or not self.table_items:
            return
        table = self.table
        table.setSortingEnabled(False)  # no re-sorting while cells change under it
        for i, row in enumerate(self.table_items):
            for item, (text, key) in zip(row[2:-1], self._run_stats(i)):
                item.set_value(text, key if math.isfinite(key) else math.inf)
            status, key = self.run_status(i)
            row[-1].set_value(status, key)
            row[-1].setForeground(_STATUS_COLORS.get(status.split()[0], QColor(FOREGROUND)))
            row[-1].setToolTip(self._status_tooltip(i))
        table.setSortingEnabled(True)  # re-sorts by the current sort column

    def _status_tooltip(self, i: int) -> str:
        history = self.race.history
        if i in history.divergences:
            event = history.divergences[i]
            kind = getattr(event, "kind", "diverged")
            text = f"{_STOP_WORDS.get(kind, kind).capitalize()}: {event.reason}"
            if getattr(event, "traceback", None):  # the traceback's end: the optimizer's frame
                text += "\n\n" + "\n".join(event.traceback.rstrip().splitlines()[-8:])
            return text
        if i in history.stops:
            event = history.stops[i]
            text = (f"Stopped early: best validation loss {event.best_val_loss:.4g} "
                    f"at step {event.best_step}")
            reason = getattr(event, "reason", "")
            return f"{text} ({reason})" if reason else text
        return ""

    def table_rows(self) -> list[list[str]]:
        """The table's rows as shown (sorted), each cell as its text."""
        table = self.table
        return [[table.item(r, c).text() for c in range(table.columnCount())]
                for r in range(table.rowCount())]

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write the table (rows in display order, numbers unformatted) to ``path``, atomically
        (`core.lab.format.write_atomic`: a crash never leaves a half-written CSV there)."""
        path = Path(path)
        table = self.table
        headers = [c.header for c in self.columns]
        measured = range(2, len(headers) - 1)  # the numeric columns between "Run" and "Status"
        rows = []
        for r in range(table.rowCount()):
            cells = []
            for c in range(table.columnCount()):
                item = table.item(r, c)
                if c in measured:
                    key = item.key()
                    if not math.isfinite(key):
                        cells.append("")
                    else:  # full precision; whole numbers (steps) without a trailing ".0"
                        cells.append(str(int(key)) if key.is_integer() else repr(key))
                else:
                    cells.append(item.text())
            rows.append(cells)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows(rows)
        # Bytes: the csv module's "\r\n" row ends stay as written on every platform.
        write_atomic(path, buffer.getvalue().encode("utf-8"))
        return path

    def _on_export(self) -> None:
        save_table_csv(self, "Export comparison", "comparison.csv", self.export_csv,
                       ask=self.save_dialog, report_error=self.report_error)
