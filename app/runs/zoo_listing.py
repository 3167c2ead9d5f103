"""What the optimizer picker (app/runs/optimizer_picker.py) lists beyond torch.optim: the zoo's
names (core/optim/zoo.py), what is known about each one (its `OptimizerInfo`, or why it cannot
race), and which ones failed the check (app/runs/check_dialog.py, or the shipped check of the
zoo at its defaults, resources/zoo_checks.json).

Importing pytorch-optimizer takes about two seconds, so nothing here runs at import: the zoo is
listed when the picker first opens (`zoo_entries`), or before, in the background after the
window's first paint (app/shell/warmup.py). Describing every entry (introspecting and probing
140 classes: seconds of CPU) starts only when a user first opens the picker
(`start_describing`, a daemon thread that touches no Qt object); the picker re-reads `known`
while it is open, so entries that only work on weight matrices grey out as they are found.
Everything goes into the same process-wide tables under one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.errors import LabError

# The picker's group of each zoo package (the names `OptimizerInfo.group` uses).
ZOO_GROUPS = {"pytorch_optimizer": "pytorch-optimizer", "schedulefree": "schedule-free"}

_lock = threading.RLock()
_entries: list[ZooEntry] | None = None
_known: dict[str, object] = {}  # ref -> OptimizerInfo, or the reason (str) it cannot race
# ref -> the failed properties of its check, in words: the picker's warning badge.
_check_failures: dict[str, str | None] = {}
# The shipped check's failures (core/optim/zoo_checks.py), read on first need.
_shipped: dict[str, str] | None = None


@dataclass(frozen=True)
class ZooEntry:
    ref: str  # "pytorch_optimizer:Lion"
    title: str  # "Lion"
    group: str  # "pytorch-optimizer"
    origin: str  # "pytorch-optimizer 4.1.0"


def zoo_entries() -> list[ZooEntry]:
    """Every zoo optimizer, in the zoo's order. Imports the zoo packages on the first call."""
    global _entries
    with _lock:
        if _entries is None:
            from core.optim.zoo import zoo_names, zoo_origin

            origins: dict[str, str] = {}
            entries = []
            for ref in zoo_names():
                package, _, title = ref.partition(":")
                if package not in origins:
                    origins[package] = zoo_origin(package)
                entries.append(ZooEntry(ref, title, ZOO_GROUPS.get(package, package),
                                        origins[package]))
            _entries = entries
        return list(_entries)


def is_listed() -> bool:
    """Whether the zoo has been listed (opening the picker will not wait for the import)."""
    return _entries is not None


def known(ref: str):
    """What is known of ``ref`` without running anything: its `OptimizerInfo`, the reason it
    cannot race (a str), or None when it has not been described yet."""
    return _known.get(ref)


def describe(ref: str):
    """``ref``'s `OptimizerInfo`, or the reason it cannot race: introspects (and probes) it on
    the first call, a fraction of a second."""
    found = _known.get(ref)
    if found is None:
        from core.optim.zoo import zoo_info

        try:
            found = zoo_info(ref)
        except LabError as err:
            found = err.message
        with _lock:
            _known[ref] = found
    return found


_stop = threading.Event()
_describer: threading.Thread | None = None


def describe_all() -> None:
    """Describe every zoo entry (until `stop_describing`)."""
    for entry in zoo_entries():
        if _stop.is_set():
            return
        describe(entry.ref)


def start_describing() -> None:
    """Describe every zoo entry in a background daemon thread (once per process)."""
    global _describer
    with _lock:
        if _describer is None and not _stop.is_set():
            _describer = threading.Thread(target=describe_all, name="zoo-describe", daemon=True)
            _describer.start()


def is_describing() -> bool:
    return _describer is not None and _describer.is_alive()


def stop_describing(timeout: float = 30.0) -> None:
    """Stop the background descriptions after the entry in hand (tests; the end of the app)."""
    _stop.set()
    if _describer is not None:
        _describer.join(timeout)


def mark_check(ref: str, failures: str | None) -> None:
    """Remember ``ref``'s check: ``failures`` in words, or None when it passed (a check made
    here replaces the shipped one, core/optim/zoo_checks.py)."""
    with _lock:
        _check_failures[ref] = failures


def check_failures(ref: str) -> str | None:
    """What ``ref`` failed in its last check here, else in the shipped check of the zoo at its
    defaults (core/optim/zoo_checks.py); None: passed, or never checked."""
    global _shipped
    with _lock:
        if ref in _check_failures:
            return _check_failures[ref]
        if _shipped is None and ":" in ref:
            from core.optim.zoo_checks import shipped_failures

            _shipped = shipped_failures()
        shipped = (_shipped or {}).get(ref)
    return f"{shipped} (the shipped check, at its defaults)" if shipped else None
