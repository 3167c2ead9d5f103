"""The ``sweep`` sub-command of ``main.py``, with its ``--fair`` race (argparse only, no Qt).

``register(subparsers)`` adds it; each handler returns an exit code and lets a user's mistake
raise `LabError`, which main.py prints as one line with exit code 2. Output files are written
atomically (temp file + rename): a crash or Ctrl+C never leaves half a CSV.

    python main.py sweep LAB [--trials N | --total N] [--sampler grid|random|tpe|cmaes]
                             [--objective ...] [--seeds S] [--no-prune] [--storage URL]
                             [--study NAME] [--param SPEC ...] [--out DIR]
    python main.py sweep LAB --fair --optimizers sgd,adam,rmsprop [--trials-per-optimizer N]
                             [--seeds S] [--out DIR] [same sampler/objective/storage flags]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import threading
import time
from pathlib import Path

from cli.code_consent import add_trust_flag, load_lab_for, optimizer_names
from cli.output_dirs import default_out

WRITE_EVERY_S = 2.0  # rewrite trials.csv/best.json during a long sweep at most this often

SWEEP_EPILOG = """\
search space (--param, repeatable; with none, the run's lr over its registry range, log scale):
  NAME=LOW:HIGH              a range (log scale when the registry says so, as for lr)
  NAME=LOW:HIGH:log|linear   a range on an explicit scale
  NAME=LOW:HIGH[:scale]:N    N grid points for --sampler grid (default 5)
  NAME=A,B,...               a list of values: numbers, true/false, or choice names
  NAME                       the parameter over its registry range (bools: true,false)
  e.g. --param lr=1e-4:1e-1:log --param momentum=0.5:0.99 --param nesterov=true,false

objectives (minimised; a function lab's loss stands in for the validation loss):
  final_val_loss   validation loss at the last step
  best_val_loss    lowest validation loss over the evaluations
  auc              area under the training-loss curve divided by the steps (mean loss)
  steps_to_target  first step whose validation loss <= --target (never: steps + 1)

storage: by default a SQLite file next to the lab (<lab>.sweeps.db): running the same command
again resumes the study and adds --trials new trials; with --total N it runs until the study
holds N finished trials, so re-running a killed sweep completes it. --storage memory keeps
nothing; any database URL Optuna accepts (sqlite:///f.db, postgresql+psycopg2://user@host/db,
...) lets several workers on different machines share one study (same --study name): they
split the trials (grid points are claimed, each run once). Trials of a killed worker are marked
failed (same machine: at once; another machine: after a missed heartbeat) and never count as
finished. An unreachable server fails within a few seconds.

fair race (--fair): tunes each of --optimizers with the same budget (--trials-per-optimizer
finished trials each), the same --seeds, sampler seed and objective (each optimizer starts from
the lab's run that uses it, or its registry defaults), then races the tuned runs: writes
DIR/tuned.lab.json (a runnable lab, network labs with problem.seeds = S for mean +- std),
DIR/race/ (main.py run's files for it) and DIR/fair_race.json (per optimizer: trials, best
tuning value and parameters, the race's final losses), and prints the ranking.
  e.g. main.py sweep banana.lab.json --fair --optimizers sgd,adam,rmsprop \
           --trials-per-optimizer 20 --seeds 3 --out banana-fair

writes DIR/trials.csv (every trial of the study) and DIR/best.json (best value, parameters and
the tuned run, ready to paste into the lab), and prints one line per finished trial. When the
best trial lies in the outer 5 % of a range (log ranges on the log scale), it ends with a line
"warning: best lr 0.98 lies at the upper edge of [0.0001, 1] (log scale): widen the search
space" (also in best.json, "boundary_warnings").
exit code 2 with one line naming the flag for a mistake (a bad range, an unknown parameter, a
study made with another lab or search space, a storage that cannot be opened); nothing in the
study is changed then.
"""



def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to main.py's sub-command parser."""
    from core.tools.sweep.objective import OBJECTIVES
    from core.tools.sweep.spec import DEFAULT_BATCH, MAX_BATCH, SAMPLERS

    sweep = subparsers.add_parser(
        "sweep",
        help="tune a run's hyperparameters with Optuna (grid, random, TPE or CMA-ES)",
        description="Tune one run of a lab: Optuna proposes hyperparameters, the engine trains "
        "them (several trials side by side) and the objective, averaged over --seeds, "
        "goes back to Optuna.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("lab", help="a *.lab.json file")
    add_trust_flag(sweep)
    sweep.add_argument("--run", metavar="LABEL",
                       help="label of the run to tune (default: the first enabled run)")
    count = sweep.add_mutually_exclusive_group()
    count.add_argument("--trials", type=int, default=20, metavar="N",
                       help="new trials to run now; a resumed study keeps its old ones "
                       "(default 20; a grid stops when every point is done)")
    count.add_argument("--total", type=int, metavar="N",
                       help="instead of --trials: run until the study holds N finished "
                       "(complete or pruned) trials, counting earlier runs and other workers; "
                       "the same command after a crash completes the study")
    sweep.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                       help="grid: every combination; random; tpe: Bayesian (default); "
                       "cmaes: CMA-ES, ranges only (no lists)")
    sweep.add_argument("--objective", choices=tuple(OBJECTIVES), default="final_val_loss",
                       help="what to minimise (default final_val_loss; see below)")
    sweep.add_argument("--target", type=float, metavar="LOSS",
                       help="the loss to reach, for --objective steps_to_target")
    sweep.add_argument("--seeds", type=int, default=1, metavar="S",
                       help="average each trial over S seeds (lab seed, seed+1, ...; network "
                       "labs only, default 1)")
    sweep.add_argument("--no-prune", dest="prune", action="store_false",
                       help="turn off median pruning (on by default: a trial worse than the "
                       "median of finished trials at the same step is stopped)")
    sweep.add_argument("--storage", metavar="URL",
                       help="where the study lives: 'memory', a SQLite file path, or any "
                       "Optuna database URL (default: <lab>.sweeps.db next to the lab)")
    sweep.add_argument("--study", metavar="NAME",
                       help="study name inside the storage (default: '<lab name>:<run>:"
                       "<objective>'); the same name resumes it")
    sweep.add_argument("--param", action="append", default=[], metavar="SPEC",
                       help="search this hyperparameter (repeatable; forms below)")
    sweep.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="K",
                       help=f"trials trained side by side in one race (1..{MAX_BATCH}, "
                       f"default {DEFAULT_BATCH}); larger is faster, smaller lets TPE learn "
                       "between batches")
    sweep.add_argument("--sampler-seed", type=int, metavar="SEED",
                       help="seed of the sampler (default: the lab's seed; same seed, same "
                       "trials)")
    sweep.add_argument("--out", metavar="DIR",
                       help="output directory (default: <lab>-sweep/ next to the lab, "
                       "<lab>-fair/ for --fair)")
    fair = sweep.add_argument_group("fair race")
    fair.add_argument("--fair", action="store_true",
                      help="tune every optimizer of --optimizers with the same budget and "
                      "seeds, then race the tuned runs (see below)")
    fair.add_argument("--optimizers", metavar="A,B,...",
                      help="optimizers of the fair race, registry names separated by commas "
                      "(e.g. sgd,adam,rmsprop)")
    fair.add_argument("--trials-per-optimizer", type=int, metavar="N",
                      help="finished trials each optimizer gets (default: --trials)")
    sweep.set_defaults(handler=cmd_sweep)


# --------------------------------------------------------------------------------------------
# sweep


def _format_params(params: dict) -> str:
    from core.tools.sweep.space import show_choice

    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={show_choice(v)}"
        for k, v in params.items()
    )


def trial_line(result) -> str:
    """One printed line per finished trial."""
    head = f"trial {result.number:>4}  {result.state:<9}"
    if result.state == "complete":
        head += f" value {result.value:.6g}"
    elif result.state == "pruned":
        shown = f" (last {result.value:.4g})" if result.value is not None else ""
        head += f" at step {result.pruned_at}{shown}"
    line = f"{head}  {_format_params(result.params)}  ({result.duration_s:.1f} s)"
    if result.message and result.state != "complete":
        line += f"  {result.message}"
    return line


def write_sweep_files(sweep, out: Path, progress=None) -> None:
    """DIR/trials.csv (every trial of the study) and DIR/best.json, each atomically."""
    from core.lab.format import Lab, lab_to_dict, write_atomic
    from core.tools.sweep.run import best_run, trial_rows

    header, rows = trial_rows(sweep.study, [p.name for p in sweep.space])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(out / "trials.csv", buffer.getvalue())

    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    best = sweep.best()
    spec = sweep.spec
    best_json: dict = {
        "study": sweep.name,
        "storage": sweep.storage,
        "run": sweep.base.label,
        "optimizer": sweep.base.optimizer,
        "objective": spec.objective,
        "target": spec.target,
        "sampler": spec.sampler,
        "seeds": sweep.seeds,
        "steps": spec.lab.steps,
        "pruning": spec.prune,
        "search_space": [p.describe() for p in sweep.space],
        "trials": {"total": len(rows), **counts},
        "best": None,
        "best_run": None,
    }
    if best is not None:
        number, value, params = best
        best_json["best"] = {"trial": number, "value": value, "params": params}
        run = best_run(spec, params)
        best_json["best_run"] = lab_to_dict(Lab(runs=(run,)))["runs"][0]
    best_json["boundary_warnings"] = [w.as_dict() for w in sweep_warnings(sweep)]
    if progress is not None:
        best_json["this_call"] = {
            "complete": progress.complete, "pruned": progress.pruned, "failed": progress.failed,
            "elapsed_s": round(progress.elapsed_s, 3), "cancelled": progress.cancelled,
            "steps_run": progress.steps_run, "steps_saved_by_pruning": progress.steps_saved,
        }
    write_atomic(out / "best.json", json.dumps(best_json, indent=2) + "\n")


def sweep_warnings(sweep) -> list:
    """The best trial's values at an edge of the search space (core/tools/sweep/playbook.py)."""
    from core.tools.sweep.playbook import boundary_warnings

    return boundary_warnings(sweep.study.get_trials(deepcopy=False))


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.errors import LabError
    from core.tools.sweep.run import Sweep
    from core.tools.sweep.spec import SweepSpec
    from core.tools.sweep.storage import default_storage

    if getattr(args, "fair", False):
        return cmd_fair_race(args)
    for flag, value in (("--optimizers", getattr(args, "optimizers", None)),
                        ("--trials-per-optimizer", getattr(args, "trials_per_optimizer", None))):
        if value is not None:
            raise LabError(flag, "only with --fair (a fair race of several optimizers)")
    lab = load_lab_for(args)
    storage = args.storage if args.storage is not None else default_storage(args.lab)
    spec = SweepSpec(
        lab=lab, run=args.run, params=tuple(args.param), trials=args.trials,
        sampler=args.sampler, objective=args.objective, target=args.target, seeds=args.seeds,
        prune=args.prune, storage=storage, study=args.study, batch=args.batch,
        sampler_seed=args.sampler_seed, total=getattr(args, "total", None),
    )
    sweep = Sweep(spec)  # every check happens here, before anything is written
    out = Path(args.out) if args.out else default_out(args.lab, "sweep")
    out.mkdir(parents=True, exist_ok=True)
    print(f"study {sweep.name!r} in {sweep.storage}: {len(sweep.study.trials)} trials so far; "
          f"searching {', '.join(p.describe() for p in sweep.space)}", flush=True)
    stop = threading.Event()
    last, written_at = None, time.perf_counter()
    try:
        for progress in sweep.run(stop):
            last = progress
            for result in progress.finished:
                print(trial_line(result), flush=True)
            if progress.finished and time.perf_counter() - written_at > WRITE_EVERY_S:
                write_sweep_files(sweep, out, progress)
                written_at = time.perf_counter()
    finally:
        # Also on Ctrl+C: the finished trials are in the study, so the files say so too.
        write_sweep_files(sweep, out, last)
    best = sweep.best()
    if best is None:
        print("no trial completed", flush=True)
    else:
        number, value, params = best
        print(f"best: trial {number} value {value:.6g}  {_format_params(params)}")
    print(f"{last.complete} complete, {last.pruned} pruned, {last.failed} failed in "
          f"{last.elapsed_s:.1f} s; wrote {out}/trials.csv, {out}/best.json")
    for warning in sweep_warnings(sweep):  # last, where a reader's eye ends up
        print(f"warning: {warning.message}", flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# fair race


def parse_optimizers(text: str | None) -> list[str]:
    """``--optimizers sgd,adam,pytorch_optimizer:Lion`` -> the names as given (resolved by
    `cli.code_consent.optimizer_names`, checked by `fair_race`)."""
    from core.errors import LabError

    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    if len(names) < 2:
        raise LabError("--optimizers", "give at least two optimizers separated by commas, "
                                       f"e.g. sgd,adam,rmsprop (got {text!r})")
    return names


def cmd_fair_race(args: argparse.Namespace) -> int:
    """``sweep --fair``: tune each optimizer alike, race the tuned runs, write the lab and a
    summary (`fair_race` does the tuning; `core.engine.runner` races, as ``main.py run``)."""
    from core.engine.runner import run_to_dir
    from core.errors import LabError
    from core.lab.code import written_name
    from core.lab.format import save_lab, write_atomic
    from core.tools.sweep.fair_race import fair_race
    from core.tools.sweep.storage import default_storage, shown_url, storage_url

    for flag, given in (("--run", args.run is not None), ("--study", args.study is not None),
                        ("--total", getattr(args, "total", None) is not None)):
        if given:
            raise LabError(flag, "not used with --fair: each optimizer gets its own study "
                                 "of --trials-per-optimizer finished trials")
    names = optimizer_names(parse_optimizers(args.optimizers), "--optimizers", args)
    budget = args.trials_per_optimizer if args.trials_per_optimizer is not None else args.trials
    lab = load_lab_for(args)
    storage = args.storage if args.storage is not None else default_storage(args.lab)
    out = Path(args.out) if args.out else default_out(args.lab, "fair")
    finals: dict[str, object] = {}
    started = time.perf_counter()

    def on_progress(name: str, progress) -> None:
        for result in progress.finished:
            print(f"{name:<10} {trial_line(result)}", flush=True)
        if progress.final:
            finals[name] = progress

    print(f"fair race of {', '.join(names)}: {budget} finished trials each, "
          f"{args.seeds} seed(s), sampler {args.sampler}, objective {args.objective}, "
          f"storage {shown_url(storage_url(storage))}", flush=True)
    tuned = fair_race(lab, names, budget, args.seeds, sampler=args.sampler,
                      objective=args.objective, target=args.target, params=tuple(args.param),
                      prune=args.prune, storage=storage, on_progress=on_progress)
    out.mkdir(parents=True, exist_ok=True)
    save_lab(tuned, out / "tuned.lab.json")
    race = run_to_dir(tuned, out / "race")
    key = "final_val_loss" if tuned.is_network else "final_loss"
    rows = []
    for name, run, raced in zip(names, tuned.runs, race["runs"]):
        progress = finals.get(name)
        rows.append({
            "optimizer": written_name(name, Path.cwd()),
            "label": run.label,
            "params": dict(run.params),
            "tuning": None if progress is None else {
                "study": progress.study_name, "complete": progress.complete,
                "pruned": progress.pruned, "failed": progress.failed,
                "study_finished_trials": progress.study_trials,
                "best_value": progress.best_value,
            },
            "race": {k: raced.get(k) for k in (key, f"{key}_std", "best_loss", "diverged",
                                                "failed", "seeds") if k in raced},
        })
    ranked = sorted(rows, key=lambda r: (r["race"].get(key) is None,
                                         r["race"].get(key) or 0.0))
    summary = {
        "lab": lab.name, "optimizers": names, "trials_per_optimizer": budget,
        "seeds": args.seeds if lab.is_network else 1, "sampler": args.sampler,
        "objective": args.objective, "pruning": args.prune,
        "storage": shown_url(storage_url(storage)), "ranked_by": key,
        "wall_s": round(time.perf_counter() - started, 3),
        "ranking": [r["optimizer"] for r in ranked], "optimizers_detail": rows,
    }
    if not lab.is_network and args.seeds > 1:
        summary["note"] = "a function lab has no randomness: one seed is enough"
    write_atomic(out / "fair_race.json", json.dumps(summary, indent=2) + "\n")
    print(f"fair race ({key}, lower is better):")
    for place, row in enumerate(ranked, 1):
        value, std = row["race"].get(key), row["race"].get(f"{key}_std")
        shown = "n/a" if value is None else f"{value:.6g}" + (
            f" +- {std:.2g}" if std is not None else "")
        print(f"  {place}. {row['label']:<22} {shown}  {_format_params(row['params'])}")
    print(f"wrote {out}/tuned.lab.json, {out}/fair_race.json, {out}/race/")
    return 0
