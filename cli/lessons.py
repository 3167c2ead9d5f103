"""The ``lessons`` sub-command of ``main.py``: list the built-in lessons, or check their claims.

    python main.py lessons                 list the lessons (name, title, summary)
    python main.py lessons check [NAME]    run the lessons' labs headless and check every claim

Lessons, their claims and how a claim is judged live in core/teaching/lessons/; this module
parses the arguments and prints (exit 0 if every claim holds, 1 if one fails). A user's mistake
(an unknown lesson, a broken lesson file) raises `LabError`, which main.py prints as one line
with exit code 2.
"""

from __future__ import annotations

import sys

from core.teaching.lessons.check import check_claims
from core.teaching.lessons.loader import list_lessons, load_lesson


def register(subparsers) -> None:
    """Add the ``lessons`` sub-command to ``subparsers``; its handler returns the exit code."""
    parser = subparsers.add_parser(
        "lessons", help="list the built-in lessons, or check the claims their texts make",
        description="Without arguments: list the lessons. `lessons check [NAME]`: run the "
        "lessons' labs headless and check every claim (exit 0 if all hold, 1 if one fails).",
    )
    actions = parser.add_subparsers(dest="lessons_action")
    check = actions.add_parser("check", help="run lessons headless and check their claims")
    check.add_argument("name", nargs="?", help="a lesson name or folder (default: every lesson)")
    parser.set_defaults(handler=run_command)


def _marks() -> tuple[str, str]:
    """✓ and ✗, or plain words where the terminal's encoding has no such characters."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "ok", "FAILED"
    return "✓", "✗"


def run_command(args) -> int:
    """The ``lessons`` handler: list (exit 0) or check (0 if every claim holds, else 1)."""
    if getattr(args, "lessons_action", None) != "check":
        lessons = list_lessons()
        width = max((len(lesson.name) for lesson in lessons), default=0)
        for lesson in lessons:
            print(f"{lesson.name:<{width}}  {lesson.title}")
            print(f"{'':<{width}}  {lesson.summary}")
        return 0
    lessons = [load_lesson(args.name)] if args.name else list_lessons()
    ok, failed = _marks()
    total = failures = 0
    for lesson in lessons:
        print(f"{lesson.name}: {lesson.title}", flush=True)
        for result in check_claims(lesson):
            total += 1
            failures += not result.holds
            print(f"  {result.line(ok, failed)}", flush=True)
    summary = f"{total - failures} of {total} claims hold"
    print(summary + (f", {failures} failed" if failures else ""))
    return 1 if failures else 0
