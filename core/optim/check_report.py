"""The check's report card: its properties, one result per property, and how the card reads.

core/optim/checkup.py probes an optimizer and fills a `CheckReport`; `CheckReport.card()` is the
text `main.py check-optimizer` prints and `to_json()` what ``--json`` writes; the window's
report dialog (app/runs/check_dialog.py) draws the same results. `Adapters` names what an
optimizer needs beyond ``loss.backward(); step()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not applicable"

# key → the line the card shows.
PROPERTIES: dict[str, str] = {
    "decreases": "decreases a convex quadratic",
    "deterministic": "deterministic for a fixed seed",
    "state_dict": "state_dict save/load mid-run continues identically",
    "grad_none": "leaves a parameter with grad None unchanged",
    "frozen": "leaves a frozen parameter (requires_grad=False) unchanged",
    "param_groups": "works with several param groups",
    "zero_gradient": "no NaN on a zero gradient",
    "adapters": "adapters it needs",
    "step_time": "step time relative to torch.optim.Adam",
}


@dataclass(frozen=True)
class PropertyResult:
    """One line of the card: a property, passed / failed / not applicable, and why."""

    key: str
    status: str
    evidence: str
    value: float | None = None  # the number behind it, where there is one (the time ratio)

    @property
    def title(self) -> str:
        return PROPERTIES[self.key]

    def to_json(self) -> dict:
        out = {"key": self.key, "title": self.title, "status": self.status,
               "evidence": self.evidence}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class Adapters:
    """What an optimizer needs beyond ``loss.backward(); optimizer.step()``."""

    closure: bool = False       # step(closure) re-evaluates the loss (L-BFGS, SAM)
    create_graph: bool = False  # backward(create_graph=True) (AdaHessian, Sophia-H)
    train_eval: bool = False    # optimizer.train() / .eval() (Schedule-Free)
    matrix_only: bool = False   # refuses parameters that are not matrices (Muon)

    def names(self) -> tuple[str, ...]:
        return tuple(name.replace("_", "-") for name in
                     ("closure", "create_graph", "train_eval", "matrix_only")
                     if getattr(self, name))

    def union(self, other: Adapters) -> Adapters:
        return Adapters(*(getattr(self, f) or getattr(other, f) for f in
                          ("closure", "create_graph", "train_eval", "matrix_only")))

    @classmethod
    def of(cls, info) -> Adapters:
        """What an `OptimizerInfo` (core/optim/optimizers.py) declares, which a race applies."""
        return cls(info.needs_closure, info.create_graph, info.train_eval,
                   info.min_param_ndim == 2)


@dataclass(frozen=True)
class CheckReport:
    """The report card of one optimizer: its results in `PROPERTIES` order."""

    name: str
    kwargs: Mapping
    seed: int
    results: tuple[PropertyResult, ...]
    adapters: Adapters | None  # None where no way of stepping it worked
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> tuple[PropertyResult, ...]:
        return tuple(r for r in self.results if r.status == FAILED)

    def result(self, key: str) -> PropertyResult:
        for result in self.results:
            if result.key == key:
                return result
        raise KeyError(key)

    def card(self, ok: str = "✓", failed: str = "✗", skipped: str = "–") -> str:
        marks = {PASSED: ok, FAILED: failed, NOT_APPLICABLE: skipped}
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        built = f"{self.name}({args})" if args else f"{self.name} (its defaults)"
        lines = [f"Check of {built}, seed {self.seed}, {self.seconds:.1f} s"]
        for r in self.results:
            lines.append(f"  {marks[r.status]} {r.title}")
            lines.append(f"      {r.evidence}")
        if self.passed:
            lines.append("Passes every check.")
        else:
            names = ", ".join(r.key for r in self.failures)
            lines.append(f"Fails {len(self.failures)} of {len(self.results)} checks: {names}.")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "optimizer": self.name,
            "kwargs": {k: _plain(v) for k, v in self.kwargs.items()},
            "seed": self.seed,
            "passed": self.passed,
            "failed": [r.key for r in self.failures],
            "adapters": list(self.adapters.names()) if self.adapters else None,
            "seconds": round(self.seconds, 3),
            "results": [r.to_json() for r in self.results],
        }


def _plain(value):
    """A kwargs value as JSON can hold it (a class or a function by its repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)
