"""fuzz: 10,000 generated lab files and 10,000 expressions — 0 crashes, 0 evaluations of user text.

Runs the same hypothesis strategies as the regular suite (tests/core/test_lab_fuzz.py and
tests/core/test_expression.py use fewer examples) with 10,000 examples each, while
``builtins.eval``, ``exec`` and ``compile`` are replaced by tripwires: the parser must never reach
them. A crash is any exception other than `LabError`. Value: cases per second; ratio: the share of
cases that ended cleanly (a Lab, or a LabError) — 1.0 is the goal.

The note adds how long a model of 10⁹ parameters takes to be refused (``validate_model``, best of
5): tests/core/test_models.py checks that nothing is built for it, this that it is instant.
"""

from __future__ import annotations

import builtins
import math
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.common import report
from core.errors import LabError
from core.lab.format import lab_from_dict
from core.problems.functions import get_function
from core.problems.model_spec import validate_model

EXAMPLES = 10_000
EXPRESSION_ALPHABET = "xy0123456789.+-*/^() ,eEpisncoqrtlgbdhmaw_[]{}'\"=;:@!#$%&|~<>?`\\"


class _Tripwire(Exception):
    pass


_CURRENT_TEXTS: list[str] = []  # the user strings of the case being checked


def _guarded(original):
    """eval/exec/compile that refuse source containing the case's user text.

    Python itself execs generated text (dataclasses build ``__init__`` that way), so the
    tripwire fires only when the source contains a string the fuzzer made up.
    """

    def guard(source, *args, **kwargs):
        if isinstance(source, str) and any(t in source for t in _CURRENT_TEXTS):
            raise _Tripwire("user text reached eval/exec/compile")
        return original(source, *args, **kwargs)

    return guard


def _strings(value) -> list[str]:
    """Every string value of 3+ characters inside a JSON-like value (keys are our schema's
    words — "kind", "name" — which Python's own generated code also contains)."""
    if isinstance(value, str):
        return [value] if len(value.strip()) >= 3 else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _huge_model_refusal_ms() -> float:
    """Milliseconds to refuse 61 layers of 4,096 units (10⁹ parameters), best of 5; inf when it
    was not refused."""
    spec = {"layers": [{"linear": 4096}] * 61 + [{"linear": 2}]}
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        try:
            validate_model(spec, (2,), 2)
        except LabError:
            best = min(best, time.perf_counter() - started)
        else:
            return math.inf
    return best * 1000


def run() -> dict:
    from tests.core.test_lab_fuzz import labs

    counts = {"cases": 0, "crashes": 0, "evals": 0}
    first_crash: list[str] = []

    saved = builtins.eval, builtins.exec, builtins.compile
    guarded = tuple(_guarded(f) for f in saved)

    def check(call, data):
        counts["cases"] += 1
        _CURRENT_TEXTS[:] = _strings(data)
        # Guard only our own code, not hypothesis (whose internals do use eval).
        builtins.eval, builtins.exec, builtins.compile = guarded
        try:
            call()
        except LabError:
            pass
        except _Tripwire:
            counts["evals"] += 1
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            counts["crashes"] += 1
            if not first_crash:
                first_crash.append(f"{type(exc).__name__}: {exc}")
        finally:
            builtins.eval, builtins.exec, builtins.compile = saved

    common = dict(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))

    @settings(**common)
    @given(labs)
    def fuzz_labs(data):
        check(lambda: lab_from_dict(data), data)

    @settings(**common)
    @given(st.text(alphabet=EXPRESSION_ALPHABET, max_size=120))
    def fuzz_expressions(text):
        check(lambda: get_function({"expression": text}), text)

    started = time.perf_counter()
    fuzz_labs()
    fuzz_expressions()
    elapsed = time.perf_counter() - started
    clean = (counts["cases"] - counts["crashes"] - counts["evals"]) / max(counts["cases"], 1)
    note = f"{counts['cases']} cases, {counts['crashes']} crashes, {counts['evals']} evals"
    if first_crash:
        note += f"; first crash: {first_crash[0][:120]}"
    refusal_ms = _huge_model_refusal_ms()
    note += (f"; a 10⁹-parameter model refused in {refusal_ms:.2f} ms" if refusal_ms < math.inf
             else "; WARNING: a 10⁹-parameter model was NOT refused")
    return report("fuzz", counts["cases"] / elapsed, "cases/s", clean, "all cases clean",
                  note=note, **counts, seconds=elapsed,
                  huge_model_refusal_ms=refusal_ms if refusal_ms < math.inf else None)
