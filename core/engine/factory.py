"""Which race trains a lab: the one place that maps a problem kind to its race class.

``RACES`` is keyed by the problem's ``kind`` (``FunctionProblem.kind``, ``NetworkProblem.kind``
in core/lab/format.py, the ``"kind"`` of a lab file's problem). `make_race` builds the race for a
lab; every caller in core/, cli/, app/ and bench/ goes through it instead of choosing a class.
Adding a problem kind is one new race module plus one entry here.

Every race class takes the lab as its first argument and reads all it needs from it (a network
race reads a relative CSV path from ``lab.base_path``); keyword ``options`` go to the class
unchanged (``internals=True`` is the function race's teaching overlay).

The classes are named by module path and imported on first use, not when this module is: the
network race pulls in the loss-landscape code, which a cold start of the app on a function lab
(bench/startup.py) does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from core.errors import LabError

if TYPE_CHECKING:
    from core.engine.function_race import FunctionRace
    from core.engine.network_race import NetworkRace
    from core.lab.format import Lab

# problem kind -> "module:Class" of its race.
RACES: dict[str, str] = {
    "function": "core.engine.function_race:FunctionRace",
    "network": "core.engine.network_race:NetworkRace",
    "rl": "core.engine.rl_race:RLRace",
}


def race_class(kind: str) -> type:
    """The race class for problem kind ``kind``; a `LabError` on ``problem.kind`` naming the
    known kinds if there is none."""
    target = RACES.get(kind)
    if target is None:
        known = ", ".join(f'"{k}"' for k in RACES)
        raise LabError("problem.kind", f"must be one of {known}, got {kind!r}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def make_race(lab: Lab, **options: Any) -> FunctionRace | NetworkRace:
    """A fresh race of ``lab`` (by ``lab.problem.kind``), built with ``options``."""
    return race_class(lab.problem.kind)(lab, **options)
