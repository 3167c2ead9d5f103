"""The ``lr-find`` sub-command of ``main.py``: the LR range test of one run (argparse only, no Qt).

    python main.py lr-find LAB [--run LABEL] [--min 1e-6] [--max 1] [--steps 100] [--out DIR]

``register(subparsers)`` adds it; its handler returns an exit code and lets a user's mistake raise
`LabError`, which main.py prints as one line with exit code 2. The test itself and its
suggestions live in core/tools/lr_finder.py; this module writes DIR/lr_find.csv and
DIR/suggestions.json (each atomically) and prints the suggestions.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from cli.code_consent import add_trust_flag, load_lab_for
from cli.output_dirs import default_out

LR_FIND_EPILOG = """\
the LR range test (Smith 2017, fastai's lr_find) trains a copy of the run's starting model
(or point) while the lr grows exponentially from --min to --max, stops when the smoothed loss
passes 4x its best, and prints the lr each common rule suggests (steepest descent, valley,
minimum/10) with a sentence on why they differ. Writes DIR/lr_find.csv (step, lr, loss,
smoothed_loss) and DIR/suggestions.json.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``lr-find`` to main.py's sub-command parser."""
    from core.tools.lr_finder import (
        DEFAULT_DIVERGENCE_FACTOR,
        DEFAULT_LR_MAX,
        DEFAULT_LR_MIN,
        DEFAULT_SMOOTHING,
        DEFAULT_STEPS,
    )

    find = subparsers.add_parser(
        "lr-find",
        help="LR range test: suggest a learning rate for a run",
        description="Run the learning-rate range test on one run of a lab.",
        epilog=LR_FIND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    find.add_argument("lab", help="a *.lab.json file")
    add_trust_flag(find)
    find.add_argument("--run", metavar="LABEL",
                      help="label of the run to test (default: the first enabled run)")
    find.add_argument("--min", dest="lr_min", type=float, default=DEFAULT_LR_MIN, metavar="LR",
                      help=f"lr at the start of the ramp (default {DEFAULT_LR_MIN:g})")
    find.add_argument("--max", dest="lr_max", type=float, default=DEFAULT_LR_MAX, metavar="LR",
                      help=f"lr at the end of the ramp (default {DEFAULT_LR_MAX:g})")
    find.add_argument("--steps", type=int, default=DEFAULT_STEPS, metavar="N",
                      help=f"training steps of the ramp (default {DEFAULT_STEPS})")
    find.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING, metavar="BETA",
                      help=f"EMA factor of the smoothed loss, in [0, 1) (default "
                      f"{DEFAULT_SMOOTHING:g}, fastai's)")
    find.add_argument("--divergence", type=float, default=DEFAULT_DIVERGENCE_FACTOR,
                      metavar="X", help="stop once the smoothed loss passes X times its best "
                      f"(default {DEFAULT_DIVERGENCE_FACTOR:g})")
    find.add_argument("--out", metavar="DIR",
                      help="output directory (default: <lab>-lr-find/ next to the lab)")
    find.set_defaults(handler=cmd_lr_find)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from core.lab.format import write_atomic
    from core.tools.lr_finder import explain, lr_range_test

    lab = load_lab_for(args)
    result = lr_range_test(lab, run=args.run, lr_min=args.lr_min, lr_max=args.lr_max,
                           steps=args.steps, smoothing=args.smoothing,
                           divergence_factor=args.divergence)
    out = Path(args.out) if args.out else default_out(args.lab, "lr-find")
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "lr", "loss", "smoothed_loss"])
    for i, (lr, loss, smooth) in enumerate(zip(result.lrs, result.losses, result.smoothed)):
        writer.writerow([i, repr(float(lr)), repr(float(loss)), repr(float(smooth))])
    write_atomic(out / "lr_find.csv", buffer.getvalue())
    write_atomic(out / "suggestions.json", json.dumps(result.to_json(), indent=2) + "\n")
    print(f"{result.run_label} ({result.optimizer}): {len(result.lrs)} steps, "
          f"{result.stop_reason}")
    for rule, lr in result.suggestions.items():
        print(f"  {rule:<11} lr = {lr:.3g}")
    print(explain(result))
    print(f"wrote {out}/lr_find.csv, {out}/suggestions.json")
    return 0
