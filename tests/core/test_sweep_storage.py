"""Sweeps on a shared database, with real processes: a worker killed with SIGKILL loses no
finished trial and the same command completes the study; two workers on one SQLite study (and
on a throwaway PostgreSQL server, when its binaries are here) split the trials without
duplicates."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import optuna
import pytest

import main as cli
from core.tools.sweep.workers import TICKET_ATTR, WORKER_ATTR

ROOT = Path(__file__).resolve().parents[2]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _write_lab(path: Path, steps: int = 50) -> Path:
    path.write_text(json.dumps({
        "format": "descent-lab/1", "name": "tiny", "seed": 0, "steps": steps,
        "problem": {"kind": "function", "function": "rosenbrock", "start": [-1.5, 2.0]},
        "runs": [{"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.001, "momentum": 0.9}}],
    }))
    return path


def _load(url: str, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=url)


def _snapshot(study: optuna.Study) -> dict[int, tuple]:
    return {t.number: (t.state, t.params, t.value) for t in study.trials}


def _counts(db: Path) -> tuple[int, int]:
    """(COMPLETE, RUNNING) trials, read straight from the file while a worker writes it."""
    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            rows = dict(con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
    except sqlite3.OperationalError:  # tables not made yet
        return 0, 0
    return rows.get("COMPLETE", 0), rows.get("RUNNING", 0)


def test_sigkilled_sweep_resumes_without_losing_a_finished_trial(tmp_path, capsys):
    lab = _write_lab(tmp_path / "tiny.lab.json")
    db = tmp_path / "sweeps.db"
    url = f"sqlite:///{db}"
    total = 12
    argv = ["sweep", str(lab), "--storage", url, "--study", "S", "--total", str(total),
            "--batch", "3", "--out", str(tmp_path / "out")]
    worker = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *argv], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            complete, running = _counts(db)
            if complete >= 3 and running >= 1:
                break
            assert worker.poll() is None, f"the worker ended before the kill: {worker.stderr}"
            assert time.monotonic() < deadline, "the worker never got 3 trials done"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL

    before = _snapshot(_load(url, "S"))
    finished_before = {n: v for n, v in before.items() if v[0] in FINISHED}
    left_running = [n for n, v in before.items() if v[0] == optuna.trial.TrialState.RUNNING]
    assert len(finished_before) >= 3 and left_running, before
    assert len(finished_before) < total

    # The same command again (in this process: same entry point, another pid).
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("study 'S'")

    study = _load(url, "S")
    after = _snapshot(study)
    for number, (state, params, value) in finished_before.items():  # nothing lost or changed
        assert after[number] == (state, params, value)
    for number in left_running:  # the dead worker's trials: failed, saying why
        trial = study.trials[number]
        assert trial.state == optuna.trial.TrialState.FAIL
        assert "died" in trial.user_attrs["message"]
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert sum(s in FINISHED for s in states) == total  # failed ones do not count
    assert [t.number for t in study.trials] == list(range(len(study.trials)))


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    import main, optuna, torch  # the heavy imports, before the barrier
    ready, other = Path(sys.argv[1]), Path(sys.argv[2])
    ready.touch()
    deadline = time.monotonic() + 60
    while not other.exists() and time.monotonic() < deadline:  # start together
        time.sleep(0.01)
    commands = sys.argv[3:]
    for argv in [c.split("|") for c in commands]:
        code = main.main(argv)
        if code:
            sys.exit(code)
""")


