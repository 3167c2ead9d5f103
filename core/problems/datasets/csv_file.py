"""Reading a CSV data file next to the lab file into a checked `CsvTable`, or a clear `LabError`.

UTF-8 (with or without a byte-order mark), comma separated, a header row of column names, one
sample per row. Every column but the label must be numeric. Classification labels may be text or
numbers; the distinct labels, sorted (numerically when they all are numbers), become the classes
0..k-1 and their spellings `Dataset.class_names`. Empty lines are skipped; an empty cell or
``NA``, ``N/A``, ``NaN``, ``null`` is a missing value and is refused with its row and column
(rows are counted as a spreadsheet shows them: the header is row 1). A CSV with exactly two
feature columns is also a 2-D set: it gets ``points_*`` and a ``plane`` for decision boundaries.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import LabError

MIN_CSV_ROWS = 4
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 1000
# More distinct labels than this is almost always a numeric target read as classification.
MAX_CSV_CLASSES = 100
# Reading is all in memory; 100k rows of 1000 short numbers stay well below this.
MAX_CSV_BYTES = 512 * 1024 * 1024
# Spellings of "no value" that spreadsheets, R and pandas write (compared lower-case).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null"})


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A checked CSV file: float64 features (n, d), targets, and the names that go with them.

    ``y`` is int64 class indices for classification (``class_names[i]`` is the spelling of class
    ``i``) and float64 (n,) for regression (``class_names`` empty). Rows are in file order.
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    task: str


def load_csv(path: Path | str, label: str, task: str = "classification",
             field: str = "problem.dataset") -> CsvTable:
    """Read and check a CSV data file (format in the module docstring), or raise `LabError`.

    Problems with the file and its cells are reported on ``<field>.path``, with the file name,
    the row (the header is row 1) and the column; problems with the label column on
    ``<field>.label``.
    """
    path = Path(path)
    path_field, label_field = f"{field}.path", f"{field}.label"
    if task not in ("classification", "regression"):
        raise LabError(f"{field}.task", f"must be 'classification' or 'regression', got {task!r}")
    text = _read_utf8(path, path_field)
    reader = csv.reader(io.StringIO(text, newline=""))
    records = _numbered_records(reader, path, path_field)

    header_row, header = next(records, (0, None))
    if header is None:
        raise LabError(path_field, f"{path.name} is empty; it needs a header row of column names")
    columns = _check_header(header, header_row, path, path_field)
    if label not in columns:
        hint = _separator_hint(columns)
        raise LabError(
            label_field,
            f"{path.name} has no column {label!r}; its columns are: "
            f"{', '.join(repr(c) for c in columns)}{hint}",
        )
    label_index = columns.index(label)
    feature_indices = [j for j in range(len(columns)) if j != label_index]
    if not feature_indices:
        raise LabError(
            path_field, f"{path.name} has only the label column; it needs feature columns"
        )

    rows: list[list[float]] = []
    labels: list[str] = []  # classification: the spellings
    targets: list[float] = []  # regression: the numbers
    for row_number, record in records:
        if len(rows) == MAX_CSV_ROWS:
            raise LabError(path_field, f"{path.name} has more than {MAX_CSV_ROWS} data rows")
        if len(record) != len(columns):
            raise LabError(
                path_field,
                f"{path.name}: row {row_number} has {len(record)} cells but the header has "
                f"{len(columns)} columns",
            )
        rows.append([
            _number(record[j], row_number, columns[j], path, path_field) for j in feature_indices
        ])
        cell = record[label_index]
        if task == "regression":
            targets.append(_number(cell, row_number, label, path, path_field))
            continue
        if cell.strip().lower() in MISSING_MARKERS:
            raise LabError(
                path_field, f"{path.name}: row {row_number}, column {label!r}: missing label"
            )
        labels.append(cell.strip())
    if len(rows) < MIN_CSV_ROWS:
        raise LabError(
            path_field, f"{path.name} has {len(rows)} data rows; at least {MIN_CSV_ROWS} are needed"
        )

    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(feature_indices))
    feature_names = tuple(columns[j] for j in feature_indices)
    if task == "regression":
        return CsvTable(x, np.asarray(targets, dtype=np.float64), feature_names, (), task)
    class_names = _sorted_classes(set(labels))
    if len(class_names) < 2:
        raise LabError(
            label_field,
            f"{path.name}: column {label!r} has only one class ({class_names[0]!r}); "
            "classification needs at least 2",
        )
    if len(class_names) > MAX_CSV_CLASSES:
        raise LabError(
            label_field,
            f"{path.name}: column {label!r} has {len(class_names)} distinct labels; classification "
            f"allows at most {MAX_CSV_CLASSES} (for a numeric target use \"task\": \"regression\")",
        )
    index = {name: i for i, name in enumerate(class_names)}
    y = np.fromiter((index[cell] for cell in labels), dtype=np.int64, count=len(labels))
    return CsvTable(x, y, feature_names, class_names, task)


def _read_utf8(path: Path, path_field: str) -> str:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise LabError(path_field, f"{path}: {what}")
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            megabytes = f"{size // 2**20} MB; at most {MAX_CSV_BYTES // 2**20} MB"
            raise LabError(path_field, f"{path.name} is {megabytes}")
        data = path.read_bytes()
    except OSError as error:
        raise LabError(path_field, f"{path}: cannot read ({error.strerror or error})") from None
    try:
        # utf-8-sig reads plain UTF-8 too and drops the byte-order mark Excel writes.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LabError(
            path_field,
            f"{path.name} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8')",
        ) from None


def _numbered_records(reader, path: Path, path_field: str):
    """Yield (row number, cells) for each non-blank record; the header is row 1."""
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # blank lines count, as a spreadsheet shows them
            if not _is_blank(record):
                yield row_number, record
    except csv.Error as error:
        raise LabError(
            path_field, f"{path.name}: row {row_number + 1} is not valid CSV ({error})"
        ) from None


def _is_blank(record: list[str]) -> bool:
    # An empty line, or one of spaces. A line of commas (",,,") is a row of missing values and
    # is reported as such.
    return not record or (len(record) == 1 and not record[0].strip())


def _check_header(header: list[str], row: int, path: Path, path_field: str) -> list[str]:
    columns = [cell.strip() for cell in header]
    if len(columns) > MAX_CSV_COLUMNS:
        raise LabError(
            path_field, f"{path.name} has {len(columns)} columns; at most {MAX_CSV_COLUMNS}"
        )
    if all(_is_number(c) for c in columns):
        raise LabError(
            path_field,
            f"{path.name}: row {row} must be a header of column names, got numbers only "
            f"({', '.join(columns[:5])}{', …' if len(columns) > 5 else ''})",
        )
    for j, name in enumerate(columns):
        if not name:
            raise LabError(path_field, f"{path.name}: column {j + 1} of the header has no name")
        if name in columns[:j]:
            raise LabError(path_field, f"{path.name}: the header names column {name!r} twice")
    return columns


def _separator_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for separator, word in ((";", "semicolons"), ("\t", "tabs")):
            if separator in columns[0]:
                return f" (the file seems separated by {word}; columns must be separated by commas)"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(cell: str, row: int, column: str, path: Path, path_field: str) -> float:
    text = cell.strip()
    if text.lower() in MISSING_MARKERS:
        raise LabError(path_field, f"{path.name}: row {row}, column {column!r}: missing value")
    try:
        value = float(text)
    except ValueError:
        raise LabError(
            path_field,
            f"{path.name}: row {row}, column {column!r}: expected a number, got {_clip(text)!r}",
        ) from None
    if not math.isfinite(value):
        raise LabError(
            path_field, f"{path.name}: row {row}, column {column!r}: must be finite, got {text!r}"
        )
    return value


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sorted_classes(labels: set[str]) -> tuple[str, ...]:
    """Class spellings in order: numerically when all are numbers (so "10" follows "9")."""
    if all(_is_number(label) for label in labels):
        return tuple(sorted(labels, key=lambda label: (float(label), label)))
    return tuple(sorted(labels))
