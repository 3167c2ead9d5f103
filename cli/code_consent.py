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


def optimizer_names(texts: list[str], flag: str, args: argparse.Namespace) -> list[str]:
    """Optimizers named on the command line (``--optimizers sgd,pytorch_optimizer:Lion,
    opts/mine.py:Mine``) as catalog names: a torch.optim name in any case, a zoo name as written,
    user code (a file relative to the current folder, or ``module:Class``) loaded only with
    ``--trust-code`` — else a `CodeNotTrusted` naming the flag."""
    from core.optim import user_code
    from core.optim.user_code import CodeNotTrusted

    names = []
    for text in texts:
        if ":" not in text:
            names.append(text.lower())
            continue
        if not user_code.is_code_ref(text):
            names.append(text)
            continue
        ref = user_code.parse_code_ref(text, None, flag)
        if not getattr(args, "trust_code", False):
            sha256 = user_code.code_hash(ref, flag)
            raise CodeNotTrusted(flag, f"{text} is Python code (sha256 {sha256[:12]}…); it runs "
                                       "only with your consent: pass --trust-code")
        user_code.load_code(ref, flag)
        names.append(ref.name)
    return names
