"""Small table helpers shared by the panels and windows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)


def row_table(
    headers: Sequence[tuple[str, str]], object_name: str, accessible_name: str
) -> QTableWidget:
    """An empty table of rows picked one at a time (the runs, the layers).

    Its column headers carry their text and a tooltip each. A click selects a whole row, one at a
    time; Tab leaves the table (arrow keys move between cells), so it is no keyboard trap; a cell
    too long for its column keeps one line and ends in "…"; no row numbers, and the header does
    not light up with the selection.
    """
    table = QTableWidget(0, len(headers), objectName=object_name)
    table.setAccessibleName(accessible_name)
    for column, (text, tip) in enumerate(headers):
        item = QTableWidgetItem(text)
        item.setToolTip(tip)
        table.setHorizontalHeaderItem(column, item)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setTabKeyNavigation(False)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setHighlightSections(False)
    return table


def size_columns(
    table: QTableWidget, columns: Iterable[tuple[int, QHeaderView.ResizeMode, int]]
) -> None:
    """Give each (column, resize mode, width) its mode and, unless the width is 0, that width."""
    header = table.horizontalHeader()
    for column, mode, width in columns:
        header.setSectionResizeMode(column, mode)
        if width:
            header.resizeSection(column, width)


def save_table_csv(
    parent: QWidget,
    caption: str,
    suggested_name: str,
    write: Callable[[str], object],
    ask: Callable | None = None,
    report_error: Callable | None = None,
) -> str | None:
    """Ask where to save a table as CSV (".csv" added when missing) and ``write`` it there.

    ``ask`` and ``report_error`` default to QFileDialog.getSaveFileName and QMessageBox.warning
    (tests pass their own). Returns the path written, or None when the user cancelled or the
    write failed: a failure is shown to the user, never raised.
    """
    ask = ask or QFileDialog.getSaveFileName
    report_error = report_error or QMessageBox.warning
    path, _filter = ask(parent, caption, suggested_name, "CSV files (*.csv)")
    if not path:
        return None
    if not path.lower().endswith(".csv"):
        path += ".csv"
    try:
        write(path)
    except OSError as exc:
        report_error(parent, "Export failed", f"Could not write {path}: {exc.strerror or exc}")
        return None
    return path
