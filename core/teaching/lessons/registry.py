"""`CLAIM_KINDS`: every kind of claim by name, gathered from the families' modules.

The order is the one error messages and docs/lessons.md list the kinds in.
"""

from __future__ import annotations

from core.teaching.lessons.claim_kind import ClaimKind
from core.teaching.lessons.class_claims import CLASS_KINDS
from core.teaching.lessons.loss_claims import LOSS_KINDS
from core.teaching.lessons.network_claims import NETWORK_KINDS
from core.teaching.lessons.path_claims import PATH_KINDS
from core.teaching.lessons.rl_claims import RL_KINDS
from core.teaching.lessons.step_claims import STEP_KINDS
from core.teaching.lessons.sweep_claims import SWEEP_KINDS

CLAIM_KINDS: dict[str, ClaimKind] = {
    kind.name: kind
    for kind in (*LOSS_KINDS, *PATH_KINDS, *STEP_KINDS, *NETWORK_KINDS, *CLASS_KINDS,
                 *SWEEP_KINDS, *RL_KINDS)
}
