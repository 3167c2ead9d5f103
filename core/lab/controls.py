"""Per-run training controls of network labs, described once as `HyperParam`s; the one a 2-D
function lab's run has too (`FUNCTION_CONTROLS`: clip_norm, as in the lesson cliff).

The lab file checks them with these specs, the runs panel builds its editors from them, and a
sweep can search them. Each maps to a `RunSpec` field: ``early_stopping_patience`` is the
``patience`` of ``RunSpec.early_stopping`` (the lab file's ``{"patience": p, "min_delta": d}``).
"""

from __future__ import annotations

from dataclasses import replace

from core.optim.hyperparams import HyperParam

TRAINING_CONTROLS: tuple[HyperParam, ...] = (
    HyperParam(
        "l1", 0.0, "float", low=0.0, high=1000.0, log=True, search=(1e-6, 1e-1),
        tooltip="L1 penalty λ·Σ|w| on the weights: pushes small weights to exactly zero",
    ),
    HyperParam(
        "l2", 0.0, "float", low=0.0, high=1000.0, log=True, search=(1e-6, 1e-1),
        tooltip="L2 penalty λ·Σw² on the weights (added to the loss, so it couples with "
        "adaptive optimizers, unlike AdamW's decoupled weight decay)",
    ),
    HyperParam(
        "clip_norm", None, "float", low=0.0, high=1e6, low_inclusive=False, log=True,
        derived="no clipping",
        tooltip="Rescale the whole gradient when its norm exceeds this value",
    ),
    HyperParam(
        "clip_value", None, "float", low=0.0, high=1e6, low_inclusive=False, log=True,
        derived="no clipping",
        tooltip="Clamp every gradient entry to [−value, value]",
    ),
    HyperParam(
        "early_stopping_patience", None, "int", low=0, high=1_000_000,
        derived="no early stopping",
        tooltip="Stop this run after this many evaluations without a better validation loss",
    ),
)

# A function lab's run takes clip_norm alone (core/lab/format.py refuses the others there): the
# same spec, its tooltip in the words of a 2-D race, where "auto" (None) means no clipping.
FUNCTION_CONTROLS: tuple[HyperParam, ...] = tuple(
    replace(spec, tooltip="Clip the gradient's norm to this value before the step; "
            "auto (empty) = no clipping")
    for spec in TRAINING_CONTROLS if spec.name == "clip_norm"
)
