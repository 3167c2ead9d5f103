"""The search-space editor of the sweep window: one row per searchable hyperparameter of the
optimizer being tuned (tick, low, high, log scale, grid points), from the registry's specs
(`core.tools.sweep_views.searchable_params`). It only turns the rows into ``--param`` texts;
`core.tools.sweep.space` parses and checks them, as it does for the command line."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
)

from core.errors import LabError
from core.optim.hyperparams import HyperParam, format_number
from core.tools.sweep.space import DEFAULT_GRID_POINTS, MAX_GRID_POINTS
from core.tools.sweep_views import param_flag, searchable_params


class ParamRow:
    """One hyperparameter in the search-space table: tick, low, high, log, grid points."""

    def __init__(self, table: QTableWidget, row: int, hp: HyperParam, ticked: bool):
        self.hp = hp
        self.check = QCheckBox(hp.name)
        self.check.setChecked(ticked)
        self.check.setToolTip(f"Search {hp.name}. {hp.tooltip}")
        table.setCellWidget(row, 0, self.check)
        numeric = hp.kind in ("float", "int")
        if numeric:
            low, high = hp.search
            self.low = QLineEdit(format_number(low))
            self.high = QLineEdit(format_number(high))
            allowed = hp.describe_range()
            self.low.setToolTip(f"Lowest value to try (registry range: {allowed})")
            self.high.setToolTip(f"Highest value to try (registry range: {allowed})")
            self.log = QCheckBox()
            self.log.setChecked(hp.log and low > 0)
            self.log.setToolTip("Search on a log scale (each decade equally often); needs a "
                                "low value > 0")
            self.points = QSpinBox()
            self.points.setRange(2, MAX_GRID_POINTS)
            self.points.setValue(DEFAULT_GRID_POINTS)
            self.points.setToolTip("Points of this range a grid sweep visits")
            for column, widget in ((1, self.low), (2, self.high), (3, self.log),
                                   (4, self.points)):
                table.setCellWidget(row, column, widget)
        else:
            values = "true, false" if hp.kind == "bool" else ", ".join(hp.choices)
            item = QTableWidgetItem(f"all of: {values}")
            item.setToolTip(f"{hp.name} is searched over all its values")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            table.setItem(row, 1, item)
            table.setSpan(row, 1, 1, 4)
            self.low = self.high = self.log = self.points = None

    def flag(self) -> str:
        """The ``--param`` text for this row (core.tools.sweep.space parses and checks it)."""
        if self.low is None:
            return param_flag(self.hp)
        low, high = self.low.text().strip(), self.high.text().strip()
        if not low or not high:
            raise LabError(self.hp.name, "the range is empty: give both a low and a high value")
        return param_flag(self.hp, low, high, self.log.isChecked(), self.points.value())

    def set_range(self, low: str, high: str, log: bool | None = None,
                  points: int | None = None) -> None:
        self.low.setText(low)
        self.high.setText(high)
        if log is not None:
            self.log.setChecked(log)
        if points is not None:
            self.points.setValue(points)


class SpaceEditor(QTableWidget):
    """The optimizer's searchable hyperparameters; lr ticked by default."""

    HEADERS = (("search", "Tick the hyperparameters to search"),
               ("low", "Lowest value to try"), ("high", "Highest value to try"),
               ("log", "Log scale"), ("grid N", "Points per range for a grid sweep"))

    def __init__(self, parent=None):
        super().__init__(0, len(self.HEADERS), parent, objectName="spaceTable")
        for column, (text, tip) in enumerate(self.HEADERS):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.setHorizontalHeaderItem(column, item)
        self.verticalHeader().setVisible(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.setToolTip("What the sweep searches: tick rows, narrow their ranges. Defaults "
                        "are the registry's search ranges.")
        self.rows: dict[str, ParamRow] = {}
        self.optimizer: str | None = None

    def set_optimizer(self, optimizer: str) -> None:
        if optimizer == self.optimizer:
            return
        self.optimizer = optimizer
        specs = searchable_params(optimizer)
        self.clearSpans()
        self.setRowCount(len(specs))
        self.rows = {hp.name: ParamRow(self, r, hp, hp.name == "lr")
                     for r, hp in enumerate(specs)}
        if "lr" not in self.rows and self.rows:  # e.g. an optimizer without lr
            next(iter(self.rows.values())).check.setChecked(True)

    def flags(self) -> tuple[str, ...]:
        ticked = [row for row in self.rows.values() if row.check.isChecked()]
        if not ticked:
            raise LabError("search", "tick at least one hyperparameter to search")
        return tuple(row.flag() for row in ticked)

    def tick(self, name: str, on: bool = True) -> ParamRow:
        row = self.rows[name]
        row.check.setChecked(on)
        return row
