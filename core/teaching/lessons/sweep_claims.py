"""The sweep claim: two seeded `core.tools.sweep` (Optuna) studies of a run, one beats the other.

sweep_beats: its check, sentence and `ClaimKind` entry in `SWEEP_KINDS`, the samplers and
objectives its fields allow, and `check_sweep_space`, which refuses at load time a search space
the sweep would refuse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.errors import LabError
from core.teaching.lessons.claim_kind import FACTOR, RUN, ClaimKind, Traces, Verdict, factor
from core.teaching.lessons.trace import RunTrace
from core.teaching.lessons.wording import num, times

SWEEP_SAMPLERS = ("grid", "random", "tpe", "cmaes")
SWEEP_OBJECTIVES = ("final_val_loss", "best_val_loss", "auc")


def _sweep_best(trace: RunTrace, p: Mapping[str, Any], sampler: str, trials: int) -> float:
    """The best value of a seeded, in-memory `core.tools.sweep` study tuning the run ``trace``."""
    from core.tools.sweep.run import sweep
    from core.tools.sweep.spec import SweepSpec

    spec = SweepSpec(lab=trace.lab, run=trace.label, params=tuple(p["params"]), trials=trials,
                     sampler=sampler, objective=p.get("objective", "final_val_loss"),
                     prune=False)
    best = sweep(spec).best_value
    return math.inf if best is None else float(best)


def _check_sweep_beats(p, traces: Traces) -> Verdict:
    run = traces[p["run"]]
    ours = _sweep_best(run, p, p["sampler"], p["trials"])
    theirs = _sweep_best(run, p, p["than_sampler"], p.get("than_trials", p["trials"]))
    measured = (f"best {p.get('objective', 'final_val_loss')}: {p['sampler']} {num(ours)}, "
                f"{p['than_sampler']} {num(theirs)}")
    return ours * factor(p) < theirs, measured, {"best": ours, "other_best": theirs}



def check_sweep_space(params: Mapping[str, Any], where: str, optimizer: str) -> None:
    """Refuse a sweep claim whose search space `core.tools.sweep` would refuse."""
    try:
        from core.tools.sweep.space import build_search_space
    except ImportError as exc:  # Optuna missing: say so now, not in the middle of a check
        raise LabError(f"{where}.kind", f"needs core.tools.sweep and Optuna ({exc})") from None
    try:
        build_search_space(optimizer, tuple(params["params"]))
    except LabError as exc:
        raise LabError(f"{where}.params", exc.message) from None



def _sentence_sweep(p) -> str:
    names = ", ".join(text.split("=")[0] for text in p["params"])
    objective = p.get("objective", "final_val_loss")
    return (f"{p['trials']} {p['sampler']} trials over {names} of {p['run']} find a lower "
            f"{objective} than {p.get('than_trials', p['trials'])} {p['than_sampler']} trials"
            f"{times(p)}")




SWEEP_KINDS: tuple[ClaimKind, ...] = (
    ClaimKind(
        "sweep_beats",
        {**RUN, "params": "params", "trials": "trials", "sampler": "sampler",
         "than_sampler": "sampler"},
        {"than_trials": "trials", "objective": "objective", **FACTOR},
        _sentence_sweep, _check_sweep_beats,
        help="two seeded core.tools.sweep (Optuna) studies over `params` of the run's optimizer: "
        "the best value of the first × `factor` < the best of the second",
    ),
)
