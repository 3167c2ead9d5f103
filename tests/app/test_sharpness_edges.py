"""The Sharpness page draws each run's own edge of stability from a real tracked race
(core/landscape/adaptive_edge.py): Adam's curve is its preconditioned sharpness λ₁(P⁻¹H) against
38/lr, heavy-ball momentum's raw sharpness against (2+2β)/lr, and a zoo optimizer with no known
edge gets no line and a legend entry that says so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.surface.sharpness_page import EDGE_LEGEND, NO_EDGE, PRECONDITIONED
from app.surface.view import PAGE_SHARPNESS
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.lab.format import RunSpec, validate_lab
from tests.app.test_surface_view import _lab, _network_view

COLORS3 = ["#e69f00", "#56b4e9", "#009e73"]


def test_each_run_gets_its_own_edge_and_adam_its_preconditioned_sharpness(qtbot, tmp_path):
    lab = _lab(steps=10)
    runs = (RunSpec("Momentum", "sgd", {"lr": 0.05, "momentum": 0.9}),
            RunSpec("Adam", "adam", {"lr": 0.01}),
            RunSpec("Lion", "pytorch_optimizer:Lion", {"lr": 1e-4}))
    lab = validate_lab(replace(lab, runs=runs,
                               problem=replace(lab.problem, batch_size=None, sharpness_every=5)))
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    view = _network_view(qtbot, race, history)
    view.set_runs(list(race.labels), COLORS3, race.data, total_steps=lab.steps)
    surface = view.surface_view
    view.tabs.setCurrentWidget(surface)
    surface.pages.setCurrentIndex(PAGE_SHARPNESS)
    view.update_from(history)
    plot = surface.sharpness_plot

    momentum_line, momentum_edge = plot.items[0]
    steps, raw, _ = history.sharpness_series(0)
    np.testing.assert_allclose(momentum_line.getOriginalDataset()[1], raw)
    np.testing.assert_allclose(momentum_edge.getOriginalDataset()[1], 3.8 / 0.05)

    adam_line, adam_edge = plot.items[1]
    steps, adam_raw, _ = history.sharpness_series(1)
    _, pre, _ = history.edge_series(1)
    x, y = adam_line.getOriginalDataset()
    np.testing.assert_array_equal(x, [5, 10])  # no P before Adam's first update
    np.testing.assert_allclose(y, pre[1:])
    assert np.all(y > 10 * adam_raw[1:])  # not the raw sharpness: P⁻¹ scales it up
    np.testing.assert_allclose(adam_edge.getOriginalDataset()[1], 38 / 0.01)

    _, lion_edge = plot.items[2]
    assert lion_edge.getOriginalDataset()[0] is None or len(lion_edge.getOriginalDataset()[0]) == 0
    legend = [label.text for _, label in plot.plotItem.legend.items]
    assert legend == ["Momentum", f"Adam — {PRECONDITIONED}", f"Lion — {NO_EDGE}", EDGE_LEGEND]
    assert "not converged" not in (plot.plotItem.titleLabel.text or "")
    view.grab().save(str(tmp_path / "sharpness-edges.png"))
