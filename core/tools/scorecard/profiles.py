"""Performance profiles and the score B from a table of times to target (AlgoPerf's way).

For entry e and workload w with time t[e][w] (steps or gradient evaluations; ``inf`` for a
miss), the ratio to the best is r[e][w] = t[e][w] / min_e' t[e'][w] (``inf`` for a miss, and for
every entry on a workload nobody reached). The profile ρ_e(τ) is the fraction of workloads with
r[e][w] ≤ τ, a step function of τ; the score is B_e = ∫₁⁴ ρ_e(τ) dτ / 3, integrated exactly:
each workload with r ≤ 4 contributes (4 - r) / 3 / |W|, so B = 1 for an entry best everywhere
and B = 0 for one that misses everything.

A held-out variant an entry misses voids its time on the base workload (`apply_heldout`), as
AlgoPerf does, so tuning to the suite's exact problems does not pay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

TAU_MAX = 4.0


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """r[e][w] = t[e][w] / best t[.][w]; ``inf`` for a miss or a workload nobody reached."""
    workloads = _workloads(times)
    best = {}
    for w in workloads:
        finite = [t[w] for t in times.values() if math.isfinite(t[w])]
        best[w] = min(finite) if finite else math.inf
    out: dict[str, dict[str, float]] = {}
    for entry, row in times.items():
        out[entry] = {}
        for w in workloads:
            t = row[w]
            if not math.isfinite(t) or not math.isfinite(best[w]):
                out[entry][w] = math.inf
            elif best[w] <= 0:  # reached at step 0 by the best: only another 0 ties it
                out[entry][w] = 1.0 if t <= 0 else math.inf
            else:
                out[entry][w] = t / best[w]
    return out


def rho(entry_ratios: Mapping[str, float], tau: float) -> float:
    """ρ(τ): the fraction of workloads whose ratio to the best is ≤ τ."""
    if not entry_ratios:
        return 0.0
    return sum(1 for r in entry_ratios.values() if r <= tau) / len(entry_ratios)


def score(entry_ratios: Mapping[str, float], tau_max: float = TAU_MAX) -> float:
    """B = ∫₁^τmax ρ(τ) dτ / (τmax - 1), exactly: ρ is a step function of the ratios."""
    if not entry_ratios:
        return 0.0
    span = tau_max - 1.0
    total = sum(max(0.0, tau_max - max(1.0, r)) for r in entry_ratios.values()
                if math.isfinite(r))
    return total / span / len(entry_ratios)


def profile_steps(entry_ratios: Mapping[str, float],
                  tau_max: float = TAU_MAX) -> list[tuple[float, float]]:
    """The profile as (τ, ρ(τ)) at its jumps in [1, τmax], starting at τ = 1: to plot as steps."""
    points = [(1.0, rho(entry_ratios, 1.0))]
    for r in sorted({r for r in entry_ratios.values() if 1.0 < r <= tau_max}):
        points.append((r, rho(entry_ratios, r)))
    return points


def apply_heldout(times: Mapping[str, Mapping[str, float]],
                  heldout: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, dict[str, float]]:
    """The table with t[e][w] = inf wherever entry e missed a held-out variant of base w.

    ``heldout[e][w]`` lists e's times on w's held-out variants (missing: no variant was run)."""
    out = {e: dict(row) for e, row in times.items()}
    for entry, bases in heldout.items():
        for base, variant_times in bases.items():
            if base in out.get(entry, {}) and any(not math.isfinite(t) for t in variant_times):
                out[entry][base] = math.inf
    return out


def scores(times: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Every entry's B from a time table."""
    return {entry: score(row) for entry, row in ratios(times).items()}


def _workloads(times: Mapping[str, Mapping[str, float]]) -> list[str]:
    rows = list(times.values())
    if not rows:
        return []
    workloads = list(rows[0])
    for row in rows[1:]:
        if set(row) != set(workloads):
            raise ValueError("every entry needs a time on the same workloads")
    return workloads
