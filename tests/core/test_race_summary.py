"""The finished race's status line names a winner only when there is one (core/engine/race_summary.py).

Real races: function races from `core.engine.function_race.race`, network races from `NetworkRace`; the
expected winner, tie and tie-break are read back from the recorded series with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.function_race import race
from core.engine.history import NetworkHistory, RaceHistory
from core.engine.network_race import NetworkRace
from core.engine.race_summary import race_summary
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, validate_lab


def _function_history(runs, steps=200) -> RaceHistory:
    lab = validate_lab(Lab(name="banana", steps=steps,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)), runs=tuple(runs)))
    history = RaceHistory([r.label for r in lab.runs])
    history.extend(race(lab))
    return history


def _network_history(runs, steps=150) -> NetworkHistory:
    problem = NetworkProblem(
        dataset={"name": "moons", "n": 200, "noise": 0.05, "val_fraction": 0.25},
        model={"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 2}]},
        loss="cross_entropy", batch_size=32, eval_every=50, device="cpu")
    lab = validate_lab(Lab(name="moons", seed=1, steps=steps, problem=problem, runs=tuple(runs)))
    history = NetworkHistory([r.label for r in lab.runs])
    history.extend(NetworkRace(lab).records())
    return history


def _best_losses(history: RaceHistory) -> dict[str, float]:
    return {label: float(np.min(s.column("loss"))) for label, s in zip(history.labels,
                                                                          history.runs)}


def test_a_function_race_names_the_run_with_the_lowest_loss():
    history = _function_history([RunSpec("slow", "sgd", {"lr": 1e-5}),
                                 RunSpec("Adam", "adam", {"lr": 0.05})])
    best = _best_losses(history)
    winner = min(best, key=best.get)
    assert best["Adam"] < best["slow"] and winner == "Adam"
    assert race_summary(history) == f"Finished: best loss {best['Adam']:.4g} by Adam."


def test_identical_runs_tie_instead_of_one_being_crowned():
    # A duplicated run (momentum 0 is plain SGD) follows the same path to the same loss.
    history = _function_history([RunSpec("SGD", "sgd", {"lr": 1e-3}),
                                 RunSpec("slow", "sgd", {"lr": 1e-5}),
                                 RunSpec("SGD copy", "sgd", {"lr": 1e-3, "momentum": 0.0})])
    best = _best_losses(history)
    assert f"{best['SGD']:.4g}" == f"{best['SGD copy']:.4g}" and best["slow"] > best["SGD"]
    text = race_summary(history)
    assert text == f"Finished: 2 runs tie at best loss {best['SGD']:.4g} (SGD and SGD copy)."
    assert " by " not in text


def test_a_function_race_in_which_every_run_diverged_names_no_winner():
    history = _function_history([RunSpec("SGD", "sgd", {"lr": 5.0}),
                                 RunSpec("Momentum", "sgd", {"lr": 3.0, "momentum": 0.9}),
                                 RunSpec("Adam", "adam", {"lr": 100.0})], steps=100)
    assert len(history.divergences) == 3  # the engine saw all three blow up
    assert race_summary(history) == "Finished: all 3 runs diverged."


def test_a_diverged_run_does_not_compete():
    history = _function_history([RunSpec("boom", "sgd", {"lr": 5.0}),
                                 RunSpec("Adam", "adam", {"lr": 0.05})], steps=100)
    assert list(history.divergences) == [0]
    best = _best_losses(history)
    assert race_summary(history) == f"Finished: best loss {best['Adam']:.4g} by Adam; 1 diverged."


@pytest.fixture(scope="module")
def tied_network():
    # Easy moons: three runs end at the same validation accuracy, with different losses.
    return _network_history([RunSpec("SGD", "sgd", {"lr": 0.3}),
                             RunSpec("Adam", "adam", {"lr": 0.03}),
                             RunSpec("RMSprop", "rmsprop", {"lr": 0.01}),
                             RunSpec("Momentum", "sgd", {"lr": 0.1, "momentum": 0.9})])


def test_a_network_race_tied_on_accuracy_says_so_and_breaks_the_tie_by_val_loss(tied_network):
    history = tied_network
    accuracy = {label: s.last("val_accuracy") for label, s in zip(history.labels, history.evals)}
    val_loss = {label: s.last("val_loss") for label, s in zip(history.labels, history.evals)}
    top = max(accuracy.values())
    tied = [label for label in history.labels if f"{accuracy[label]:.1%}" == f"{top:.1%}"]
    assert tied == ["Adam", "RMSprop", "Momentum"], accuracy  # SGD is behind
    lowest = min(tied, key=val_loss.get)
    losses = sorted(val_loss[label] for label in tied)
    assert f"{losses[0]:.4g}" != f"{losses[1]:.4g}"
    assert race_summary(history) == (
        f"Finished: 3 runs tie at final val accuracy {top:.1%} (Adam, RMSprop and Momentum); "
        f"the lowest val loss of them: {lowest} ({val_loss[lowest]:.4g}).")


def test_a_network_race_with_one_best_run_names_it():
    history = _network_history([RunSpec("SGD", "sgd", {"lr": 0.3}),
                                RunSpec("Adam", "adam", {"lr": 0.03})])
    accuracy = [s.last("val_accuracy") for s in history.evals]
    assert accuracy[1] > accuracy[0]
    assert race_summary(history) == f"Finished: final val accuracy {accuracy[1]:.1%} by Adam."


def test_a_network_race_in_which_every_run_diverged_names_no_winner():
    history = _network_history([RunSpec("boom", "sgd", {"lr": 1e4, "momentum": 0.99}),
                                RunSpec("bang", "sgd", {"lr": 1e5, "momentum": 0.99})], steps=60)
    assert len(history.divergences) == 2
    assert race_summary(history) == "Finished: all 2 runs diverged."
