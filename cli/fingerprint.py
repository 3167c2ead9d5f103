"""The ``fingerprint`` sub-command of ``main.py``: an optimizer's measured properties beside theory.

    python main.py fingerprint adam
    python main.py fingerprint sgd --params '{"lr": 0.01, "momentum": 0.9}' --curvature 4
    python main.py fingerprint pytorch_optimizer:Lion --json
    python main.py fingerprint opts/lion.py:Lion --trust-code

OPT is named as for check-optimizer (cli/check_optimizer.py): a torch.optim name, a zoo optimizer
or the user's code, which runs only with ``--trust-code``. The probes live in
core/optim/fingerprint.py; docs/scorecard.md ("Fingerprint") says what each one measures.

Exit status: 0 when every property was measured (or does not apply), 1 when a probe failed (the
optimizer raised or diverged; the card is printed either way), 2 for a user's mistake, as one
line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

from cli.check_optimizer import EXIT_USER_ERROR, card_marks, params_from_json, resolve_ref

EXIT_FAILED_PROBE = 1

EPILOG = """\
the fingerprint: invariance to gradient scale (f vs c·f, c = 10 and 0.1); equivariance to a
rotation of the coordinates; the largest stable lr on ½·λ·‖x‖² by bisection (theory 2/λ for
gradient descent, (2 + 2β)/λ for heavy-ball momentum); update RMS and effective step size;
sensitivity to ε. Each with what theory says beside it.
exit status: 0 measured, 1 a probe failed, 2 a mistake in the command.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fingerprint`` to main.py's sub-command parser."""
    cmd = subparsers.add_parser(
        "fingerprint",
        help="an optimizer's measured properties (scale invariance, rotation equivariance, "
             "largest stable lr, ...) beside what theory says",
        description="Fingerprint an optimizer (torch.optim, the zoo or your own class).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("ref", metavar="OPT",
                     help='"adam", "pytorch_optimizer:Lion", "path/to/file.py:Class" or '
                          '"module:Class"')
    cmd.add_argument("--params", metavar="JSON", default="{}",
                     help='hyperparameters as a JSON object, e.g. \'{"lr": 0.01}\' '
                          "(default: the optimizer's own defaults)")
    cmd.add_argument("--curvature", metavar="λ", default="10",
                     help="curvature λ of the stability probe's quadratic ½·λ·‖x‖² (default 10)")
    cmd.add_argument("--seed", type=int, default=0, metavar="N",
                     help="seed of the probes' problem and rotation (default 0)")
    cmd.add_argument("--json", action="store_true", help="print the fingerprint as JSON")
    cmd.add_argument("--trust-code", action="store_true",
                     help="run the Python code of OPT when it is a file or a module "
                          "(refused without this flag; torch.optim and the zoo need no consent)")
    cmd.set_defaults(handler=cmd_fingerprint)


def _curvature(text: str) -> float:
    from core.errors import LabError

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise LabError("--curvature", f"must be a positive finite number, got {text!r}")
    return value


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from core.optim.check_report import Adapters
    from core.optim.fingerprint import fingerprint

    params_from_json(args.params)  # a bad --params is named before a bad --curvature
    curvature = _curvature(args.curvature)
    resolved = resolve_ref(args, "OPT", "fingerprinting")
    if resolved is None:
        return EXIT_USER_ERROR
    _name, info, kwargs = resolved
    # What the optimizer prints goes to stderr, so that stdout holds only the card or the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = fingerprint(info.cls, kwargs, seed=args.seed, name=args.ref,
                             curvature=curvature, build=info.build, declared=Adapters.of(info))
    if args.json:
        print(result.to_json_text())
    else:
        marks = ("✓", "✗", "!", "–") if card_marks()[0] == "✓" else ("yes", "no", "FAILED", "n/a")
        text = result.card(*marks)
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding))
    return EXIT_FAILED_PROBE if result.failures else 0
