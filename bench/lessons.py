"""lessons: the CPU time to check every claim of every built-in lesson, against its budget.

Each lesson's claims are checked as ``main.py lessons check`` and tests/core/test_lessons.py do
(`core.teaching.lessons.check.check_claims`: the lesson's labs raced headless with the real
engines, then each claim judged). The lessons are sized to take well under a minute of CPU all together, so that
the test suite can check every claim; the suite only checks that the claims hold, and this
measures what they cost.

Value: CPU seconds of this process (``time.process_time``, one intra-op thread as in the app,
`core.engine.devices.configure_threads`) for all lessons. Baseline: the 60 s budget; ratio: budget /
spent, so >= 1 means within it. The note names the three costliest lessons; a claim that does
not hold is a WARNING line (the suite fails on it too).
"""

from __future__ import annotations

import time

from bench.common import report
from core.engine.devices import configure_threads
from core.teaching.lessons.check import check_claims
from core.teaching.lessons.loader import lesson_names, load_lesson

CPU_BUDGET_S = 60.0  # every lesson's labs together, one thread


def run() -> dict:
    configure_threads()
    spent: dict[str, float] = {}
    failed: list[str] = []
    for name in lesson_names():
        lesson = load_lesson(name)
        started = time.process_time()
        results = check_claims(lesson)
        spent[name] = time.process_time() - started
        failed += [f"{name}: {result.line()}" for result in results if not result.holds]
    for line in failed:
        print(f"WARNING: a claim does not hold: {line}", flush=True)
    total = sum(spent.values())
    costliest = sorted(spent, key=spent.get, reverse=True)[:3]
    note = f"{len(spent)} lessons; costliest " + ", ".join(
        f"{name} {spent[name]:.1f} s" for name in costliest)
    return report("lessons", total, "s CPU", CPU_BUDGET_S / max(total, 1e-9),
                  f"{CPU_BUDGET_S:.0f} s budget", note=note,
                  per_lesson_s=spent, failed_claims=len(failed))
