"""Small table helpers shared by the panels."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QTableWidget, QTableWidgetItem


def header_table(
    headers: Sequence[tuple[str, str]], object_name: str, accessible_name: str
) -> QTableWidget:
    """An empty table whose column headers carry their text and a tooltip each."""
    table = QTableWidget(0, len(headers), objectName=object_name)
    table.setAccessibleName(accessible_name)
    for column, (text, tip) in enumerate(headers):
        item = QTableWidgetItem(text)
        item.setToolTip(tip)
        table.setHorizontalHeaderItem(column, item)
    return table
