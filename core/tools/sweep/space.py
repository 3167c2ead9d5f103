"""The search space of a sweep: what a ``--param`` flag means and which values a sweep visits.

Built from the registries' `HyperParam` specs (core/optim/optimizers.py): with no flags, the run's
``lr`` over its registry ``search`` range (log scale). Each ``--param`` narrows or adds one
parameter (`parse_param`); a bad one is a `LabError` naming ``--param`` and the allowed forms
(`PARAM_FORMS`). `ParamRange` is one searched parameter: its Optuna distribution, its grid points
and the flag that makes it (a study remembers its space in that form).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import LabError
from core.optim.hyperparams import HyperParam, format_number

DEFAULT_GRID_POINTS = 5
MAX_GRID_POINTS = 1000
PARAM_FORMS = (
    "NAME=LOW:HIGH[:log|:linear][:N], NAME=A,B,... or NAME "
    '(e.g. "lr=1e-4:1e-1:log", "momentum=0.5:0.99", "nesterov=true,false")'
)


@dataclass(frozen=True)
class ParamRange:
    """One searched hyperparameter: a range (float/int) or a list of values."""

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    grid_points: int = DEFAULT_GRID_POINTS

    def distribution(self):
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "float":
            return FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return CategoricalDistribution(self.choices)

    def grid_values(self) -> list:
        """The points a grid sweep visits."""
        if self.kind == "categorical":
            return list(self.choices)
        n = self.grid_points
        if self.log:
            values = np.geomspace(self.low, self.high, n)
        else:
            values = np.linspace(self.low, self.high, n)
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        # 10 significant digits: stable across machines and still inside the range.
        rounded = [float(f"{v:.10g}") for v in values]
        return [min(max(v, self.low), self.high) for v in rounded]

    def describe(self) -> str:
        """The flag that makes this range (the study remembers its space in this form)."""
        if self.kind == "categorical":
            return f"{self.name}=" + ",".join(show_choice(c) for c in self.choices)
        scale = "log" if self.log else "linear"
        return (f"{self.name}={format_number(self.low)}:{format_number(self.high)}:{scale}"
                f":{self.grid_points}")


def show_choice(value: Any) -> str:
    """A categorical value as a flag writes it: true/false, a number in `format_number`'s form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def param_error(text: str, why: str) -> LabError:
    return LabError("--param", f"{text!r}: {why}; allowed forms: {PARAM_FORMS}")


def _parse_number(token: str, hp: HyperParam, text: str) -> float | int:
    try:
        number = float(token)
    except ValueError:
        raise param_error(text, f"{token!r} is not a number") from None
    if hp.kind == "int":
        if not number.is_integer():
            raise param_error(text, f"{hp.name} takes whole numbers, got {token!r}")
        number = int(number)
    try:
        return hp.validate(number, f"--param {hp.name}")
    except LabError as exc:
        raise param_error(text, exc.message) from None


def _parse_choice(token: str, hp: HyperParam, text: str) -> Any:
    if hp.kind == "bool":
        lowered = token.strip().lower()
        if lowered not in ("true", "false"):
            raise param_error(text, f"{hp.name} is true or false, got {token!r}")
        return lowered == "true"
    if hp.kind == "choice":
        if token not in hp.choices:
            raise param_error(text, f"{hp.name} must be {hp.describe_range()}, got {token!r}")
        return token
    return _parse_number(token, hp, text)


def parse_param(text: str, hyperparams: Sequence[HyperParam]) -> ParamRange:
    """Read one ``--param`` flag against the optimizer's hyperparameter specs."""
    if not isinstance(text, str) or not text.strip():
        raise param_error(str(text), "empty")
    name, _, spec = text.strip().partition("=")
    name = name.strip()
    by_name = {hp.name: hp for hp in hyperparams}
    hp = by_name.get(name)
    if hp is None:
        searchable = ", ".join(h.name for h in hyperparams if h.kind in ("float", "int", "bool",
                                                                         "choice"))
        raise param_error(text, f"unknown hyperparameter {name!r}; this optimizer has: "
                                 f"{searchable}")
    if hp.kind in ("pair", "int_list"):
        raise param_error(text, f"{name} is a {hp.kind.replace('_', ' ')}; only single numbers, "
                                 "booleans and choices can be searched")
    if not _ and not spec:  # the bare name: the registry's own range
        if hp.kind == "bool":
            return ParamRange(name, "categorical", choices=(False, True))
        if hp.kind == "choice":
            return ParamRange(name, "categorical", choices=tuple(hp.choices))
        if hp.search is None:
            raise param_error(text, f"{name} has no default search range; give one")
        low, high = hp.search
        return _range(name, hp, low, high, hp.log and low > 0, DEFAULT_GRID_POINTS, text)
    spec = spec.strip()
    if not spec:
        raise param_error(text, "nothing after '='")
    if ":" in spec:
        if hp.kind not in ("float", "int"):
            raise param_error(text, f"{name} is {hp.describe_range()}: list its values "
                                     "with commas instead of a range")
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) < 2 or len(parts) > 4:
            raise param_error(text, "a range is LOW:HIGH with an optional scale and point count")
        low = _parse_number(parts[0], hp, text)
        high = _parse_number(parts[1], hp, text)
        log: bool | None = None
        points = DEFAULT_GRID_POINTS
        for extra in parts[2:]:
            if extra in ("log", "linear"):
                log = extra == "log"
            elif extra.isdigit() and 2 <= int(extra) <= MAX_GRID_POINTS:
                points = int(extra)
            else:
                raise param_error(text, f"{extra!r} is neither log, linear nor a grid point "
                                         f"count in [2, {MAX_GRID_POINTS}]")
        if log is None:
            log = hp.log and low > 0
        return _range(name, hp, low, high, log, points, text)
    tokens = [t.strip() for t in spec.split(",")]
    if any(not t for t in tokens):
        raise param_error(text, "an empty value in the list")
    values = tuple(dict.fromkeys(_parse_choice(t, hp, text) for t in tokens))
    if hp.kind in ("float", "int"):
        values = tuple(float(v) if hp.kind == "float" else int(v) for v in values)
    return ParamRange(name, "categorical", choices=values)


def _range(name: str, hp: HyperParam, low, high, log: bool, points: int, text: str) -> ParamRange:
    if not low < high:
        raise param_error(text, f"the range is empty or inverted ({format_number(low)} is not "
                                 f"below {format_number(high)})")
    if log and low <= 0:
        raise param_error(text, "a log scale needs LOW > 0")
    return ParamRange(name, hp.kind, low=low, high=high, log=log, grid_points=points)


def build_search_space(optimizer: str, params: Sequence[str] = ()) -> tuple[ParamRange, ...]:
    """The default space (``lr`` over its registry range) narrowed or extended by ``params``."""
    from core.optim.catalog import get_optimizer_info

    info = get_optimizer_info(optimizer)
    space: dict[str, ParamRange] = {}
    if any(hp.name == "lr" for hp in info.hyperparams):
        space["lr"] = parse_param("lr", info.hyperparams)
    for text in params:
        param = parse_param(text, info.hyperparams)
        space[param.name] = param
    if not space:
        raise LabError("--param", f"{info.title} has no lr; name what to search ({PARAM_FORMS})")
    return tuple(space.values())
