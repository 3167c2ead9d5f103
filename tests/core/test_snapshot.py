"""Finished results survive a round trip through the recovery .npz, for the lab that made them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.engine.function_race import race
from core.engine.history import NetworkHistory, RaceHistory
from core.engine.network_race import NetworkRace
from core.engine.snapshot import load_results, save_results
from core.lab.format import load_lab

LABS = Path(__file__).resolve().parents[2] / "resources" / "labs"


def _same_series(a, b) -> None:
    assert a.fields == b.fields and len(a) == len(b)
    for f in a.fields:
        np.testing.assert_array_equal(a.column(f), b.column(f))


def test_a_function_race_with_a_divergence_round_trips(tmp_path):
    lab = load_lab(LABS / "too_large_lr.lab.json")
    history = RaceHistory([r.label for r in lab.enabled_runs()])
    history.extend(race(lab))
    assert history.divergences, "the example lab is meant to have a diverging run"
    save_results(tmp_path / "r.npz", lab, history)

    back = load_results(tmp_path / "r.npz", lab)
    assert isinstance(back, RaceHistory)
    assert back.labels == history.labels and back.last_step == history.last_step
    assert back.divergences == history.divergences
    for a, b in zip(history.runs, back.runs):
        _same_series(a, b)


def test_results_are_only_offered_back_with_the_lab_that_made_them(tmp_path):
    lab = load_lab(LABS / "ravine.lab.json")
    history = RaceHistory([r.label for r in lab.enabled_runs()])
    history.extend(race(replace(lab, steps=5)))
    save_results(tmp_path / "r.npz", lab, history)
    assert load_results(tmp_path / "r.npz", replace(lab, seed=lab.seed + 1)) is None
    assert load_results(tmp_path / "missing.npz", lab) is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert load_results(tmp_path / "bad.npz", lab) is None


def test_a_network_race_keeps_its_curves_and_its_last_evaluation(tmp_path):
    lab = replace(load_lab(LABS / "moons_race.lab.json"), steps=12)
    history = NetworkHistory([r.label for r in lab.enabled_runs()])
    history.extend(NetworkRace(lab).records())
    assert history.last_evaluation is not None
    save_results(tmp_path / "n.npz", lab, history)

    back = load_results(tmp_path / "n.npz", lab)
    assert isinstance(back, NetworkHistory)
    for a, b in zip(history.steps + history.evals, back.steps + back.evals):
        _same_series(a, b)
    before, after = history.last_evaluation, back.last_evaluation
    np.testing.assert_array_equal(before.boundary, after.boundary)
    np.testing.assert_array_equal(before.val["loss"], after.val["loss"])
    assert len(after.weights) == len(before.weights)
    np.testing.assert_array_equal(before.weights[0][0], after.weights[0][0])
    assert back.last_evaluation_step == history.last_evaluation_step
