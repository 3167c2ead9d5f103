"""``python -m bench`` runs every benchmark; ``python -m bench engine-overhead startup`` runs some.

Each benchmark's result is merged into ``bench/results/latest.json`` (atomic write), so running
one benchmark keeps the others' last results.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

from bench import BENCHMARKS

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def _save(results: dict) -> None:
    from core.lab.format import write_atomic  # the project's own temp-file + fsync + os.replace

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(RESULTS.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
            raise ValueError
    except (OSError, ValueError):
        data = {"benchmarks": {}}
    data["benchmarks"].update(results)
    data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    write_atomic(RESULTS, json.dumps(data, indent=2, sort_keys=True) + "\n")
    RESULTS.chmod(0o644)  # mkstemp's 0600 is meant for user files, not a results table


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    results = {}
    for name in names:
        result = importlib.import_module(BENCHMARKS[name]).run()
        result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        results[name] = result
    _save(results)
    print(f"(results in {RESULTS})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
