"""A scorecard's tables while it runs: built from the `StudyDone` events `run_scorecard` sends
(core/tools/scorecard/run.py's ``on_study``), so a window can draw the profiles as studies finish.

`LiveTables` keeps every entry's per-study times on every workload and gives, for the workloads
every entry has begun, the time table (the median over the studies done so far, as run.py takes
it over all of them), with a missed held-out variant voiding its base (`profiles.apply_heldout`),
the ratios, ρ(τ) and the score B, all from core/tools/scorecard/profiles.py. Once every study is
in, its tables equal the ``times`` / ``ratios_steps`` / ``score_steps`` of the result
(tests/app/test_scorecard_window.py checks that). No Qt here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from core.tools.scorecard import profiles
from core.tools.scorecard.run import StudyDone

MEASURES = ("steps", "grad_evals")


class LiveTables:
    """The partial time tables of a scorecard of ``entries`` on the base workloads ``bases``."""

    def __init__(self, entries: list[str], bases: list[str],
                 events: Iterable[StudyDone] = ()):
        self.entries, self.bases = list(entries), list(bases)
        self.cells: dict[tuple[str, str], dict[int, StudyDone]] = {}
        self.variants: dict[str, str] = {}  # base -> its held-out variant's name
        for event in events:
            self.add(event)

    def add(self, event: StudyDone) -> None:
        self.cells.setdefault((event.entry, event.workload), {})[event.study] = event
        if event.base is not None:
            self.variants[event.base] = event.workload

    @property
    def studies_done(self) -> int:
        """Entry studies finished so far (one per entry, workload and study index)."""
        return sum(len(studies) for studies in self.cells.values())

    def _begun(self, workload: str) -> bool:
        return all((e, workload) in self.cells for e in self.entries)

    def _median(self, entry: str, workload: str, measure: str) -> float:
        return statistics.median(getattr(ev, measure)
                                 for ev in self.cells[(entry, workload)].values())

    def raw(self, measure: str = "steps") -> dict[str, dict[str, float]]:
        """Median times on the begun base workloads, before the held-out rule."""
        shown = [w for w in self.bases if self._begun(w)]
        return {e: {w: self._median(e, w, measure) for w in shown} for e in self.entries}

    def times(self, measure: str = "steps") -> dict[str, dict[str, float]]:
        """The time table after the held-out rule (a missed variant voids its base)."""
        raw = self.raw(measure)
        heldout = {e: {base: [self._median(e, variant, measure)]
                       for base, variant in self.variants.items()
                       if self._begun(variant) and base in raw[e]} for e in self.entries}
        return profiles.apply_heldout(raw, heldout)

    def voided(self) -> dict[str, list[str]]:
        """Per entry, the base workloads its missed held-out variant voided."""
        raw, after = self.raw(), self.times()
        return {e: [w for w in raw[e] if math.isfinite(raw[e][w])
                    and not math.isfinite(after[e][w])] for e in self.entries}

    def heldout_times(self) -> dict[str, dict[str, float]]:
        """Per entry, the median time on each held-out variant begun so far."""
        return {e: {v: self._median(e, v, "steps") for v in self.variants.values()
                    if self._begun(v)} for e in self.entries}

    def ratios(self, measure: str = "steps") -> dict[str, dict[str, float]]:
        return profiles.ratios(self.times(measure))

    def scores(self, measure: str = "steps") -> dict[str, float]:
        return profiles.scores(self.times(measure))

    def profile(self, entry: str, measure: str = "steps") -> list[tuple[float, float]]:
        """ρ(τ) of ``entry`` at its jumps in [1, 4] (profiles.profile_steps)."""
        return profiles.profile_steps(self.ratios(measure)[entry])

    def best(self, entry: str, workload: str) -> StudyDone | None:
        """The fastest study (by steps) of ``entry`` on ``workload`` that hit the target: its
        row names the trial and lr, its index the seed (the lab's seed + the index)."""
        hits = [ev for ev in self.cells.get((entry, workload), {}).values()
                if ev.row.get("trial") is not None and math.isfinite(ev.steps)]
        return min(hits, key=lambda ev: (ev.steps, ev.study)) if hits else None

    def reason(self, entry: str, workload: str) -> str | None:
        """Why ``entry`` missed on ``workload``: the first study's reason that has one."""
        for ev in sorted(self.cells.get((entry, workload), {}).values(), key=lambda e: e.study):
            if ev.row.get("reason"):
                return ev.row["reason"]
        return None