def _run_workers(tmp_path: Path, commands: list[list[str]], timeout: float = 90) -> None:
    """Two worker processes started together, each running ``commands`` in turn."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT)))
    marks = [tmp_path / "ready0", tmp_path / "ready1"]
    joined = ["|".join(c) for c in commands]
    procs = [subprocess.Popen([sys.executable, str(script), str(marks[i]), str(marks[1 - i]),
                               *joined], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _worker_pids(trials) -> set[int]:
    return {t.system_attrs[WORKER_ATTR]["pid"] for t in trials}


# --------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster, when its server binaries and psycopg2 are here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _postgres():
    """Yield (URL, None) of a throwaway server on a unix socket, or (None, why not)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        yield None, "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH"
        return
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        yield None, "psycopg2 is not installed"
        return
    as_user: list[str] = []
    # A short path: the unix socket's path must fit in 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
    try:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            import pwd

            runuser = shutil.which("runuser")
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                user = None
            if runuser is None or user is None:
                yield None, "running as root, and no 'postgres' user with runuser"
                return
            os.chown(folder, user.pw_uid, user.pw_gid)
            as_user = [runuser, "-u", "postgres", "--"]
        data, port = folder / "data", _free_port()

        def run(*args):
            return subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=60)

        made = run(initdb, "-D", str(data), "-U", "sweep", "--auth=trust", "--no-sync",
                   "-E", "UTF8", "--no-instructions")
        if made.returncode:
            yield None, f"initdb failed: {made.stderr.strip()[:300]}"
            return
        started = run(pg_ctl, "-D", str(data), "-w", "-t", "20", "-l", str(folder / "log"),
                      "-o", f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off",
                      "start")
        try:
            assert started.returncode == 0, started.stderr + (folder / "log").read_text()
            yield f"postgresql+psycopg2://sweep@/postgres?host={folder}&port={port}", None
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Two worker processes, started together, each running in turn: a grid and a TPE sweep on
    one SQLite file, then (when a server can be started) a TPE sweep on PostgreSQL. One pair
    of processes for all three keeps the start-up cost (torch, Optuna) to two."""
    tmp = tmp_path_factory.mktemp("shared")
    lab = str(_write_lab(tmp / "tiny.lab.json", steps=40))
    sqlite_url = f"sqlite:///{tmp / 'shared.db'}"
    common = ["sweep", lab, "--batch", "2"]
    grid = common + ["--storage", sqlite_url, "--out", str(tmp / "g"), "--study", "grid",
                     "--sampler", "grid", "--no-prune", "--param", "lr=1e-5:1e-3:log:4",
                     "--param", "momentum=0.5,0.9", "--trials", "100"]
    tpe = common + ["--storage", sqlite_url, "--out", str(tmp / "t"), "--study", "tpe",
                    "--sampler", "tpe", "--trials", "4"]
    with _postgres() as (pg_url, why_not):
        commands = [grid, tpe]
        if pg_url is not None:
            commands.append(common + ["--storage", pg_url, "--study", "pg", "--trials", "3",
                                      "--out", str(tmp / "p")])
        _run_workers(tmp, commands)
        yield {"sqlite": sqlite_url, "postgres": pg_url, "why_not": why_not}


def test_two_workers_share_one_sqlite_study_without_duplicates(shared):
    study = _load(shared["sqlite"], "grid")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    points = [(t.params["lr"], t.params["momentum"]) for t in done]
    lrs = [1e-5, 4.641588834e-05, 0.0002154434690, 0.001]
    assert sorted(points) == sorted((lr, m) for lr in lrs for m in (0.5, 0.9))  # each once
    assert len(_worker_pids(done)) == 2, "both workers must have trained grid points"
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.trials)

    study = _load(shared["sqlite"], "tpe")
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(8))  # 4 + 4, distinct
    assert all(t.state in FINISHED for t in study.trials)
    assert len(_worker_pids(study.trials)) == 2


def test_two_workers_share_a_postgresql_study(shared):
    if shared["postgres"] is None:
        pytest.skip(shared["why_not"])
    study = _load(shared["postgres"], "pg")
    trials = study.trials
    assert len(trials) == 6 and all(t.state in FINISHED for t in trials)
    assert len({t.system_attrs[TICKET_ATTR] for t in trials}) == 6  # six rows, each made once
    assert sorted(t.number for t in trials) == list(range(6))
    assert len(_worker_pids(trials)) == 2
    complete = [t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and study.best_value == min(complete)
