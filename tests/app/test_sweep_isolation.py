"""The sweep window's Isolation tab after a real grid sweep: for the picked hyperparameter it
plots, per value, the best objective of the trials table's rows with that value (a plain
group-by of the table), and the window says when the best trial lies at an edge of a range."""

from __future__ import annotations

import numpy as np
import pytest

from app.shell.document import LabDocument
from app.shell.plot_help import PLOT_HELP, help_text
from app.tools.sweep_window import SweepWindow
from core.lab.format import FunctionProblem, Lab, RunSpec, validate_lab


@pytest.fixture
def swept(qtbot):
    lab = validate_lab(Lab(name="banana", steps=12,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("SGD", "sgd", {"lr": 1e-4, "momentum": 0.5}),)))
    window = SweepWindow(LabDocument(lab))
    qtbot.addWidget(window)
    window.space.tick("lr").set_range("1e-5", "1e-3", log=True, points=3)
    window.space.tick("momentum").set_range("0", "0.9", log=False, points=2)
    window.sampler_combo.setCurrentIndex(window.sampler_combo.findData("grid"))
    window.prune_check.setChecked(False)
    window.trials_spin.setValue(50)
    with qtbot.waitSignal(window.sweep_finished, timeout=30_000):
        assert window.start()
    yield window
    window.shutdown()


def _best_per(rows, header, name):
    """{value of ``name``: lowest objective of the rows with it}, by a plain loop."""
    col, val = header.index(name), header.index("value")
    best: dict = {}
    for row in rows:
        best[row[col]] = min(best.get(row[col], np.inf), row[val])
    return best


def test_isolation_tab_plots_the_best_per_value_and_the_edge_warning(swept):
    window = swept
    views = window.views
    assert views.tabText(views.indexOf(views.isolation)) == "Isolation"
    rows, header = views.table.shown_rows(), views.table.header
    assert len(rows) == 6
    iso_view = views.isolation
    views.setCurrentWidget(iso_view)
    for name, log in (("lr", True), ("momentum", False)):
        iso_view.pick(name)
        expected = _best_per(rows, header, name)
        x, y = iso_view.best_line.getOriginalDataset()  # the values, before the log axes
        np.testing.assert_allclose(x, sorted(expected), rtol=1e-12)
        np.testing.assert_allclose(y, [expected[k] for k in sorted(expected)], rtol=0)
        assert iso_view.plot.plotItem.ctrl.logXCheck.isChecked() is log
        assert len(iso_view.dots.getData()[0]) == 6  # every trial behind the curve
    # The best of 12 steps from (-1.5, 2) is the largest lr of the grid: at the range's edge.
    best_lr = min(rows, key=lambda r: r[header.index("value")])[header.index("lr")]
    assert best_lr == 1e-3
    assert window.boundary_label.isVisibleTo(window)
    assert ("best lr 0.001 lies at the upper edge of [1e-05, 0.001] (log scale)"
            in window.boundary_label.text())
    iso_view.pick("lr")  # its upper end is drawn as the warning, the lower one is not
    assert iso_view.warned_sides == {"upper"}
    low_line, high_line = iso_view.edges
    assert (low_line.value(), high_line.value()) == pytest.approx((-5.0, -3.0))  # decades
    assert high_line.pen.color().name() != low_line.pen.color().name()
    assert help_text(iso_view.plot) == PLOT_HELP["isolationPlot"]
