"""The one-line verdict of a finished race, shown in the main window's status bar.

A winner is named only when there is one:

* runs that diverged do not compete (their numbers stop where they blew up), nor do runs whose
  optimizer failed or was stopped as too slow (core/engine/faults.py), counted apart; a race in
  which every run diverged says so and names no one;
* runs whose scores read the same at the precision shown ("99.0%", four significant digits of a
  loss) tie, and the text says they tie instead of crowning whichever came first or last. A tie on
  validation accuracy is then told apart by validation loss, and the text says that it was.

`race_summary` takes a `core.engine.history.RaceHistory` (2-D function race: each run's lowest loss) or
a `core.engine.history.NetworkHistory` (network race: each run's final evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from core.engine.history import NetworkHistory, RaceHistory


def race_summary(history: RaceHistory | NetworkHistory) -> str:
    """The status-bar sentence for a finished race."""
    if isinstance(history, NetworkHistory):
        return _network_summary(history)
    scores = []
    for i, (label, series) in enumerate(zip(history.labels, history.runs)):
        finite = series.column("loss")[np.isfinite(series.column("loss"))] if len(series) else ()
        if i not in history.divergences and len(finite):
            scores.append((label, float(np.min(finite))))
    return _verdict(scores, "best loss", _loss_text, higher_wins=False,
                    runs=len(history.labels), diverged=_ended(history))


def _network_summary(history: NetworkHistory) -> str:
    fields = history.eval_fields
    key = next((k for k in ("val_accuracy", "val_loss", "train_loss") if k in fields), None)
    if history.evals is None or key is None:
        return _verdict([], "", _loss_text, higher_wins=False, runs=len(history.labels),
                        diverged=_ended(history))
    accuracy = key.endswith("accuracy")

    def final(i: int, name: str) -> float:
        series = history.evals[i]
        return series.last(name) if len(series) else math.nan

    scores = [(label, final(i, key)) for i, label in enumerate(history.labels)
              if i not in history.divergences and math.isfinite(final(i, key))]
    tie_break = None
    if accuracy and "val_loss" in fields:
        losses = {label: final(i, "val_loss") for i, label in enumerate(history.labels)}
        tie_break = ("val loss", losses)
    return _verdict(scores, f"final {key.replace('_', ' ')}",
                    _percent_text if accuracy else _loss_text, higher_wins=accuracy,
                    runs=len(history.labels), diverged=_ended(history),
                    tie_break=tie_break)


def _ended(history) -> tuple[int, int]:
    """(runs that diverged, runs whose optimizer failed or was too slow)."""
    faulty = sum(1 for event in history.divergences.values()
                 if getattr(event, "kind", "diverged") != "diverged")
    return len(history.divergences) - faulty, faulty


def _stopped_text(diverged: int, failed: int) -> str:
    """"2 diverged", "1 failed", "2 diverged, 1 failed" ("" for none)."""
    parts = [f"{diverged} diverged"] if diverged else []
    return ", ".join(parts + ([f"{failed} failed"] if failed else []))


def _loss_text(value: float) -> str:
    return f"{value:.4g}"


def _percent_text(value: float) -> str:
    return f"{value:.1%}"  # as the network comparison table shows accuracies


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0]


def _verdict(scores: list[tuple[str, float]], what: str, shown: Callable[[float], str], *,
             higher_wins: bool, runs: int, diverged: tuple[int, int],
             tie_break: tuple[str, dict[str, float]] | None = None) -> str:
    """The sentence: a winner, a tie (broken by ``tie_break``'s lower value, said so), or none.

    ``scores`` are (label, value) of the runs that compete (finite, not diverged, not failed);
    ``diverged``: how many runs diverged and how many failed (`_ended`)."""
    diverged, failed = diverged
    if not scores:
        if runs and diverged >= runs:
            return "Finished: the run diverged." if runs == 1 else \
                f"Finished: all {runs} runs diverged."
        if runs and failed >= runs:
            return "Finished: the run failed." if runs == 1 else \
                f"Finished: all {runs} runs failed."
        if diverged + failed:
            return (f"Finished: {diverged} of {runs} runs diverged." if not failed
                    else f"Finished: {_stopped_text(diverged, failed)} of {runs} runs.")
        return "Finished."
    extra = f"; {_stopped_text(diverged, failed)}" if diverged + failed else ""
    best_value = max(v for _, v in scores) if higher_wins else min(v for _, v in scores)
    best_text = shown(best_value)
    tied = [label for label, value in scores if shown(value) == best_text]
    if len(tied) == 1:
        return f"Finished: {what} {best_text} by {tied[0]}{extra}."
    sentence = f"Finished: {len(tied)} runs tie at {what} {best_text} ({_names(tied)})"
    if tie_break is not None:
        name, values = tie_break
        ranked = sorted((values[label], label) for label in tied
                        if math.isfinite(values.get(label, math.nan)))
        # Named only when its lower value shows at the precision printed.
        if len(ranked) == len(tied) and _loss_text(ranked[0][0]) != _loss_text(ranked[1][0]):
            sentence += (f"; the lowest {name} of them: {ranked[0][1]} "
                         f"({_loss_text(ranked[0][0])})")
    return sentence + extra + "."
