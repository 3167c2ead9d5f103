"""Faults of one run's optimizer: its step raised, or took longer than the per-step time limit.

A race is several runs side by side, and one run's optimizer (a user's class, a zoo optimizer)
may be broken: its ``step()`` raises (a bug, a shape it did not expect, ``MemoryError`` or torch's
``OutOfMemoryError``), or it takes far too long. Such a fault stays in its run: the races
(core/engine/function_race.py, core/engine/seed_race.py with the batched twin in
core/engine/stacked.py) catch it around that run's optimizer and schedule step, put the run back
on the state from before the faulty update and freeze it there, exactly as a run that diverged is
frozen (`core.engine.function_race.Divergence`, with ``kind`` "failed" or "too slow" and the
traceback), and the other runs go on. NaN is not a fault of its own: a step that makes the
parameters or the loss NaN/Inf is a divergence, caught by the same checks as ever.

The time limit is measured, not enforced: a Python thread cannot be interrupted in the middle of
a call, so a step that hangs holds its race until it returns; the step's duration is measured
when it does, and a step over the limit stops its run there. What counts is the run's own
optimizer and schedule step (a grouped step of several runs of torch's own classes on the
batched path: each run's share of it). Memory is not sandboxed either: an allocation that fails
raises, and that is a fault like any other.

An optimizer class that raises while it is built (`guarded_build`) faults its run too: a
stand-in holds the run's place (`stand_in_optimizer`, never stepped) and the run fails at its
first update, the start shown like everyone's. A `LabError` is not a fault but the lab's mistake
(a value out of range, code not trusted, a matrix optimizer on a 2-D point) and still refuses
the race.
"""

from __future__ import annotations

import math
import time
import traceback as tb
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import torch

from core.errors import LabError

# Seconds one run's optimizer step may take before its run is stopped (`StepLimit`): far above
# any sane step of the problems a race trains (milliseconds), short enough that a step stuck in a
# loop is reported within a minute instead of silently holding the race.
DEFAULT_STEP_TIME_LIMIT = 30.0

# Where the races read the time from (a module attribute, so a test can drive a clock of its own
# instead of sleeping).
clock = time.perf_counter

# Kinds of stop a fault gives (a divergence is "diverged", core/engine/function_race.py).
FAILED = "failed"
TOO_SLOW = "too slow"

# What allocators say when they run out (CUDA: torch.OutOfMemoryError, "CUDA error: out of
# memory"; CPU: "DefaultCPUAllocator: can't allocate memory", Windows: "not enough memory").
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


def out_of_memory(error: BaseException) -> str | None:
    """The first line of ``error``'s message when it is an out-of-memory error, else None."""
    if not isinstance(error, RuntimeError):  # torch.OutOfMemoryError is a RuntimeError
        return None
    text = str(error).strip()
    if isinstance(error, torch.OutOfMemoryError) or any(s in text.lower() for s in _OUT_OF_MEMORY):
        return (text.splitlines()[0][:200] if text else "") or "the allocator gave up"
    return None


MAX_TRACEBACK_CHARS = 20_000  # a traceback of a deep recursion is cut to its head and tail


@dataclass(frozen=True)
class Fault:
    """What went wrong in one run's step: its kind, one line for people, and the traceback."""

    kind: str  # FAILED or TOO_SLOW
    reason: str
    traceback: str | None = None


def fault_of(error: BaseException) -> Fault:
    """The fault of a step that raised ``error``: "ZeroDivisionError: division by zero" and the
    traceback text (the text only: no frame, and so no tensor of the step, stays alive)."""
    message = str(error).strip().splitlines()
    reason = type(error).__name__ + (f": {message[0][:300]}" if message else "")
    memory = out_of_memory(error)
    if memory is not None:  # the allocator gave up: say so as the race always has
        reason = f"out of memory: {memory}"
    text = "".join(tb.format_exception(type(error), error, error.__traceback__))
    if len(text) > MAX_TRACEBACK_CHARS:
        half = MAX_TRACEBACK_CHARS // 2
        text = f"{text[:half]}\n… ({len(text) - 2 * half} characters left out) …\n{text[-half:]}"
    return Fault(FAILED, reason, text)


T = TypeVar("T")


def guarded_build(build: Callable[[], T], stand_in: Callable[[], T]) -> tuple[T, Fault | None]:
    """``build()`` a run's optimizer(s); when the class raises (anything but a `LabError`),
    ``stand_in()`` instead and the fault, for the run to fail at its first update."""
    try:
        return build(), None
    except LabError:
        raise
    except Exception as error:
        fault = fault_of(error)
        return stand_in(), Fault(fault.kind, f"its optimizer could not be built: {fault.reason}",
                                 fault.traceback)


def stand_in_optimizer(tensors: Iterable[torch.Tensor], params: Mapping) -> torch.optim.Optimizer:
    """What holds the place of a run whose optimizer could not be built: torch's SGD at the
    run's lr (the lr its step 0 shows), never stepped."""
    lr = params.get("lr", 0.0)
    ok = isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr >= 0
    return torch.optim.SGD(list(tensors), lr=float(lr) if ok else 0.0)


class StepLimit:
    """The per-step time limit of a race (module docstring): ``seconds`` > 0, or None for none."""

    def __init__(self, seconds: float | None = DEFAULT_STEP_TIME_LIMIT):
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                    or not math.isfinite(seconds) or seconds <= 0:
                raise LabError("step_time_limit", "must be a number of seconds > 0 (or None: "
                                                  f"no limit), got {seconds!r}")
            seconds = float(seconds)
        self.seconds = seconds

    def check(self, spent: float) -> Fault | None:
        """The fault of a step that took ``spent`` seconds, when that is over the limit."""
        if self.seconds is None or spent <= self.seconds:
            return None
        return Fault(TOO_SLOW, f"step took {spent:.1f} s, over the {self.seconds:g} s limit")
