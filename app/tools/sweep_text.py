"""What the sweep and fair-race windows say: sampler names and tips, and the one-line progress
of a sweep (`core.tools.sweep.spec.SweepProgress`) with its clock times."""

from __future__ import annotations

import math

from core.tools.sweep.spec import SweepProgress

SAMPLER_TITLES = {"grid": "Grid", "random": "Random", "tpe": "TPE (Bayesian)",
                  "cmaes": "CMA-ES"}
SAMPLER_TIPS = {
    "grid": "Every combination of the ticked values (ranges get N points each)",
    "random": "Independent random draws from the ranges",
    "tpe": "Bayesian: proposes where good trials cluster (Optuna's TPE, seeded)",
    "cmaes": "Evolution strategy for continuous ranges (no lists of values)",
}


def clock(seconds: float | None) -> str:
    """``1:05`` for 65 seconds; ``—`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_text(p: SweepProgress) -> str:
    """One line: trials done / running / pruned / failed, time, estimate, best."""
    parts = [f"{p.done} / {p.trials_planned} trials", f"{p.running} running",
             f"{p.pruned} pruned"]
    if p.failed:
        parts.append(f"{p.failed} failed")
    parts.append(f"{clock(p.elapsed_s)} elapsed")
    if not p.final:
        parts.append(f"~{clock(p.eta_s)} left")
    if p.best_value is not None:
        parts.append(f"best {p.best_value:.4g} (trial {p.best_trial})")
    if p.final:
        parts.append("cancelled — finished trials kept" if p.cancelled else "done")
    return " · ".join(parts)
