"""Judging a lesson's claims: run its labs headless, then each claim's check (`check_claims`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.teaching.lessons.claim_kind import Traces
from core.teaching.lessons.lesson import Claim, Lesson
from core.teaching.lessons.registry import CLAIM_KINDS
from core.teaching.lessons.trace import trace_labs


@dataclass(frozen=True)
class ClaimResult:
    """The verdict on one claim, with the numbers that decided it."""

    claim: Claim
    holds: bool
    measured: str  # e.g. "Momentum: step 33; SGD: step 270"
    values: Mapping[str, Any] = field(default_factory=dict)

    def line(self, ok: str = "✓", failed: str = "✗") -> str:
        return f"{ok if self.holds else failed} {self.claim.describe()}  ({self.measured})"



def evaluate_claims(claims: tuple[Claim, ...] | list[Claim], traces: Traces) -> list[ClaimResult]:
    """Judge claims against traces already gathered by `trace_labs`."""
    results = []
    for claim in claims:
        holds, measured, values = CLAIM_KINDS[claim.kind].check(claim.params, traces)
        results.append(ClaimResult(claim, bool(holds), measured, values))
    return results


def check_claims(lesson: Lesson) -> list[ClaimResult]:
    """Run the lesson's labs headless with the real engines and judge each of its claims."""
    return evaluate_claims(lesson.claims, trace_labs(lesson.labs))
