"""Which torch device a lab runs on: ``auto`` / ``cpu`` / ``cuda``, with a visible notice on fallback.

CUDA asked for but absent (or broken) falls back to the CPU and says so; the notice travels with
the race to the status bar and to summary.json. On a machine with CUDA the same code uses it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.errors import LabError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(
    requested: str,
    cuda_available: Callable[[], bool] | None = None,
    field: str = "problem.device",
) -> tuple[torch.device, list[str]]:
    """The device to use for ``requested`` and the notices to show the user."""
    if requested not in DEVICES:
        raise LabError(field, f"must be one of {', '.join(DEVICES)}, got {requested!r}")
    available = cuda_available if cuda_available is not None else torch.cuda.is_available
    if requested == "cpu":
        return torch.device("cpu"), []
    try:
        has_cuda = bool(available())
    except Exception as exc:  # noqa: BLE001 - a broken driver must not take the app down
        has_cuda = False
        reason = f"CUDA failed to initialise ({exc})"
    else:
        reason = "CUDA is not available on this machine"
    if has_cuda:
        return torch.device("cuda"), []
    if requested == "cuda":
        return torch.device("cpu"), [f"{reason}; running on the CPU instead."]
    return torch.device("cpu"), []


def configure_threads() -> int:
    """Use one intra-op thread (or ``DESCENT_LAB_THREADS``) in the calling thread.

    The networks here are tiny: with several threads, OpenMP workers spin and fight the GUI and
    each other for two cores, and a 2-16-16-2 MLP step measured 30-100x slower under load.
    ``torch.set_num_threads`` is per thread, so the worker calls this at its top too.
    """
    import os

    try:
        count = max(1, int(os.environ.get("DESCENT_LAB_THREADS", "1")))
    except ValueError:
        count = 1
    torch.set_num_threads(count)
    return count
