"""The check's results for every raceable zoo optimizer at its defaults, shipped with the app.

Checking all of pytorch-optimizer and Schedule-Free takes minutes, too long to do behind the
picker; the results for the pinned zoo versions are computed once and shipped in
``resources/zoo_checks.json``, so that a zoo optimizer that fails a property is listed with a
warning badge and what it failed before anyone presses Check. Regenerate the file after moving
the zoo pins: ``python -m core.optim.zoo_checks`` (a few minutes). A file made for other
versions than the installed ones is ignored (`shipped_failures` gives nothing).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from core.user_data import RESOURCES_DIR

ZOO_CHECKS_FILE = RESOURCES_DIR / "zoo_checks.json"
SEED = 0


def _versions() -> dict[str, str]:
    from core.optim.zoo import ZOO_PACKAGES, zoo_version

    return {package: zoo_version(package) for package in ZOO_PACKAGES}


def shipped_results(path: Path = ZOO_CHECKS_FILE) -> dict[str, dict[str, str]]:
    """``{zoo ref: {failed property: its evidence}}`` from the shipped file (an optimizer that
    passed has an empty dict), for the installed zoo versions only; empty when the file is
    missing, unreadable or made for other versions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("versions") != _versions():
        return {}
    results = data.get("results")
    if not isinstance(results, dict):
        return {}
    return {ref: dict(entry["failed"]) for ref, entry in results.items()
            if isinstance(entry, dict) and isinstance(entry.get("failed"), dict)}


def shipped_failures(path: Path = ZOO_CHECKS_FILE) -> dict[str, str]:
    """``{zoo ref: "what it failed, in words"}`` for the zoo optimizers that failed a property
    in the shipped check (see `shipped_results`)."""
    return {ref: "; ".join(f"{key}: {text}" for key, text in failed.items())
            for ref, failed in shipped_results(path).items() if failed}


def check_all(progress=None) -> dict:
    """Check every raceable zoo optimizer at its defaults (seed `SEED`): the file's content."""
    from core.errors import LabError
    from core.optim.catalog import get_optimizer_info
    from core.optim.check_report import FAILED, Adapters
    from core.optim.checkup import check_optimizer
    from core.optim.zoo import zoo_names, zoo_refusals

    refused = zoo_refusals()
    results = {}
    for ref in zoo_names():
        if ref in refused:
            continue
        try:
            info = get_optimizer_info(ref)
        except LabError:
            continue
        with contextlib.redirect_stdout(io.StringIO()):  # Schedule-Free's reference classes print
            report = check_optimizer(info.cls, info.torch_kwargs({}), seed=SEED, name=ref,
                                     build=info.build, declared=Adapters.of(info))
        results[ref] = {"failed": {r.key: r.evidence for r in report.results
                                   if r.status == FAILED}}
        if progress is not None:
            progress(ref, results[ref])
    return {"versions": _versions(), "seed": SEED, "results": results}


def main() -> None:
    from core.lab.format import write_atomic

    def said(ref, entry):
        print(f"{ref}: {', '.join(entry['failed']) or 'passes'}", file=sys.stderr, flush=True)

    data = check_all(said)
    write_atomic(ZOO_CHECKS_FILE, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {ZOO_CHECKS_FILE}: {len(data['results'])} optimizers")


if __name__ == "__main__":
    main()
