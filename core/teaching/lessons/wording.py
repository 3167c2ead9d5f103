"""How claims write their numbers, runs and bounds: the words of sentences and measurements."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.teaching.lessons.claim_kind import factor
from core.teaching.lessons.trace import RunTrace


def num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g}"


def when(trace: RunTrace, step: int | None) -> str:
    if step is not None:
        return f"step {step}"
    text = f"never in {trace.steps_total} steps"
    if trace.diverged_at is not None:
        text += f" (diverged at step {trace.diverged_at})"
    return text


def state(trace: RunTrace) -> str:
    if trace.diverged_at is not None:
        return f"diverged at step {trace.diverged_at}"
    if trace.stopped_at is not None:
        return f"stopped early at step {trace.stopped_at}"
    return f"ran {trace.steps_total} steps"


def times(p: Mapping[str, Any]) -> str:
    return f" by a factor of at least {factor(p):g}" if factor(p) != 1.0 else ""


def within_text(p: Mapping[str, Any]) -> str:
    if p.get("within") is None:
        return ""
    return f" within {p['within']} step{'' if p['within'] == 1 else 's'}"


def bounds(p: Mapping[str, Any], unit: str = "") -> str:
    parts = []
    if p.get("at_least") is not None:
        parts.append(f"at least {p['at_least']:g}{unit}")
    if p.get("at_most") is not None:
        parts.append(f"at most {p['at_most']:g}{unit}")
    return " and ".join(parts)


def runs_text(patterns: list[str]) -> str:
    """``["grid*"]`` → ``the runs grid…``; ``["A", "B"]`` → ``A, B``."""
    return ", ".join(f"the runs {p[:-1]}…" if p.endswith("*") else p for p in patterns)


def point_text(point) -> str:
    return f"({point[0]:g}, {point[1]:g})"


def at_text(point) -> str:
    return f"({num(point[0])}, {num(point[1])})"
