"""A kind of claim (`ClaimKind`: its fields, sentence and check) and what every kind shares.

A check takes the claim's fields and the traces by label and returns a `Verdict`: (holds,
measured, values). The families of kinds live in loss_claims.py, path_claims.py,
step_claims.py, network_claims.py and sweep_claims.py; registry.py gathers them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.teaching.lessons.trace import RunTrace

Verdict = tuple[bool, str, dict]
Traces = dict[str, RunTrace]

# Field shorthands for the kinds' tables: a field's name → its type (validate.field_value).
RUN, THAN = {"run": "run"}, {"run": "run", "than": "run"}
FACTOR = {"factor": "factor"}


@dataclass(frozen=True)
class ClaimKind:
    """A kind of claim: its fields (name → type, see validate.field_value), its sentence, its check."""

    name: str
    required: Mapping[str, str]
    optional: Mapping[str, str]
    sentence: Callable[[Mapping[str, Any]], str]
    check: Callable[[Mapping[str, Any], Traces], Verdict]
    needs: str = "any"  # "function" or "network": the runs it names must be of that kind
    help: str = ""

    @property
    def fields(self) -> dict[str, str]:
        return {**self.required, **self.optional}



def expand_runs(patterns: list[str], labels) -> list[str]:
    """The labels a "runs" list names: exact labels, or ``"prefix*"``: every label so starting."""
    chosen: list[str] = []
    for pattern in patterns:
        if pattern.endswith("*"):
            chosen += [label for label in labels if label.startswith(pattern[:-1])]
        else:
            chosen.append(pattern)
    return list(dict.fromkeys(chosen))


def in_bounds(value: float, p: Mapping[str, Any]) -> bool:
    return (p.get("at_least") is None or value >= p["at_least"]) and (
        p.get("at_most") is None or value <= p["at_most"])


def factor(p: Mapping[str, Any]) -> float:
    return p.get("factor", 1.0)
