"""A form generated from `HyperParam` descriptions: one editor per hyperparameter.

The same widget edits an optimizer's hyperparameters and a schedule's. It knows nothing about
labs or runs: it shows values, and when the user really changes one it emits
``value_edited(name, value)``. Whoever owns the form validates the value (with the registry's
cross-field rules) and decides whether it becomes part of the lab.

Editors by kind:

* ``float`` → `ScientificSpinBox` (accepts ``1e-3``; log-scale parameters step by ×/÷ 1.25;
  the number boxes live in app/widgets/number_boxes.py)
* ``int`` → `QSpinBox`; ``bool`` → `QCheckBox`; ``choice`` → `QComboBox`
* ``pair`` → two `ScientificSpinBox` side by side
* ``int_list`` → `QLineEdit` of comma-separated whole numbers

Typing is never silently refused: a number beyond the allowed range (a negative lr) is taken and
emitted like any other, so that the owner's validation can say in red what is allowed (README,
"an invalid combination is shown in red under the form and not applied"); the owner then marks
the field with `mark_refused` until a valid value replaces it. Only the arrows and the wheel stay
inside the allowed range (`set_allowed`).

A parameter whose default is ``None`` is *derived* (a cosine schedule's ``T_max`` becomes the lab's
number of steps): it gets an "auto" check box beside its editor, and ``None`` is its value while
that box is ticked. A pair element whose default is ``None`` (Adafactor's ``eps``) gets one too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from app.widgets.number_boxes import FLOAT_LIMIT, INT_LIMIT, ScientificSpinBox, WholeNumberBox
from core.optim.hyperparams import HyperParam, format_number


def same_value(a: Any, b: Any) -> bool:
    """Equal as a user would see it: floats within 1e-12 relative, sequences element-wise."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def describe_default(spec: HyperParam) -> str:
    default = spec.default
    if default is None:
        return f"auto ({spec.derived})" if spec.derived else "auto"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (tuple, list)):
        return "(" + ", ".join("auto" if v is None else format_number(v) for v in default) + ")"
    if isinstance(default, (int, float)):
        return format_number(default)
    return str(default)


def error_color(palette: QPalette) -> str:
    """A red that reads on the current background (light red on dark, dark red on light)."""
    return "#ff6b6b" if palette.color(QPalette.ColorRole.Window).lightness() < 128 else "#b00020"


def tooltip_for(spec: HyperParam) -> str:
    """The hyperparameter's own explanation, then what is allowed and the default."""
    head = f"{spec.tooltip}\n" if spec.tooltip else ""
    return f"{head}Allowed: {spec.describe_range()}; default {describe_default(spec)}"


# --------------------------------------------------------------------------------------------
# Spin boxes for a hyperparameter (the boxes themselves: app/widgets/number_boxes.py)


def _float_box(spec: HyperParam, parent: QWidget | None = None) -> ScientificSpinBox:
    floor = spec.search[0] if spec.search else 1e-4
    box = ScientificSpinBox(parent, log=spec.log, log_floor=floor)
    low = spec.low if spec.low is not None and math.isfinite(spec.low) else -FLOAT_LIMIT
    high = spec.high if spec.high is not None and math.isfinite(spec.high) else FLOAT_LIMIT
    # Anything finite stays typeable (the box's own range is ±FLOAT_LIMIT): a value out of the
    # allowed range, or on an exclusive bound (betas < 1), is then explained by validation,
    # which teaches more than a box that silently refuses it. The arrows keep to [low, high].
    box.set_allowed(low, high)
    if not spec.log:
        span = high - low
        box.setSingleStep(span / 100 if span <= 10 else 0.1)
    return box


def _int_box(spec: HyperParam, parent: QWidget | None = None) -> WholeNumberBox:
    box = WholeNumberBox(parent)
    low = -INT_LIMIT if spec.low is None else int(math.ceil(spec.low))
    high = INT_LIMIT if spec.high is None else int(math.floor(spec.high))
    if spec.low is not None and not spec.low_inclusive and low == spec.low:
        low += 1
    if spec.high is not None and not spec.high_inclusive and high == spec.high:
        high -= 1
    box.set_allowed(max(low, -INT_LIMIT), min(high, INT_LIMIT))
    box.setKeyboardTracking(False)
    box.setAccelerated(True)
    return box


# --------------------------------------------------------------------------------------------
# One editor per kind. Each has `widget` (what goes into the form), `get()`, `set(value)` and
# calls `on_change()` after a user edit; `focus_widgets()` lists its widgets in tab order.


