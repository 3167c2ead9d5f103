"""The ``scorecard`` sub-command of ``main.py``: optimizers compared AlgoPerf's way.

    python main.py scorecard --entries adam,pytorch_optimizer:Lion,opts/my.py:Mine \\
        --workloads moons_mlp,rosenbrock --ruleset external --trials 5 --studies 5 --out DIR \\
        [--no-heldout] [--storage URL] [--seed N] [--suite DIR] [--trust-code]

Writes DIR/scorecard.json (each entry's name and score B, ``times[entry][workload]`` in steps,
null for a miss; docs/scorecard.md) and DIR/wall_times.json beside it (wall time is not
reproducible, so it stays out of scorecard.json). The studies live in ``--storage`` (default a
SQLite file DIR/scorecard.db): the same command again after a kill completes the scorecard
without training a finished trial twice. The work is core/tools/scorecard/run.py; a mistake (an
entry without a valid search space, an unknown workload, an unreachable storage) is one line
and exit 2 (main.py prints the `LabError`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.code_consent import add_trust_flag


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``scorecard`` to main.py's sub-command parser."""
    p = subparsers.add_parser(
        "scorecard", help="compare optimizers on the shipped workloads (time to target, "
                          "performance profiles, the score B)")
    p.add_argument("--entries", required=True,
                   help="optimizers separated by commas: adam, pytorch_optimizer:Lion, "
                        "opts/my.py:Mine (user code needs --trust-code)")
    p.add_argument("--workloads", default=None,
                   help="workloads separated by commas (default: the whole suite in "
                        "resources/workloads/)")
    p.add_argument("--suite", default=None,
                   help="a folder of workloads (NAME.lab.json + suite.json; default the "
                        "shipped resources/workloads/)")
    p.add_argument("--ruleset", default="external", choices=("external", "self"))
    p.add_argument("--trials", type=int, default=5, help="O: trials per study (external)")
    p.add_argument("--studies", type=int, default=5,
                   help="S: independent studies (external) or seeds (self) per workload")
    p.add_argument("--no-heldout", action="store_true",
                   help="skip the held-out variants (faster; no voiding rule)")
    p.add_argument("--seed", type=int, default=0, help="seeds the samplers and the draws")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL or SQLite file (default DIR/scorecard.db)")
    p.add_argument("--out", required=True, help="folder for scorecard.json")
    add_trust_flag(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import optuna

    from cli.code_consent import optimizer_names
    from core.errors import LabError
    from core.lab.format import write_atomic
    from core.tools.scorecard.report import write_result
    from core.tools.scorecard.run import ScorecardSpec, entry, run_scorecard
    from core.tools.scorecard.workloads import load_suite, pick

    texts = [t.strip() for t in args.entries.split(",") if t.strip()]
    if not texts:
        raise LabError("--entries", "name at least one optimizer, separated by commas")
    names = optimizer_names(texts, "--entries", args)
    entries = [entry(text, name) for text, name in zip(texts, names, strict=True)]
    suite = load_suite(args.suite) if args.suite else load_suite()
    wanted = ([w.strip() for w in args.workloads.split(",") if w.strip()]
              if args.workloads else list(suite))
    workloads = pick(suite, wanted)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError("--out", f"cannot create {out}: {exc.strerror or exc}") from None
    storage = args.storage if args.storage is not None else str(out / "scorecard.db")
    spec = ScorecardSpec(entries, workloads, ruleset=args.ruleset, trials=args.trials,
                         studies=args.studies, heldout=not args.no_heldout, seed=args.seed,
                         storage=storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = run_scorecard(spec, on_progress=lambda line: print(line, flush=True))
    write_result(out / "scorecard.json", result)
    write_atomic(out / "wall_times.json", json.dumps(spec.wall_times, indent=1) + "\n")
    print(f"scorecard ({args.ruleset}; B = ∫₁⁴ ρ(τ) dτ / 3 on steps to target, higher is "
          "better):")
    for row in sorted(result["entries"], key=lambda r: -r["score"]):
        times = "  ".join(f"{w} {'miss' if t is None else f'{t:g}'}"
                          for w, t in result["times"][row["name"]].items())
        print(f"  {row['name']:<28} B {row['score']:.3f}  {times}")
    print(f"wrote {out}/scorecard.json, {out}/wall_times.json")
    return 0
