"""The ``check-optimizer`` sub-command of ``main.py``: the report card of one optimizer.

    python main.py check-optimizer adam
    python main.py check-optimizer pytorch_optimizer:Lion --params '{"lr": 1e-4}'
    python main.py check-optimizer opts/lion.py:Lion --trust-code [--json] [--seed N]

REF is a torch.optim name (``adam``), a zoo optimizer (``pytorch_optimizer:Lion``,
``schedulefree:AdamWScheduleFree``) or the user's code (``path/to/file.py:Class``, relative to the
current folder, or ``module:Class``). User code is Python that runs: it is refused unless
``--trust-code`` is given. The check itself lives in core/optim/checkup.py; names are resolved by
core/optim/catalog.py and user code loaded by core/optim/user_code.py.

Exit status: 0 when every property passes, 1 when the check ran and a property failed (the card
is printed either way), 2 for a user's mistake (unknown name, bad --params, code not trusted),
as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

EXIT_FAILED_CHECK = 1
EXIT_USER_ERROR = 2

CHECK_EPILOG = """\
the card: decreases a convex quadratic; deterministic for a fixed seed; state_dict save/load
mid-run continues identically; leaves parameters with grad None and frozen parameters unchanged;
works with several param groups; no NaN on a zero gradient; the adapters it needs (closure,
create-graph, train-eval, matrix-only); its step time relative to torch.optim.Adam.
exit status: 0 all pass, 1 a property fails, 2 a mistake in the command.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check-optimizer`` to main.py's sub-command parser."""
    check = subparsers.add_parser(
        "check-optimizer",
        help="check an optimizer before racing it: a report card of the properties a race needs",
        description="Check an optimizer (torch.optim, the zoo or your own class) in seconds.",
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("ref", metavar="REF",
                       help='"adam", "pytorch_optimizer:Lion", "path/to/file.py:Class" or '
                            '"module:Class"')
    check.add_argument("--params", metavar="JSON", default="{}",
                       help='hyperparameters as a JSON object, e.g. \'{"lr": 0.01}\' '
                            "(default: the optimizer's own defaults)")
    check.add_argument("--seed", type=int, default=0, metavar="N",
                       help="seed of the check's problems (default 0)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--trust-code", action="store_true",
                       help="run the Python code of REF when it is a file or a module "
                            "(refused without this flag; torch.optim and the zoo need no consent)")
    check.set_defaults(handler=cmd_check_optimizer)


def params_from_json(text: str) -> dict:
    from core.errors import LabError

    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabError("--params", f"must be a JSON object such as '{{\"lr\": 0.01}}': "
                                   f"{exc.msg} at character {exc.pos}") from None
    if not isinstance(params, dict):
        raise LabError("--params", f"must be a JSON object, got {type(params).__name__}")
    return params


def card_marks() -> tuple[str, str, str]:
    """✓ ✗ –, or plain words where the terminal's encoding has no such characters."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗–→×µ".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAILED", "n/a"
    return "✓", "✗", "–"


def resolve_ref(args: argparse.Namespace, field: str, verb: str):
    """``args.ref`` and ``args.params`` as (catalog name, `OptimizerInfo`, torch kwargs): a
    torch.optim name in any case, a zoo name, or user code loaded only with ``--trust-code``.
    None when user code came without the flag (said on stderr, naming the file and the flag)."""
    from core.lab.code import TRUST_ALL, resolve_optimizer
    from core.optim import user_code

    params = params_from_json(args.params)
    if user_code.is_code_ref(args.ref) and not args.trust_code:
        ref = user_code.parse_code_ref(args.ref, field=field)
        where = user_code.code_file(ref, field=field)
        print(f"error: {where}: {verb} {ref.class_name} runs this Python code; "
              "pass --trust-code to allow it", file=sys.stderr)
        return None
    return resolve_optimizer(args.ref, params, TRUST_ALL, field=field, params_field="--params")


def cmd_check_optimizer(args: argparse.Namespace) -> int:
    from core.optim.check_report import Adapters
    from core.optim.checkup import check_optimizer

    resolved = resolve_ref(args, "REF", "checking")
    if resolved is None:
        return EXIT_USER_ERROR
    _name, info, kwargs = resolved
    # What the optimizer prints (Schedule-Free's reference classes announce each mode switch)
    # goes to stderr, so that stdout holds only the card or the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        report = check_optimizer(info.cls, kwargs, seed=args.seed, name=args.ref,
                                 build=info.build, declared=Adapters.of(info))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        text = report.card(*card_marks())
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding))
    return 0 if report.passed else EXIT_FAILED_CHECK