class _Editor:
    widget: QWidget

    def __init__(self, on_change: Callable[[], None]):
        self.on_change = on_change

    def get(self) -> Any:
        raise NotImplementedError

    def set(self, value: Any) -> None:
        raise NotImplementedError

    def focus_widgets(self) -> list[QWidget]:
        return [self.widget]

    def set_tooltip(self, text: str) -> None:
        for w in self.focus_widgets():
            w.setToolTip(text)


class _FloatEditor(_Editor):
    def __init__(self, spec: HyperParam, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.widget = _float_box(spec)
        self.widget.valueChanged.connect(lambda _v: self.on_change())

    def get(self) -> float:
        return float(self.widget.value())

    def set(self, value: Any) -> None:
        self.widget.blockSignals(True)
        self.widget.setValue(float(value))
        self.widget.blockSignals(False)


class _IntEditor(_Editor):
    def __init__(self, spec: HyperParam, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.widget = _int_box(spec)
        self.widget.valueChanged.connect(lambda _v: self.on_change())

    def get(self) -> int:
        return int(self.widget.value())

    def set(self, value: Any) -> None:
        self.widget.blockSignals(True)
        self.widget.setValue(int(value))
        self.widget.blockSignals(False)


class _BoolEditor(_Editor):
    def __init__(self, spec: HyperParam, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.widget = QCheckBox()
        # As tall as a spin box row, so that a form mixing both keeps an even rhythm.
        self.widget.setMinimumHeight(QSpinBox().sizeHint().height())
        self.widget.toggled.connect(lambda _v: self.on_change())

    def get(self) -> bool:
        return self.widget.isChecked()

    def set(self, value: Any) -> None:
        self.widget.blockSignals(True)
        self.widget.setChecked(bool(value))
        self.widget.blockSignals(False)


class _ChoiceEditor(_Editor):
    def __init__(self, spec: HyperParam, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.widget = QComboBox()
        for choice in spec.choices:
            self.widget.addItem(choice, choice)
        self.widget.currentIndexChanged.connect(lambda _i: self.on_change())

    def get(self) -> str:
        return self.widget.currentData()

    def set(self, value: Any) -> None:
        self.widget.blockSignals(True)
        index = self.widget.findData(value)
        self.widget.setCurrentIndex(max(index, 0))
        self.widget.blockSignals(False)


class _IntListEditor(_Editor):
    """Comma-separated whole numbers. What does not parse is passed on as text, so that the
    registry's validation explains the mistake in the same words a lab file would get."""

    def __init__(self, spec: HyperParam, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.widget = QLineEdit()
        self.widget.setPlaceholderText("e.g. 100, 200, 300")
        self.widget.editingFinished.connect(lambda: self.on_change())

    def get(self) -> Any:
        text = self.widget.text().strip()
        if not text:
            return []
        items: list[Any] = []
        for token in (t.strip() for t in text.split(",")):
            try:
                items.append(int(token))
            except ValueError:
                return text
        return tuple(items)

    def set(self, value: Any) -> None:
        self.widget.blockSignals(True)
        if isinstance(value, (list, tuple)):
            self.widget.setText(", ".join(str(v) for v in value))
        else:
            self.widget.setText("" if value is None else str(value))
        self.widget.blockSignals(False)


class _AutoEditor(_Editor):
    """An editor with an "auto" check box: ticked means None (derived from context).

    Unticking shows ``fallback`` (e.g. the lab's steps for a T_max) as a starting point.
    """

    def __init__(self, inner: _Editor, derived: str, fallback: Any, on_change: Callable[[], None]):
        super().__init__(on_change)
        self.inner = inner
        self.fallback = fallback
        inner.on_change = self._inner_changed
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        self.auto_box = QCheckBox("auto")
        self.auto_box.setToolTip(
            f"Automatic: {derived}" if derived else "Automatic: chosen from the context"
        )
        row.addWidget(inner.widget, 1)
        row.addWidget(self.auto_box)
        self.auto_box.toggled.connect(self._auto_toggled)

    def _auto_toggled(self, checked: bool) -> None:
        self.inner.widget.setEnabled(not checked)
        if not checked and self.fallback is not None:
            self.inner.set(self.fallback)
        self.on_change()

    def _inner_changed(self) -> None:
        if not self.auto_box.isChecked():
            self.on_change()

    def get(self) -> Any:
        return None if self.auto_box.isChecked() else self.inner.get()

    def set(self, value: Any) -> None:
        self.auto_box.blockSignals(True)
        self.auto_box.setChecked(value is None)
        self.auto_box.blockSignals(False)
        self.inner.widget.setEnabled(value is not None)
        shown = self.fallback if value is None else value
        if shown is not None:  # no fallback known: the editor keeps what it showed
            self.inner.set(shown)

    def focus_widgets(self) -> list[QWidget]:
        return self.inner.focus_widgets() + [self.auto_box]

    def set_tooltip(self, text: str) -> None:
        self.inner.set_tooltip(text)


class _PairEditor(_Editor):
    def __init__(self, spec: HyperParam, on_change: Callable[[], None], fallback: Any):
        super().__init__(on_change)
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        default = spec.default if isinstance(spec.default, tuple) else (0.0, 0.0)
        element_spec = HyperParam(
            spec.name, 0.0, "float", low=spec.low, high=spec.high, log=spec.log, search=spec.search
        )
        self.elements: list[_Editor] = []
        for i in range(2):
            element: _Editor = _FloatEditor(element_spec, self.on_change_proxy)
            if default[i] is None:
                seed = fallback[i] if isinstance(fallback, (tuple, list)) else None
                element = _AutoEditor(element, spec.derived, seed, self.on_change_proxy)
            self.elements.append(element)
            row.addWidget(element.widget, 1)

    def on_change_proxy(self) -> None:
        self.on_change()

    def get(self) -> tuple:
        return tuple(e.get() for e in self.elements)

    def set(self, value: Any) -> None:
        values = value if isinstance(value, (tuple, list)) and len(value) == 2 else (0.0, 0.0)
        for element, v in zip(self.elements, values):
            element.set(v)

    def focus_widgets(self) -> list[QWidget]:
        return [w for e in self.elements for w in e.focus_widgets()]


def _value_widgets(editor: _Editor, index: int | None = None) -> list[QWidget]:
    """The widgets that show ``editor``'s value (not its "auto" box); ``index``: one pair element."""
    if isinstance(editor, _PairEditor):
        elements = editor.elements if index is None else editor.elements[index:index + 1]
        return [w for element in elements for w in _value_widgets(element)]
    if isinstance(editor, _AutoEditor):
        return _value_widgets(editor.inner)
    return editor.focus_widgets()


def show_refused(widget: QWidget, refused: bool) -> None:
    """Mark an editor that holds a refused value (red text on a reddish field), or unmark it.
    Every panel marks its fields this way, so a refused value looks the same everywhere."""
    # Unmarked, it has no palette of its own: the application's colours (and theme) again.
    widget.setPalette(_refused_palette(widget) if refused else QPalette())


def _refused_palette(widget: QWidget) -> QPalette:
    """``widget``'s palette with red text on a field tinted towards that red."""
    palette = QPalette(widget.palette())
    red = QColor(error_color(palette))
    base = palette.color(QPalette.ColorRole.Base)
    tint = QColor.fromRgbF(*(0.8 * b + 0.2 * r for b, r in zip(base.getRgbF()[:3],
                                                                red.getRgbF()[:3])))
    palette.setColor(QPalette.ColorRole.Text, red)
    palette.setColor(QPalette.ColorRole.Base, tint)
    return palette


def _make_editor(spec: HyperParam, on_change: Callable[[], None], fallback: Any) -> _Editor:
    if spec.kind == "pair":
        editor: _Editor = _PairEditor(spec, on_change, fallback)
        return editor
    makers = {
        "float": _FloatEditor,
        "int": _IntEditor,
        "bool": _BoolEditor,
        "choice": _ChoiceEditor,
        "int_list": _IntListEditor,
    }
    editor = makers[spec.kind](spec, on_change)
    if spec.default is None and spec.kind != "choice":
        editor = _AutoEditor(editor, spec.derived, fallback, on_change)
    return editor


# --------------------------------------------------------------------------------------------


class HyperParamForm(QWidget):
    """Editors for a list of `HyperParam`s; emits ``value_edited(name, value)`` on a real change.

    ``set_params(specs, values)`` rebuilds the editors only when the list of hyperparameters
    changes (another optimizer), otherwise it just shows the new values, without emitting.
    Editors are named ``f"{prefix}{name}"`` (``optParam_lr``) so tests and the main window can
    find them.
    """

    value_edited = Signal(str, object)

    def __init__(self, prefix: str, parent: QWidget | None = None, **qt_properties: Any):
        super().__init__(parent, **qt_properties)
        self._prefix = prefix
        self._specs: tuple[HyperParam, ...] = ()
        self._editors: dict[str, _Editor] = {}
        self._shown: dict[str, Any] = {}
        self._refused: list[QWidget] = []
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setHorizontalSpacing(8)
        self._layout.setVerticalSpacing(4)
        # Long names (initial_accumulator_value) must not squeeze the editors off a 360 px dock.
        self._layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

    # ---------------------------------------------------------------- public

    def set_params(
        self,
        specs: Sequence[HyperParam],
        values: Mapping[str, Any],
        fallbacks: Mapping[str, Any] | None = None,
    ) -> None:
        """Show ``values`` (missing names show their default). Never emits.

        ``fallbacks``: for derived (None-default) parameters, the value to show when the user
        unticks "auto" (e.g. the lab's steps for T_max).
        """
        specs = tuple(specs)
        fallbacks = dict(fallbacks or {})
        self.clear_refused()  # the values shown are the lab's again
        if specs != self._specs:
            self._rebuild(specs, fallbacks)
        else:
            for name, editor in self._editors.items():
                self._set_fallback(editor, fallbacks.get(name))
        for spec in specs:
            value = values.get(spec.name, spec.default)
            self._editors[spec.name].set(value)
            self._shown[spec.name] = self._editors[spec.name].get()

    def specs(self) -> tuple[HyperParam, ...]:
        return self._specs

    def value(self, name: str) -> Any:
        return self._editors[name].get()

    def values(self) -> dict[str, Any]:
        return {name: editor.get() for name, editor in self._editors.items()}

    def focus_chain(self) -> list[QWidget]:
        return [w for editor in self._editors.values() for w in editor.focus_widgets()]

    # ---------------------------------------------------------------- refused values

    def mark_refused(self, field: str) -> None:
        """Mark the editor of ``field`` (``lr``; ``betas[1]`` marks that element) as holding a
        refused value: red text on a reddish field, until `clear_refused` or `set_params`.
        Only one field is marked at a time; a field this form does not show marks nothing."""
        self.clear_refused()
        name, _, rest = field.partition("[")
        editor = self._editors.get(name)
        if editor is None:
            return
        index = int(rest.rstrip("]")) if rest.rstrip("]").isdigit() else None
        for widget in _value_widgets(editor, index):
            show_refused(widget, True)
            self._refused.append(widget)

    def clear_refused(self) -> None:
        for widget in self._refused:
            show_refused(widget, False)
        self._refused.clear()

    # ---------------------------------------------------------------- building

    def _rebuild(self, specs: tuple[HyperParam, ...], fallbacks: Mapping[str, Any]) -> None:
        self.clear_refused()
        # Take rows out and delete them later: this may run inside a signal of one of them.
        while self._layout.rowCount():
            row = self._layout.takeRow(0)
            for item in (row.labelItem, row.fieldItem):
                widget = item.widget() if item is not None else None
                if widget is not None:
                    widget.hide()
                    # Unname it now: until deleted, findChild("optParam_lr") must not find it.
                    for named in [widget, *widget.findChildren(QWidget)]:
                        named.setObjectName("")
                    widget.deleteLater()
        self._editors.clear()
        self._shown.clear()
        self._specs = specs
        for spec in specs:
            editor = _make_editor(spec, self._change_handler(spec.name), fallbacks.get(spec.name))
            tooltip = tooltip_for(spec)
            editor.set_tooltip(tooltip)
            self._name_widgets(spec.name, editor)
            label = QLabel(spec.name)
            label.setToolTip(tooltip)
            label.setBuddy(editor.focus_widgets()[0])
            self._layout.addRow(label, editor.widget)
            self._editors[spec.name] = editor

    def _name_widgets(self, name: str, editor: _Editor) -> None:
        editor.widget.setObjectName(f"{self._prefix}{name}")
        widgets = editor.focus_widgets()
        for i, widget in enumerate(widgets):
            if widget is not editor.widget:
                widget.setObjectName(f"{self._prefix}{name}_{i}")
            widget.setAccessibleName(name if len(widgets) == 1 else f"{name} {i + 1}")
        if isinstance(editor, _AutoEditor):
            editor.auto_box.setObjectName(f"{self._prefix}{name}_auto")
            editor.auto_box.setAccessibleName(f"{name} automatic")
            editor.inner.widget.setObjectName(f"{self._prefix}{name}_value")

    @staticmethod
    def _set_fallback(editor: _Editor, fallback: Any) -> None:
        if isinstance(editor, _AutoEditor):
            editor.fallback = fallback
        elif isinstance(editor, _PairEditor):
            for i, element in enumerate(editor.elements):
                if isinstance(element, _AutoEditor) and isinstance(fallback, (tuple, list)):
                    element.fallback = fallback[i]

    def _change_handler(self, name: str) -> Callable[[], None]:
        def changed() -> None:
            value = self._editors[name].get()
            if same_value(value, self._shown.get(name)):
                return
            self._shown[name] = value
            self.value_edited.emit(name, value)

        return changed
