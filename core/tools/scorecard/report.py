"""scorecard.json and a markdown table from `run_scorecard`'s result: the one writer the CLI
(cli/scorecard.py) and the scorecard window (app/tools/scorecard_window.py) share, so both
write the same bytes for the same result."""

from __future__ import annotations

import json
from pathlib import Path

from core.lab.format import write_atomic


def result_text(result: dict) -> str:
    """scorecard.json's text: keys sorted, so the same seed writes the same bytes."""
    return json.dumps(result, indent=1, sort_keys=True) + "\n"


def write_result(path: str | Path, result: dict) -> Path:
    """Write ``result`` as scorecard.json at ``path`` (atomically)."""
    write_atomic(Path(path), result_text(result))
    return Path(path)


def markdown_table(result: dict) -> str:
    """Entries (best B first) × workloads in steps to target; miss / voided marked."""
    workloads = list(result["workloads"])
    lines = [f"Scorecard ({result['ruleset']} ruleset, seed {result['seed']}, "
             f"{result['trials']} trials × {result['studies']} studies, held-out "
             f"{'on' if result['heldout'] else 'off'}): steps to target; B = ∫₁⁴ ρ(τ) dτ / 3.",
             "",
             "| entry | " + " | ".join(workloads) + " | B (steps) | B (grad evals) |",
             "| --- | " + " | ".join("---:" for _ in workloads) + " | ---: | ---: |"]
    for row in sorted(result["entries"], key=lambda r: -r["score"]):
        name = row["name"]
        cells = []
        for w in workloads:
            t = result["times"][name][w]
            if t is not None:
                cells.append(f"{t:g}")
            elif w in result.get("voided", {}).get(name, []):
                cells.append("voided")
            else:
                cells.append("miss")
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {row['score']:.3f} | {row['score_grad_evals']:.3f} |")
    return "\n".join(lines) + "\n"
