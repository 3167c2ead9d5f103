"""Descent Lab's entry point: the GUI by default, headless sub-commands for scripts and CI.

    python main.py [LAB]                       open the app (optionally with a lab file)
    python main.py run LAB --out DIR           run a lab headless: summary.json, metrics.csv, ...
    python main.py surface LAB --out DIR       the loss surface around a trained network
    python main.py sweep LAB [--trials N ...]  tune hyperparameters with Optuna
    python main.py lr-find LAB                 the LR range test and its suggestions
    python main.py lessons [check [NAME]]      list the lessons / check their claims headless
    python main.py check-optimizer REF         an optimizer's report card before it races
    python main.py --lesson NAME               open the app straight into a lesson
    descent-lab --install-desktop-entry        add the app to the desktop's menu (and its icon)
    descent-lab --uninstall-desktop-entry      take it out again

Installed (``pip install .`` / ``pipx install .``), the ``descent-lab`` command is this module's
`main`: the same window and the same sub-commands.

A user's mistake (a bad lab file, a wrong flag) exits with code 2 and one line that names the
file, the field and what is allowed — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

EXIT_USER_ERROR = 2

# One module of cli/ per sub-command: each has ``register(subparsers)`` (adds the sub-command,
# whose ``args.handler(args)`` returns an exit code), registered in this order (the order of
# ``--help``). Imported only when a sub-command is asked for, so the GUI starts light; hence the
# names in SUBCOMMANDS too, to tell a sub-command from a lab file without importing them.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "cli.run", "cli.surface", "cli.sweep", "cli.lr_find", "cli.lessons", "cli.check_optimizer",
    "cli.fingerprint", "cli.scorecard",
)
SUBCOMMANDS = ("run", "surface", "sweep", "lr-find", "lessons", "check-optimizer", "fingerprint",
               "scorecard")
# Flags that set the app up on this desktop rather than open it (app/shell/desktop_entry.py).
DESKTOP_FLAGS = ("--install-desktop-entry", "--uninstall-desktop-entry")


def _gui(*args, **kwargs) -> int:
    """The window, once app/shell/preflight.py finds Qt can start here (a display, the system
    libraries of its xcb plugin); else its one message and exit code, instead of Qt's abort."""
    from app.shell.preflight import check_gui

    code = check_gui()
    if code:
        return code
    from app.shell.main_window import launch

    return launch(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="descent-lab",
        description="Descent Lab: watch real PyTorch optimizers race over loss landscapes.",
    )
    for flag, what in zip(DESKTOP_FLAGS, ("write", "remove"), strict=True):
        parser.add_argument(flag, action="store_true",
                            help=f"{what} the desktop menu entry and icons under $XDG_DATA_HOME")
    sub = parser.add_subparsers(dest="command")
    for module in SUBCOMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--lesson"]:
        if len(argv) != 2:
            print("error: --lesson: give one lesson name (see: main.py lessons)", file=sys.stderr)
            return EXIT_USER_ERROR
        return _gui(lesson=argv[1])
    if argv[:1] and argv[0] in DESKTOP_FLAGS:
        if len(argv) != 1:
            print(f"error: {argv[0]} takes no other argument", file=sys.stderr)
            return EXIT_USER_ERROR
        from app.shell.desktop_entry import run_flag

        return run_flag(argv[0])
    if not argv or argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        return _gui(argv[0] if argv else None)
    if argv[0] in ("-h", "--help") or argv[0] in SUBCOMMANDS:
        args = build_parser().parse_args(argv)
    else:
        build_parser().parse_args(argv)  # prints usage and exits 2
        return EXIT_USER_ERROR
    from core.engine.devices import configure_threads
    from core.errors import LabError

    configure_threads()
    try:
        return args.handler(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; no partial files were left behind", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
