"""Worker liveness: who runs a trial, and failing the trials of workers that died.

Every trial records its worker (`worker_identity`: host, pid and the process's start time).
`fail_dead_workers` marks failed the RUNNING trials of a worker on this host that no longer
exists (killed, even with SIGKILL; a reused pid is told apart by its start time); trials of
workers on other machines are left to Optuna's heartbeat.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from core.tools.sweep.study import ATTR_KEY, StudyRecords

WORKER_ATTR = f"{ATTR_KEY}:worker"  # trial system attribute: the worker running it
TICKET_ATTR = f"{ATTR_KEY}:ticket"  # trial system attribute: finds a trial this worker added


def _host_id() -> str:
    """This machine (and boot): the host name plus the kernel's boot id where there is one, so
    two containers or machines with the same name are told apart."""
    for path in ("/proc/sys/kernel/random/boot_id", "/etc/machine-id"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return f"{socket.gethostname()}/{text}"
    import uuid

    return f"{socket.gethostname()}/{uuid.getnode():012x}"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux /proc), "zombie" for a dead unreaped one, None
    when unknown: a pid reused by a new process is not mistaken for the old worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "(command name)": state is field 3
    if not fields:
        return None
    if fields[0] in ("Z", "X"):
        return "zombie"
    return fields[19] if len(fields) > 19 else None  # field 22: starttime


def worker_identity() -> dict:
    """This process as a sweep worker: host, pid and start time (see `fail_dead_workers`)."""
    pid = os.getpid()
    return {"host": _host_id(), "pid": pid, "start": _process_start(pid)}


def _worker_alive(worker: dict) -> bool | None:
    """Whether a worker of this host still runs; None for one elsewhere (the heartbeat's job)."""
    if worker.get("host") != _host_id() or not isinstance(worker.get("pid"), int):
        return None
    pid = worker["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by another user
    start = _process_start(pid)
    if start == "zombie":
        return False
    recorded = worker.get("start")
    return not (start is not None and recorded is not None and start != recorded)


def fail_dead_workers(study, records: StudyRecords) -> list[int]:
    """Mark failed the RUNNING trials whose worker ran on this host and no longer exists (killed,
    crashed). Returns their numbers. Trials of other hosts are left to the heartbeat."""
    import optuna

    storage = records.storage
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.system_attrs.get(WORKER_ATTR)
        if not isinstance(worker, dict) or _worker_alive(worker) is not False:
            continue
        trial_id = records.trial_id(trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "message",
                                        f"its worker (pid {worker['pid']}) died before it "
                                        "finished")
            if storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL):
                failed.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    return failed
