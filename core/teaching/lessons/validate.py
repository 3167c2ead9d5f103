"""Checking the values of a lesson file: texts, numbers, and each claim's typed fields.

`claim_from_dict` turns one entry of "claims" into a `Claim`, or raises `LabError` naming the
field (``claims[2].run``); `field_value` knows the field types the kinds' tables use (run, runs,
number, positive, factor, fraction, step, class, trials, point, axis, params, sampler,
objective).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from core.errors import LabError
from core.lab.checks import check_keys
from core.problems.datasets.spec import MAX_CLASSES
from core.teaching.lessons.claim_kind import expand_runs
from core.teaching.lessons.lesson import Claim
from core.teaching.lessons.registry import CLAIM_KINDS
from core.teaching.lessons.sweep_claims import SWEEP_OBJECTIVES, SWEEP_SAMPLERS, check_sweep_space

MAX_TEXT_CHARS = 4000


def show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def text_field(value: Any, where: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LabError(where, f"must be a non-empty string, got {show(value)}")
    if len(value) > max_chars:
        raise LabError(where, f"at most {max_chars} characters, got {len(value)}")
    return value


def number_field(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LabError(where, f"must be a finite number, got {show(value)}")
    return float(value)


def whole_field(value: Any, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value > high):
        allowed = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise LabError(where, f"must be a whole number {allowed}, got {show(value)}")
    return value


def field_value(kind: str, value: Any, where: str, runs: Mapping[str, bool]) -> Any:
    """Check one claim field of type ``kind``; ``runs`` maps every run label to is_network."""
    if kind == "run":
        if not isinstance(value, str):
            raise LabError(where, f"must be a run label, got {show(value)}")
        if value not in runs:
            labels = ", ".join(repr(label) for label in runs)
            raise LabError(where, f"no run labelled {value!r} in the lesson's labs; runs: {labels}")
        return value
    if kind == "runs":
        if not isinstance(value, list) or not value:
            raise LabError(where, f"must be a non-empty list of run labels, got {show(value)}")
        for i, item in enumerate(value):
            if isinstance(item, str) and item.endswith("*"):
                if not expand_runs([item], runs):
                    raise LabError(f"{where}[{i}]", f"no run label starts with {item[:-1]!r}")
            else:
                field_value("run", item, f"{where}[{i}]", runs)
        return list(value)
    if kind == "number":
        return number_field(value, where)
    if kind in ("positive", "factor", "fraction"):
        number = number_field(value, where)
        if kind == "positive" and number <= 0:
            raise LabError(where, f"must be > 0, got {number:g}")
        if kind == "factor" and number < 1:
            raise LabError(where, f"must be >= 1, got {number:g}")
        if kind == "fraction" and not 0 <= number <= 1:
            raise LabError(where, f"must be in [0, 1], got {number:g}")
        return number
    if kind == "step":
        return whole_field(value, where, 0)
    if kind == "class":
        return whole_field(value, where, 0, MAX_CLASSES - 1)
    if kind == "trials":
        return whole_field(value, where, 1, 200)
    if kind == "point":
        if not isinstance(value, list) or len(value) != 2:
            raise LabError(where, f"must be a list [x, y], got {show(value)}")
        return [number_field(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "axis":
        if value not in ("x", "y"):
            raise LabError(where, f'must be "x" or "y", got {show(value)}')
        return value
    if kind == "params":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LabError(where, 'must be a list of sweep parameters like "lr=1e-3:1e-1:log", '
                           f"got {show(value)}")
        return list(value)
    if kind in ("sampler", "objective"):
        allowed = SWEEP_SAMPLERS if kind == "sampler" else SWEEP_OBJECTIVES
        if value not in allowed:
            raise LabError(where, f"must be one of {', '.join(allowed)}, got {show(value)}")
        return value
    raise AssertionError(f"unknown claim field type {kind!r}")


def claim_from_dict(data: Any, index: int, runs: Mapping[str, bool],
                     optimizers: Mapping[str, str]) -> Claim:
    """Check one entry of "claims"; ``runs``: label → is_network, ``optimizers``: label → name."""
    where = f"claims[{index}]"
    if not isinstance(data, dict):
        raise LabError(where, f"must be a JSON object, got {show(data)}")
    kind_name = data.get("kind")
    if kind_name not in CLAIM_KINDS:
        raise LabError(f"{where}.kind",
                       f"unknown claim kind {show(kind_name)}; kinds: {', '.join(CLAIM_KINDS)}")
    kind = CLAIM_KINDS[kind_name]
    check_keys(data, {"kind", *kind.fields}, {"kind", *kind.required}, where)
    params = {key: field_value(kind.fields[key], value, f"{where}.{key}", runs)
              for key, value in data.items() if key != "kind"}
    if kind.needs != "any":
        for key, value in params.items():
            if kind.fields[key] not in ("run", "runs"):
                continue
            for label in expand_runs(value, runs) if isinstance(value, list) else [value]:
                if runs[label] != (kind.needs == "network"):
                    raise LabError(f"{where}.{key}", f"{kind_name} needs a run of a {kind.needs} "
                                   f"lab; {label!r} is not")
    if params.get("after", -1) >= params.get("within", math.inf):
        raise LabError(f"{where}.after", f"must be < within ({params['within']})")
    if "low" in params and params["low"] > params["high"]:
        raise LabError(f"{where}.low", f"must be <= high ({params['high']:g})")
    if {"at_least", "at_most"} <= set(kind.optional) and not {"at_least", "at_most"} & set(params):
        raise LabError(f"{where}.at_least", "give at_least, at_most or both")
    for key in ("than", "sooner_than"):
        if kind.fields.get(key) == "run" and params.get(key) == params.get("run"):
            raise LabError(f"{where}.{key}", "compares a run with itself")
    if kind_name == "sweep_beats":
        check_sweep_space(params, where, optimizers[params["run"]])
    return Claim(kind_name, params, index)
