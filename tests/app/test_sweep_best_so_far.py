"""Sweep ▸ Best so far: each trial's dot sits on its objective, on the same y axis as the
best-so-far line, in linear and in log mode.

The dots were once a ScatterPlotItem, which ignores the plot's log mode: on a log axis a trial
of objective 0.2004 was drawn at 10^0.2004 ≈ 1.6, far above the line through 0.2004.
"""

from __future__ import annotations

import math

import optuna
import pyqtgraph as pg
import pytest

from app.tools.sweep_views import BestSoFarPlot


def _trials(values):
    study = optuna.create_study()
    lr = optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)
    for i, value in enumerate(values):
        study.add_trial(optuna.trial.create_trial(params={"lr": 10.0 ** -(i % 4 + 1)},
                                                  distributions={"lr": lr}, value=value))
    return study.trials


def _drawn(plot: BestSoFarPlot):
    """(dots, line vertices) in view coordinates, read from the items the plot draws."""
    vb = plot.plotItem.vb
    dots, line = [], []
    for item in vb.allChildren():
        if isinstance(item, pg.ScatterPlotItem) and item.isVisible():
            for spot in item.points():
                p = vb.mapFromItemToView(item, spot.pos())
                dots.append((p.x(), p.y()))
        elif isinstance(item, pg.PlotCurveItem) and item.isVisible():
            x, y = item.getData()
            for xi, yi in zip(x, y):
                p = vb.mapFromItemToView(item, pg.QtCore.QPointF(float(xi), float(yi)))
                line.append((p.x(), p.y()))
    return dots, line


@pytest.mark.parametrize("values, log", [
    ([0.5, 0.2004, 0.3, 0.1, 0.4, 0.05], True),
    ([0.5, -0.2, 0.3, -1.5, 0.4, -1.0], False),
], ids=["positive: log axis", "signed: linear axis"])
def test_each_dot_sits_on_its_objective_and_on_the_line_where_it_is_the_best(
        qtbot, values, log):
    plot = BestSoFarPlot()
    qtbot.addWidget(plot)
    plot.update_trials(_trials(values))
    assert plot.plotItem.ctrl.logYCheck.isChecked() == log
    dots, line = _drawn(plot)
    assert len(dots) == len(values)
    to_view = (lambda v: math.log10(v)) if log else (lambda v: v)
    for (x, y), value in zip(sorted(dots), values):
        assert y == pytest.approx(to_view(value), abs=1e-9), f"trial {x:g}"
    best = math.inf
    for number, value in enumerate(values):
        if value < best:  # a new best: the line steps down onto this trial's dot
            best = value
            dot_y = next(y for x, y in dots if x == number)
            at_x = [y for x, y in line if x == number]
            assert any(y == pytest.approx(dot_y, abs=1e-9) for y in at_x), (
                f"trial {number}: dot at {dot_y}, line at {at_x}")
