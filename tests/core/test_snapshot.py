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


def _round_trip(tmp_path, data: dict):
    from core.lab.format import lab_from_dict

    lab = lab_from_dict(data)
    history = NetworkHistory([r.label for r in lab.enabled_runs()])
    history.extend(NetworkRace(lab).records())
    save_results(tmp_path / "n.npz", lab, history)
    back = load_results(tmp_path / "n.npz", lab)
    assert isinstance(back, NetworkHistory)
    return history, back


def _same_nested(a, b) -> None:
    assert len(a) == len(b)
    for run_a, run_b in zip(a, b):
        assert len(run_a) == len(run_b)
        for x, y in zip(run_a, run_b):
            np.testing.assert_array_equal(x, y)


def test_a_recurrent_race_keeps_its_probe_clipping_and_layer_statistics(tmp_path):
    """The sequence tab's heat map, spectral radius and clip markers, and the per-layer
    gradient views, come back after a crash as they were (they were empty before)."""
    history, back = _round_trip(tmp_path, {
        "format": "descent-lab/1", "name": "rnn", "seed": 0, "steps": 12,
        "problem": {"kind": "network", "dataset": {"name": "adding", "n": 64, "length": 8},
                    "model": {"layers": [{"rnn": 8}, {"last": True}, {"linear": 1}]},
                    "loss": "mse", "batch_size": 16, "eval_every": 4},
        "runs": [{"label": "clipped", "optimizer": "sgd", "params": {"lr": 0.5},
                  "clip_norm": 0.01},
                 {"label": "free", "optimizer": "adam", "params": {"lr": 0.01}}]})
    assert history.sequence_stats and any(history.clip_steps)
    assert len(back.sequence_stats) == len(history.sequence_stats)
    for (s0, h0, r0), (s1, h1, r1) in zip(history.sequence_stats, back.sequence_stats):
        assert s0 == s1
        np.testing.assert_array_equal(h0, h1)
        np.testing.assert_array_equal(r0, r1)
    assert back.clip_steps == history.clip_steps
    for before, after in zip(history.layer_stats.since(0), back.layer_stats.since(0)):
        np.testing.assert_array_equal(before, after)
    assert back.layer_stats.total == history.layer_stats.total
    ev0, ev1 = history.last_evaluation, back.last_evaluation
    np.testing.assert_array_equal(ev0.hidden_grad, ev1.hidden_grad)
    np.testing.assert_array_equal(ev0.recurrent_radius, ev1.recurrent_radius)


def test_a_matrix_race_keeps_its_update_spectra_sharpness_and_neuron_pictures(tmp_path):
    history, back = _round_trip(tmp_path, {
        "format": "descent-lab/1", "name": "matrix", "seed": 0, "steps": 8,
        "problem": {"kind": "network",
                    "dataset": {"name": "matrix_regression", "n": 64, "dims": 6},
                    "model": {"layers": [{"linear": 6, "bias": False}]},
                    "loss": "mse", "batch_size": 64, "eval_every": 4, "sharpness_every": 4},
        "runs": [{"label": "muon", "optimizer": "muon", "params": {"lr": 0.02}},
                 {"label": "adam", "optimizer": "adam", "params": {"lr": 0.01}}]})
    assert history.update_spectra and history.sharpness is not None
    assert [s for s, _ in back.update_spectra] == [s for s, _ in history.update_spectra]
    for (_s0, a), (_s1, b) in zip(history.update_spectra, back.update_spectra):
        _same_nested(a, b)
    for a, b in zip(history.sharpness, back.sharpness):
        _same_series(a, b)
    _same_nested(history.last_evaluation.weight_spectra, back.last_evaluation.weight_spectra)
    moons = replace(load_lab(LABS / "moons_race.lab.json"), steps=4)
    h = NetworkHistory([r.label for r in moons.enabled_runs()])
    h.extend(NetworkRace(moons).records())
    assert h.last_evaluation.neurons is not None
    save_results(tmp_path / "m.npz", moons, h)
    _same_nested(h.last_evaluation.neurons, load_results(tmp_path / "m.npz", moons)
                 .last_evaluation.neurons)
