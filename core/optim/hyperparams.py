"""One description of a hyperparameter, shared by every place that needs to know about it.

The optimizer and schedule registries describe each constructor argument once, as a `HyperParam`.
The same description then drives everything else: validation of lab files (with messages that
name the field and the allowed range), the GUI editors (kind, range, log-scale slider, tooltip)
and the sweep search space (``search``).

Conventions
-----------
* ``default=None`` means *derived*: the value is filled in later from context (a cosine schedule's
  ``T_max`` becomes the lab's number of steps; L-BFGS's ``max_eval`` is derived by torch itself).
  For such a parameter an explicit ``None`` (JSON ``null``) is accepted and means "automatic".
* A ``"pair"`` whose default has a ``None`` element (Adafactor's ``eps = (None, 1e-3)``) accepts
  ``None`` for that element, with the same "automatic" meaning.
* A ``"choice"`` that lists ``"none"`` stands for Python's ``None`` in torch (L-BFGS's
  ``line_search_fn``). We keep the string in lab files because a choice of strings is what the
  GUI shows; `HyperParam.to_torch` turns it into ``None`` when the optimizer is built. A JSON
  ``null`` given for such a choice is read as ``"none"``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import LabError

KINDS = ("float", "int", "bool", "pair", "choice", "int_list")

# The choice string that stands for torch's ``None`` (see the module docstring).
NONE_CHOICE = "none"


def format_number(value: float | int) -> str:
    """A short, exact spelling of a bound: ``0`` not ``0.0``, ``1e-05`` not ``0.00001``."""
    if isinstance(value, float):
        value = float(value)  # numpy's float64 would print as np.float64(...)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
    return repr(value)


def show_value(value: Any) -> str:
    """How a user's (wrong) value appears in a message: JSON-like, with its type when unclear."""
    if isinstance(value, bool):
        # Python's True would read as a Python-ism to someone editing JSON.
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, numbers.Integral):
        return repr(int(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return repr(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    """A plain number: int or float (numpy's too), but not a bool, which JSON keeps apart."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


@dataclass(frozen=True)
class HyperParam:
    """One hyperparameter: its type, default, valid range, and how to explain it to a student."""

    name: str
    default: float | int | bool | str | tuple | None
    kind: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    log: bool = False
    search: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    tooltip: str = ""
    # What a None default turns into, in words, for the GUI's "auto" placeholder and the docs.
    derived: str = ""

    def __post_init__(self) -> None:
        # Programming mistakes in the registries, caught at import time rather than by a user.
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"{self.name}: a choice needs choices")

    # ---------------------------------------------------------------- describing

    def describe_range(self) -> str:
        """The allowed values in words: ``[0, 1)``, ``> 0``, ``>= 0``, ``one of 'cos', 'linear'``."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind in ("pair", "int_list"):
            phrase = self._range_phrase()
            return f"each {phrase}" if phrase else "each finite"
        return self._describe_scalar_range()

    def _describe_scalar_range(self) -> str:
        low, high = self.low, self.high
        if low is not None and high is not None:
            left = "[" if self.low_inclusive else "("
            right = "]" if self.high_inclusive else ")"
            return f"{left}{format_number(low)}, {format_number(high)}{right}"
        if low is not None:
            return f"{'>=' if self.low_inclusive else '>'} {format_number(low)}"
        if high is not None:
            return f"{'<=' if self.high_inclusive else '<'} {format_number(high)}"
        return "any finite number"

    def _range_phrase(self) -> str:
        """``in [0, 1)`` or ``>= 0`` (or nothing when unbounded): the range after "a number"."""
        if self.low is None and self.high is None:
            return ""
        scalar = self._describe_scalar_range()
        return scalar if scalar.startswith(("<", ">")) else f"in {scalar}"

    def _expectation(self, noun: str) -> str:
        """``a number >= 0``, ``a whole number in [1, 99]``: what a wrong value must be."""
        phrase = self._range_phrase()
        return f"a {noun} {phrase}" if phrase else f"a finite {noun}"

    # ---------------------------------------------------------------- validating

    def validate(self, value: Any, field: str) -> Any:
        """Return the cleaned value or raise `LabError` naming ``field`` and the allowed range.

        Cleaning: an int given for a float becomes a float; a whole float given for an int
        becomes an int; a JSON list for a pair becomes a tuple. A bool is never a number and a
        number is never a bool. NaN and infinities are refused.
        """
        if value is None and self._none_allowed():
            return NONE_CHOICE if self.kind == "choice" else None
        if self.kind == "float":
            return self._check_float(value, field)
        if self.kind == "int":
            return self._check_int(value, field)
        if self.kind == "bool":
            if not _is_bool(value):
                raise LabError(field, f"must be true or false, got {show_value(value)}")
            return bool(value)
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise LabError(field, f"must be {self.describe_range()}, got {show_value(value)}")
            return value
        if self.kind == "pair":
            return self._check_pair(value, field)
        return self._check_int_list(value, field)

    def to_torch(self, value: Any) -> Any:
        """The value as torch's constructor wants it (``"none"`` choice → ``None``)."""
        if self.kind == "choice" and value == NONE_CHOICE:
            return None
        if self.kind in ("pair", "int_list") and isinstance(value, list):
            return tuple(value)
        return value

    def _none_allowed(self) -> bool:
        return self.default is None or (self.kind == "choice" and NONE_CHOICE in self.choices)

    def _check_float(self, value: Any, field: str) -> float:
        if not _is_real(value):
            raise LabError(field, f"must be {self._expectation('number')}, got {show_value(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise LabError(field, f"must be {self._expectation('finite number')}, got {number!r}")
        self._check_bounds(number, field)
        return number

    def _check_int(self, value: Any, field: str) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)  # JSON writers sometimes spell 5 as 5.0
        if not isinstance(value, numbers.Integral) or _is_bool(value):
            expected = self._expectation("whole number")
            raise LabError(field, f"must be {expected}, got {show_value(value)}")
        number = int(value)
        self._check_bounds(number, field)
        return number

    def _check_bounds(self, number: float | int, field: str) -> None:
        too_low = self.low is not None and (
            number < self.low if self.low_inclusive else number <= self.low
        )
        too_high = self.high is not None and (
            number > self.high if self.high_inclusive else number >= self.high
        )
        if too_low or too_high:
            raise LabError(field, f"must be {self._range_phrase()}, got {format_number(number)}")

    def _check_pair(self, value: Any, field: str) -> tuple:
        expected = f"a pair of two numbers, {self.describe_range()}"
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise LabError(field, f"must be {expected}, got {show_value(value)}")
        optional = self.default if isinstance(self.default, tuple) else (0.0, 0.0)
        cleaned = []
        for i, element in enumerate(value):
            if element is None and optional[i] is None:
                cleaned.append(None)  # "automatic", as in torch's default
                continue
            cleaned.append(self._check_float(element, f"{field}[{i}]"))
        return tuple(cleaned)

    def _check_int_list(self, value: Any, field: str) -> tuple[int, ...]:
        expected = f"a list of whole numbers, {self.describe_range()}"
        if not isinstance(value, (list, tuple)) or not value:
            raise LabError(field, f"must be {expected}, got {show_value(value)}")
        return tuple(
            self._check_int(element, f"{field}[{i}]") for i, element in enumerate(value)
        )


def validate_params(specs: Sequence[HyperParam], params: Mapping, field: str) -> dict:
    """Check every entry of ``params`` against its spec; return a cleaned copy.

    Unknown names are refused with the list of allowed ones. Missing names stay missing:
    defaults are applied by whoever builds the object, so a lab file keeps only what the user set.
    """
    if not isinstance(params, Mapping):
        raise LabError(
            field, f"must be an object of hyperparameter names to values, got {show_value(params)}"
        )
    by_name = {spec.name: spec for spec in specs}
    cleaned = {}
    for key, value in params.items():
        spec = by_name.get(key) if isinstance(key, str) else None
        if spec is None:
            allowed = ", ".join(by_name) if by_name else "none (this takes no parameters)"
            raise LabError(
                f"{field}.{key}" if field else str(key),
                f"unknown hyperparameter {key!r}; allowed: {allowed}",
            )
        cleaned[key] = spec.validate(value, f"{field}.{key}" if field else key)
    return cleaned
