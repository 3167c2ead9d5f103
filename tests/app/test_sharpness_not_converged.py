"""The Surface view shows a curvature solve that did not converge as "not converged" — a gap
in the sharpness curve named in the plot's title, words in the Hessian plane's info line —
never as a number. Real races and real (budget-starved) eigensolves on a real QThread."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import app.surface.work as surface_work
from app.surface.view import PAGE_SHARPNESS, SurfaceView
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.landscape import curvature
from core.landscape.live import WeightTap
from tests.app.test_surface_view import COLORS, _lab, _network_view, _tracked_lab


@pytest.fixture
def flaky_tracking(monkeypatch):
    """Run 0's second tracked measurement (step 5) gets 2 Hessian-vector products: it cannot
    converge; every other measurement has the normal budget."""
    import core.engine.seed_race

    real = core.engine.seed_race.SharpnessTracker

    class Flaky(real):
        def measure(self, index, model, loss_fn):
            self.calls = getattr(self, "calls", 0) + 1
            budget = self.max_products
            self.max_products = 2 if self.calls == 3 else budget  # calls: (0,0) (1,0) (0,5)
            try:
                return super().measure(index, model, loss_fn)
            finally:
                self.max_products = budget

    monkeypatch.setattr(core.engine.seed_race, "SharpnessTracker", Flaky)


def test_a_tracked_measurement_that_did_not_converge_is_a_named_gap(qtbot, flaky_tracking,
                                                                   tmp_path):
    race = NetworkRace(_tracked_lab())
    records = list(race.records())
    history = NetworkHistory(race.labels)
    history.extend(records)
    steps, values, _ = history.sharpness_series(0)
    assert list(steps) == [0, 5, 10, 15, 20] and np.isnan(values[1])
    assert np.isfinite(np.delete(values, 1)).all()

    view = _network_view(qtbot, race, history)
    surface = view.surface_view
    view.tabs.setCurrentWidget(surface)
    surface.pages.setCurrentIndex(PAGE_SHARPNESS)
    view.update_from(history)
    plot = surface.sharpness_plot
    line = plot.items[0][0]
    x, y = line.getOriginalDataset()
    assert list(x) == [0, 10, 15, 20]  # no point, and no made-up value, at step 5
    np.testing.assert_allclose(y, np.delete(values, 1))
    # No segment bridges the gap: 0 is not joined to 10; 10, 15, 20 are joined.
    assert list(line.opts["connect"]) == [False, True, True, False]
    title = plot.plotItem.titleLabel.text
    assert "not converged" in title and "SGD 0.05 at step 5" in title
    assert "SGD 0.5" not in title  # the other run converged everywhere
    assert list(plot.items[1][0].opts["connect"]) == [True, True, True, True, False]
    qtbot.wait(50)  # the title row takes its height at the next layout pass
    surface.sharpness_plot.grab().save(str(tmp_path / "sharpness.png"))


@pytest.fixture
def view(qtbot):
    tap = WeightTap(every=5)
    list(tap.records(NetworkRace(_lab(steps=10))))
    widget = SurfaceView()
    qtbot.addWidget(widget)
    widget.resize(900, 640)
    widget.set_runs(["SGD", "Adam"], COLORS)
    widget.set_tap(tap)
    yield widget
    widget.shutdown()


def test_a_hessian_plane_and_on_demand_sharpness_that_did_not_converge_say_so(
        qtbot, view, monkeypatch, tmp_path):
    starved = functools.partial(curvature.hessian_directions, max_products=2)
    monkeypatch.setattr(curvature, "hessian_directions", starved)
    view.controls.set_directions("hessian")
    view.controls.grid_spin.setValue(9)
    assert view.compute()
    qtbot.waitUntil(lambda: view.final is not None and not view.controller.is_running(),
                    timeout=15_000)
    assert np.isnan(view.final.extra["eigenvalues"]).all()
    assert view.final.axis_names == ("≈ v₁ (not converged)", "≈ v₂")
    view.grab().save(str(tmp_path / "hessian.png"))
    text = view.info.text()
    assert "λ₁, λ₂ not converged" in text and "λ₁ =" not in text and "nan" not in text

    starved_sharpness = functools.partial(surface_work.sharpness_updates, max_products=2)
    monkeypatch.setattr(surface_work, "sharpness_updates", starved_sharpness)
    assert view.compute_sharpness()
    qtbot.waitUntil(lambda: len(view.sharpness_plot.series) == 2
                    and not view.controller.is_running(), timeout=15_000)
    text = view.info.text()
    assert "SGD not converged" in text and "Adam not converged" in text and "nan" not in text
    assert "not converged (gaps)" in view.sharpness_plot.plotItem.titleLabel.text
    view.export_npz(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as data:
        assert np.isnan(data["sharpness"]).all()
        assert data["sharpness_not_converged"].tolist() == [True, True]


def test_the_comparison_table_says_not_converged_for_a_run_whose_newest_solve_failed(
        qtbot, monkeypatch):
    """Run 0's newest tracked measurement (step 20) is starved of products: its table cell
    reads "not converged" — not a blank, and not its older converged value."""
    import core.engine.seed_race

    real = core.engine.seed_race.SharpnessTracker

    class StarvedLast(real):
        def measure(self, index, model, loss_fn):
            self.calls = getattr(self, "calls", 0) + 1
            budget = self.max_products
            self.max_products = 2 if self.calls == 9 else budget  # run 0 at step 20
            try:
                return super().measure(index, model, loss_fn)
            finally:
                self.max_products = budget

    monkeypatch.setattr(core.engine.seed_race, "SharpnessTracker", StarvedLast)
    race = NetworkRace(_tracked_lab())
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    assert np.isnan(history.last_sharpness(0)) and np.isfinite(history.last_sharpness(1))
    view = _network_view(qtbot, race, history)
    view.update_from(history)
    view.flush()  # update_from draws one part per call; flush draws the rest
    header = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    column = next(c for c, text in enumerate(header) if "sharp" in text.lower())
    cells = {row[1]: row[column] for row in view.table_rows()}
    assert cells["SGD 0.05"] == "not converged"
    assert float(cells["SGD 0.5"]) == pytest.approx(history.last_sharpness(1), rel=1e-3)
