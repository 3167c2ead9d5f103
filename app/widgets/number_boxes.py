"""Number entry boxes: a spin box that reads and writes scientific notation, and a whole-number one.

Both take anything finite that is typed, so that whoever owns them can say in red what is allowed
(the form in app/widgets/hyperparam_form.py, the network editors); only the arrows and the wheel
stay inside the allowed range (`set_allowed`). `format_float` is how every number is shown.
"""

from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QDoubleSpinBox, QSpinBox, QWidget

# Spin boxes need finite bounds; no hyperparameter is anywhere near these.
FLOAT_LIMIT = 1e300
INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int
LOG_STEP_FACTOR = 1.25

# What a user may be half-way through typing: "", "-", "1.", "1e", "1e-", ...
_PARTIAL_NUMBER = re.compile(r"^[+-]?(\d*\.?\d*)([eE][+-]?\d*)?$")


def format_float(value: float) -> str:
    """Short but faithful: ``0.001``, ``1e-08``, ``0.9``, ``1000000`` (12 significant digits)."""
    if value == 0:
        return "0"
    text = f"{value:.12g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent):+03d}".replace("e+", "e")
    return text


def typed_whole(value: float) -> int | float:
    """A whole number typed into a `ScientificSpinBox` (a seed) as an int; 1.5 stays 1.5 for
    validation to refuse, never silently truncated to 1."""
    return int(value) if float(value).is_integer() else value





class ScientificSpinBox(QDoubleSpinBox):
    """A `QDoubleSpinBox` that reads and writes scientific notation (``3e-4``).

    `QDoubleSpinBox` rounds every value to ``decimals()`` places, so decimals are set to the
    maximum Qt allows: 1e-30 stays 1e-30. What is *shown* comes from `format_float` instead.
    With ``log=True`` the arrows multiply or divide by `LOG_STEP_FACTOR`, which is how one
    explores a learning rate; from 0 the first step up goes to ``log_floor``.

    ``set_allowed(low, high)`` keeps the arrows inside [low, high] while anything finite can
    still be typed (see the module docstring); without it they keep to the box's own range.
    """

    def __init__(
        self, parent: QWidget | None = None, *, log: bool = False, log_floor: float = 1e-4
    ):
        super().__init__(parent)
        self._log = log
        self._log_floor = log_floor
        self._allowed: tuple[float, float] | None = None
        self.setDecimals(323)  # DBL_MAX_10_EXP + DBL_DIG: never round away a tiny value
        self.setRange(-FLOAT_LIMIT, FLOAT_LIMIT)
        # Emit valueChanged on Enter, focus-out or an arrow step, not on every keystroke.
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToPreviousValue)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return format_float(value)

    def _number_text(self, text: str) -> str:
        """``text`` without the box's prefix and suffix (``p 0.1`` → ``0.1``): Qt hands the
        overrides below the whole text, and strips them only in its own implementations."""
        return text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt override)
        try:
            value = float(self._number_text(text))
        except ValueError:
            return self.value()
        return value if math.isfinite(value) else self.value()

    def validate(self, text: str, pos: int):  # Qt override
        stripped = self._number_text(text)
        try:
            value = float(stripped)
        except ValueError:
            partial = _PARTIAL_NUMBER.match(stripped) is not None
            state = QValidator.State.Intermediate if partial else QValidator.State.Invalid
            return state, text, pos
        if not math.isfinite(value) or stripped.lower().lstrip("+-") in ("inf", "nan", "infinity"):
            return QValidator.State.Invalid, text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        # Out of range may still become valid ("0.0" on the way to "0.05" is fine; "5" under a
        # maximum of 1 is not, but the user may be typing "5e-3").
        return QValidator.State.Intermediate, text, pos

    def fixup(self, text: str) -> str:  # Qt override
        return text

    def set_allowed(self, low: float, high: float) -> None:
        """Where the arrows and the wheel may go; typing may go beyond (validation explains)."""
        self._allowed = (low, high)

    def allowed(self) -> tuple[float, float]:
        return self._allowed if self._allowed is not None else (self.minimum(), self.maximum())

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt override)
        low, high = self.allowed()
        value = self.value()
        if not self._log:
            new = value + steps * self.singleStep()
        elif value <= 0:
            new = self._log_floor if steps > 0 else value
        else:
            new = value * LOG_STEP_FACTOR**steps
        self.setValue(min(max(new, low), high))  # a refused value steps back into the range
        self.selectAll()

    def stepEnabled(self):  # noqa: N802 (Qt override)
        low, high = self.allowed()
        value = self.value()
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if value < high:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        if value > (max(low, 0.0) if self._log else low):
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        return flags


class WholeNumberBox(QSpinBox):
    """A `QSpinBox` whose arrows and wheel stay inside the allowed range while any whole number
    can be typed (the owner's validation says what is wrong with it, see the module docstring)."""

    def __init__(self, parent: QWidget | None = None, **qt_properties: Any):
        super().__init__(parent, **qt_properties)
        self.setRange(-INT_LIMIT, INT_LIMIT)
        self._allowed = (-INT_LIMIT, INT_LIMIT)

    def set_allowed(self, low: int, high: int) -> None:
        self._allowed = (low, high)

    def allowed(self) -> tuple[int, int]:
        return self._allowed

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt override)
        low, high = self._allowed
        self.setValue(min(max(self.value() + steps * self.singleStep(), low), high))
        self.selectAll()

    def stepEnabled(self):  # noqa: N802 (Qt override)
        low, high = self._allowed
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if self.value() < high:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        if self.value() > low:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        return flags
