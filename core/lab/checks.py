"""Checks of JSON values read from a file: each returns the value or raises `LabError` naming the
field (``runs[1].branch.step``) and what is allowed there.

Shared by the readers of the lab file (core/lab/format.py, its branches included). Imports only
core.errors, so any reader can use them without import cycles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from core.errors import LabError


def expect(value: Any, types: type | tuple[type, ...], field_: str, what: str) -> Any:
    """``value`` if it is one of ``types`` (never a bool standing for a number), else an error
    saying it must be ``what``."""
    # bool is an int in Python; a lab that says "steps": true is a mistake, not 1.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise LabError(field_, f"must be {what}, got {json.dumps(value)}")
    if not isinstance(value, types):
        raise LabError(field_, f"must be {what}, got {show(value)}")
    return value


def show(value: Any) -> str:
    """A value as the user wrote it (JSON), cut to 40 characters for an error message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_keys(data: Mapping, allowed: set[str], required: set[str], field_: str) -> None:
    """Refuse a key outside ``allowed`` (a typo, most often) and a missing ``required`` one."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f"{field_}." if field_ else ""
        raise LabError(
            f"{where}{unknown[0]}",
            f"unknown key; allowed keys here: {', '.join(sorted(allowed))}",
        )
    for key in sorted(required):
        if key not in data:
            where = f"{field_}." if field_ else ""
            raise LabError(f"{where}{key}", "is missing")


def int_in(value: Any, field_: str, low: int, high: int) -> int:
    """A whole number in [low, high] (3.0 counts as 3)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    expect(value, int, field_, f"a whole number in [{low}, {high}]")
    if not low <= value <= high:
        raise LabError(field_, f"must be in [{low}, {high}], got {value}")
    return value


def finite_float(value: Any, field_: str, limit: float) -> float:
    """A finite number in [−limit, limit], as a float."""
    expect(value, (int, float), field_, "a number")
    value = float(value)
    if not math.isfinite(value) or abs(value) > limit:
        raise LabError(field_, f"must be a finite number in [-{limit:g}, {limit:g}], got {value}")
    return value
