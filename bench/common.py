"""The one shared helper: print a benchmark's BENCH line and return it as a JSON-ready dict."""

from __future__ import annotations


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def report(
    name: str, value: float, unit: str, ratio: float, baseline: str, note: str = "", **extra
) -> dict:
    """Print ``BENCH <name>: <value> <unit> (x<ratio> vs <baseline>[; note])``.

    ``extra`` (plain numbers / strings) is not printed; it goes into the JSON results.
    """
    tail = f"; {note}" if note else ""
    shown = f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"
    print(f"BENCH {name}: {_fmt(value)} {unit} (x{shown} vs {baseline}{tail})", flush=True)
    return {
        "value": value, "unit": unit, "ratio": ratio, "baseline": baseline, "note": note, **extra
    }
