"""The one lock around torch's process-global random generator, which every thread shares.

Our code never draws from it (tests/core/test_randomness.py), but someone else's optimizer code
may: AdaHessian and Sophia-H draw Hutchinson's probe vectors with ``torch.randn_like``. A race
swaps its run's own stream in around such a step (`core.engine.training_step.RandomStream`), and
a probe of a class forks the generator around its trial steps (core/optim/probe.py,
core/engine/stacked.py). Each holds `GLOBAL_RNG_LOCK` from the swap to the restore, so two races
in two threads, or a race beside a probe, never draw from each other's stream: the same lab gives
the same numbers alone or beside other work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

# Re-entrant: a probe may run inside a race's step (a class built lazily) on the same thread.
GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def forked_global_rng() -> Iterator[None]:
    """``torch.random.fork_rng`` for the CPU generator, holding `GLOBAL_RNG_LOCK` throughout."""
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        yield
