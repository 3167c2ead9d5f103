"""Warm PyTorch up in the background, so the first Play starts at once.

Building the first torch.optim optimizer of a process imports ``torch._dynamo`` (Optimizer's
constructor is wrapped in ``torch._disable_dynamo``, which imports it on first use): 2-3 s on an
idle machine, more on a busy one. Paid on the first Play, that is seconds of nothing after a
click. Paid here, right after the window first paints, it goes by while the user reads the
window. Python's import lock makes a race started meanwhile wait for this import to finish rather
than run it twice.

A plain daemon thread, not a QThread: it touches no Qt object, emits nothing, and a process that
exits during the import loses nothing.
"""

from __future__ import annotations

import threading

_started = threading.Event()


def _import_heavy_parts() -> None:
    try:
        import torch._dynamo  # noqa: F401 - the import is the work
    except Exception:  # noqa: BLE001 - a failed warm-up only means the first Play pays it
        pass
    # Then the optimizer zoo's list (imports pytorch-optimizer, ~2 s): the picker then opens
    # at once (app/runs/zoo_listing.py). Its own thread, so this one's end still means torch.
    threading.Thread(target=_list_zoo, name="zoo-warmup", daemon=True).start()


def _list_zoo() -> None:
    try:
        from app.runs.zoo_listing import zoo_entries

        zoo_entries()
    except Exception:  # noqa: BLE001 - a failed warm-up only means the picker pays it
        pass


def start_warmup() -> threading.Thread | None:
    """Start the background import once per process; returns the thread (None if started)."""
    if _started.is_set():
        return None
    _started.set()
    thread = threading.Thread(target=_import_heavy_parts, name="torch-warmup", daemon=True)
    thread.start()
    return thread
