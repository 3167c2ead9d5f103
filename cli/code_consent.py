"""``--trust-code``: the command line's consent to run the optimizer code a lab names.

A lab whose runs name the user's own optimizer (a ``.py`` file or a module, core/lab/code.py) is
refused by every command unless ``--trust-code`` is given: reading it would execute Python, and a
lab file from elsewhere must never do that silently. With the flag, `load_lab_for` reads the lab
with `core.lab.code.TRUST_ALL` and warns (stderr) about code changed since the lab was saved.
"""

from __future__ import annotations

import argparse
import sys


def add_trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust-code", action="store_true",
        help="run the Python code of optimizers the lab names from files or modules "
             "(refused without this flag; torch.optim and the zoo need no consent)")


def load_lab_for(args: argparse.Namespace, path=None):
    """Read ``args.lab`` (or ``path``) with the consent ``--trust-code`` gives, warn about code
    that changed since the lab was saved, and return the `Lab`."""
    from core.lab.code import TRUST_ALL, code_changes
    from core.lab.format import load_lab

    lab = load_lab(path if path is not None else args.lab,
                   consent=TRUST_ALL if getattr(args, "trust_code", False) else None)
    for line in code_changes(lab):
        print(f"warning: {line}", file=sys.stderr)
    return lab
