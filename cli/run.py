"""The ``run`` sub-command of ``main.py``: run a lab file headless and write its results.

    python main.py run LAB --out DIR

The race, the files and their format (summary.json, metrics.csv, trajectory.csv or weights/)
live in core/engine/runner.py; this module parses the flags and prints one line per run.
``register(subparsers)`` adds the sub-command; its handler returns an exit code and lets a user's
mistake raise `LabError`, which main.py prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse

from cli.code_consent import add_trust_flag, load_lab_for


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to main.py's sub-command parser."""
    run = subparsers.add_parser("run", help="run a lab file headless and write its results")
    run.add_argument("lab", help="a *.lab.json file")
    add_trust_flag(run)
    run.add_argument("--out", required=True, help="output directory (created if missing)")
    run.add_argument(
        "--step-time-limit", type=float, default=None, metavar="SECONDS",
        help="stop a run whose optimizer step takes longer than this (default 30; 0: no limit)",
    )
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from core.engine.faults import DEFAULT_STEP_TIME_LIMIT
    from core.engine.runner import run_to_dir
    from core.errors import LabError

    limit = args.step_time_limit
    limit = DEFAULT_STEP_TIME_LIMIT if limit is None else (None if limit == 0 else limit)
    lab = load_lab_for(args)
    try:
        summary = run_to_dir(lab, args.out, step_time_limit=limit)
    except LabError as exc:  # about the lab's content (no enabled run): name the file too
        raise exc.from_file(args.lab) from None
    if summary.get("problem") == "rl":  # episodes and returns (core/engine/rl_runner.py)
        for run in summary["runs"]:
            mean = run["mean_return_last_100"]
            state = "ok" if not run["failed"] else run["failure"].splitlines()[0]
            solved = run["solved_at"]
            print(f"{run['label']:<24} mean return of the last 100 episodes "
                  f"{'n/a' if mean is None else f'{mean:.1f}'}  "
                  f"{'never solved' if solved is None else f'solved at episode {solved}'}  "
                  f"{state}")
        print(f"wrote {args.out}/summary.json, metrics.csv, updates.csv")
        return 0
    for run in summary["runs"]:
        state = f"diverged at step {run['diverged_at']}" if run["diverged"] else "ok"
        failure = run.get("failure")
        if failure is not None:  # its optimizer raised or was too slow: the reason, one line
            verb = "failed" if failure["kind"] == "failed" else "stopped"
            state = f"{verb} at step {failure['step']}: {failure['reason']}"
        print(
            f"{run['label']:<24} final loss {run['final_loss']:.6g}  "
            f"best {run['best_loss']:.6g}  {state}"
        )
    files = "metrics.csv, weights/" if lab.is_network else "metrics.csv, trajectory.csv"
    print(f"wrote {args.out}/summary.json, {files}")
    return 0
