"""NetworkView against the numbers of a real (tiny) network race.

Every test drives the view with a `NetworkHistory` filled from `NetworkRace(lab).records()`, so
the curves, images and table are checked against what the engine really produced.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from app.network.views import (
    TAB_BOUNDARIES,
    TAB_CONFUSION,
    TAB_CURVES,
    NetworkView,
    NumericItem,
    RunCurvesPlot,
)
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.engine.network_records import BOUNDARY_GRID, CURVE_POINTS
from core.engine.smoothing import DEFAULT_SMOOTHING, debiased_ema
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab

MLP = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 16}, {"act": "relu"},
                  {"linear": 2}]}
MOONS = {"name": "moons", "n": 256, "noise": 0.2, "val_fraction": 0.25}
COLORS = ["#e69f00", "#56b4e9", "#009e73"]


def _lab(runs, steps=40, dataset=MOONS, model=MLP, loss="cross_entropy", eval_every=10,
         batch_size=32):
    problem = NetworkProblem(dataset=dataset, model=model, loss=loss, batch_size=batch_size,
                             eval_every=eval_every, device="cpu")
    return validate_lab(Lab(name="t", seed=5, steps=steps, problem=problem, runs=tuple(runs)))


def _race(lab):
    race = NetworkRace(lab)
    return race, list(race.records())


@pytest.fixture(scope="module")
def moons_race():
    return _race(_lab([RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
                       RunSpec("Adam", "adam", {"lr": 0.02})]))


@pytest.fixture(scope="module")
def blobs_race():
    model = {"layers": [{"linear": 16}, {"act": "relu"}, {"linear": 3}]}
    dataset = {"name": "blobs", "n": 240, "classes": 3, "val_fraction": 0.25}
    return _race(_lab([RunSpec("Adam", "adam", {"lr": 0.02}), RunSpec("SGD", "sgd", {"lr": 0.1})],
                      dataset=dataset, model=model))


@pytest.fixture(scope="module")
def linear_race():
    dataset = {"name": "linear", "n": 128, "noise": 0.1, "val_fraction": 0.2}
    return _race(_lab([RunSpec("GD", "sgd", {"lr": 0.3}), RunSpec("Adam", "adam", {"lr": 0.05})],
                      dataset=dataset, model={"layers": [{"linear": 1}]}, loss="mse",
                      batch_size=None))


@pytest.fixture(scope="module")
def diverging_race():
    return _race(_lab([RunSpec("boom", "sgd", {"lr": 1e4, "momentum": 0.99}),
                       RunSpec("fine", "adam", {"lr": 0.01})]))


def _view(qtbot, race, records=None, history=None) -> tuple[NetworkView, NetworkHistory]:
    view = NetworkView()
    qtbot.addWidget(view)
    labels = list(race.labels)
    view.set_runs(labels, COLORS[: len(labels)], race.data, total_steps=race.lab.steps)
    history = history or NetworkHistory(labels)
    if records is not None:
        history.extend(records)
        view.update_from(history)
        view.flush()  # update_from draws one part per call; flush draws the rest
    return view, history


def test_the_named_widgets_exist_and_explain_themselves(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    assert view.objectName() == "networkView"
    for name in ("lossCurves", "accuracyCurves", "smoothingSlider", "xAxisCombo", "boundaryGrid",
                 "confusionPlot", "comparisonTable", "exportCsvButton", "layerStatsPlot"):
        widget = view.findChild(object, name)
        assert widget is not None, name
        assert widget.toolTip(), f"{name} has no tooltip"
    for name in ("logLossCheck", "layerRunCombo", "confusionRunCombo", "targetLossSpin"):
        assert view.findChild(object, name).toolTip(), name


def test_update_from_puts_the_engine_numbers_in_the_curves(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    for i in range(len(race.labels)):
        steps, evals = history.steps[i], history.evals[i]
        x, y = view.loss_plot.curves[i].getOriginalDataset()
        np.testing.assert_array_equal(x, steps.column("step"))
        np.testing.assert_array_equal(y, steps.column("loss"))
        assert len(y) == len(records) == 41
        vx, vy = view.loss_plot.dashed[i].getOriginalDataset()
        np.testing.assert_array_equal(vx, evals.column("step"))
        np.testing.assert_array_equal(vy, evals.column("val_loss"))
        _, acc = view.accuracy_plot.dashed[i].getOriginalDataset()
        np.testing.assert_array_equal(acc, evals.column("val_accuracy"))
        _, train_acc = view.accuracy_plot.curves[i].getOriginalDataset()
        np.testing.assert_array_equal(train_acc, evals.column("train_accuracy"))
        _, lr = view.lr_plot.curves[i].getOriginalDataset()
        np.testing.assert_array_equal(lr, steps.column("lr"))
    # The last record's loss really is the engine's number.
    assert view.loss_plot.curves[1].getOriginalDataset()[1][-1] == records[-1].loss[1]


def test_curves_grow_batch_by_batch(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race)
    for start in range(0, len(records), 7):
        history.extend(records[start : start + 7])
        view.update_from(history)
        view.flush()
        assert len(view.loss_plot.curves[0].getOriginalDataset()[1]) == min(start + 7, 41)


def _tensorboard_ema(values, weight: float) -> np.ndarray:
    """TensorBoard's smoothing written out as a loop (resmoothDataset in its line-chart.ts):
    ``last`` starts at 0 and is divided by 1 - w**n, n counting the finite points; a non-finite
    point keeps its raw value and leaves the average alone."""
    last, n, out = 0.0, 0, []
    for x in map(float, values):
        if not math.isfinite(x):
            out.append(x)
            continue
        last = weight * last + (1 - weight) * x
        n += 1
        out.append(last / (1 - weight**n))
    return np.array(out)


def test_smoothing_draws_tensorboards_ema_over_the_raw_line_which_stays_visible(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    raw_before = view.loss_plot.curves[0].getOriginalDataset()[1].copy()
    view.smoothing_slider.setValue(80)
    assert view.smoothing == pytest.approx(0.8, abs=0.01)
    raw = view.loss_plot.curves[0]
    smooth = view.loss_plot.smoothed[0]
    _, raw_y = raw.getOriginalDataset()
    _, smooth_y = smooth.getOriginalDataset()
    np.testing.assert_array_equal(raw_y, raw_before)  # the data itself is still drawn …
    assert raw.isVisible() and 0 < raw.opts["pen"].color().alpha() < 255  # … faintly
    assert smooth.isVisible() and smooth.opts["pen"].color().alpha() == 255
    assert not np.allclose(smooth_y, raw_y)
    # Debiased: the start is not dragged towards step 0's loss (an average started at the first
    # value, as before, is off by up to 6 % here).
    np.testing.assert_allclose(smooth_y, _tensorboard_ema(raw_y, view.smoothing), rtol=1e-12)

    view.smoothing_slider.setValue(0)
    assert raw.opts["pen"].color().alpha() == 255
    assert len(view.loss_plot.smoothed[0].getOriginalDataset()[0] or []) == 0


def test_a_fresh_view_smooths_the_mini_batch_loss_from_its_first_value(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    # Readable from the first frame (why 0.9 rather than TensorBoard's 0.6: core/engine/smoothing.py).
    assert view.smoothing == DEFAULT_SMOOTHING == 0.9
    assert view.smoothing_label.text() == "0.90"
    for i in range(2):
        x, raw = view.loss_plot.curves[i].getOriginalDataset()
        sx, smooth = view.loss_plot.smoothed[i].getOriginalDataset()
        np.testing.assert_array_equal(sx, x)
        assert smooth[0] == raw[0]  # the smoothed curve starts where the data starts
        np.testing.assert_allclose(smooth, _tensorboard_ema(raw, 0.9), rtol=1e-12)

    def keys():
        return [label.text for _, label in view.loss_plot.legend.items][2:]  # after the runs

    # The legend says that the solid lines are smoothed, by how much, and what the faint one is.
    assert keys() == ["smoothed 0.90", "raw", "val"]
    view.smoothing_slider.setValue(50)
    assert keys() == ["smoothed 0.50", "raw", "val"]
    view.smoothing_slider.setValue(0)
    assert keys() == ["train", "val"]


@pytest.mark.parametrize("log_y", [False, True])
def test_bad_losses_leave_gaps_in_the_raw_line_and_do_not_bend_the_smoothed_one(qtbot, log_y):
    """NaN and inf keep their raw value and leave the average alone (TensorBoard); a loss of 0
    counts in the average on both axes (a log axis only cannot draw the raw 0)."""
    plot = RunCurvesPlot("Loss", "loss", log_y, "lossCurves", legend=False)
    qtbot.addWidget(plot)
    plot.set_runs(["a"], COLORS[:1])
    x = np.arange(300.0)
    y = np.exp(-x / 80) * (1 + 0.5 * np.random.default_rng(4).random(300))
    y[[0, 40, 41, 90]] = [np.nan, np.inf, np.nan, 0.0]
    plot.update_runs([(x, y)], smoothing=0.9)
    expected = _tensorboard_ema(y, 0.9)
    keep = np.isfinite(expected)
    sx, smooth = plot.smoothed[0].getOriginalDataset()
    np.testing.assert_array_equal(sx, x[keep])
    np.testing.assert_allclose(smooth, expected[keep], rtol=1e-12)
    assert smooth[0] == y[1]  # the first finite value
    rx, _ = plot.curves[0].getOriginalDataset()
    assert 90 not in rx if log_y else 90 in rx


def test_x_axis_epoch_and_wall_time_use_those_columns(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    view.x_axis_combo.setCurrentText("epoch")
    x, _ = view.loss_plot.curves[0].getOriginalDataset()
    np.testing.assert_array_equal(x, history.steps[0].column("epoch"))
    ex, _ = view.accuracy_plot.dashed[0].getOriginalDataset()
    np.testing.assert_array_equal(ex, history.evals[0].column("epoch"))
    assert x[-1] == pytest.approx(40 * 32 / len(race.data.y_train))
    assert view.loss_plot.plotItem.getAxis("bottom").labelText == "epoch"
    view.x_axis_combo.setCurrentText("wall time")
    x, _ = view.lr_plot.curves[1].getOriginalDataset()
    np.testing.assert_array_equal(x, history.steps[1].column("wall"))


def test_log_loss_toggle_switches_the_axis(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    assert view.loss_plot.plotItem.getAxis("left").logMode
    view.log_loss_check.setChecked(False)
    assert not view.loss_plot.plotItem.getAxis("left").logMode
    assert len(view.loss_plot.curves[0].getOriginalDataset()[1]) == 41


def test_layer_statistics_follow_the_selected_run(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race)
    for record in records:  # one batch per record: the view sees every evaluation
        history.extend([record])
        view.update_from(history)
    evaluations = [r for r in records if r.evaluation is not None]
    assert len(view.layer_plot.grad_curves) == 3  # three linear layers
    view.layer_run_combo.setCurrentIndex(1)
    assert view.confusion_run_combo.currentIndex() == 1  # one selection for both views
    x, y = view.layer_plot.grad_curves[2].getOriginalDataset()
    np.testing.assert_array_equal(x, [r.step for r in evaluations])
    np.testing.assert_allclose(y, [r.evaluation.layer_grad_norm[1, 2] for r in evaluations])
    # No update after the last step: its ratio is 0, which a log axis leaves out.
    rx, _ = view.layer_plot.ratio_curves[0].getOriginalDataset()
    assert rx[-1] < records[-1].step


def test_a_long_layer_log_shows_the_selected_runs_statistics_not_the_previous_ones(
        qtbot, moons_race):
    """The layer plot thins long logs incrementally (`GrowingThinning`); selecting another run
    gives series at the same steps, which must be thinned afresh, not appended to the last
    run's buckets."""
    from core.engine.history import LayerStatsRing

    race, records = moons_race
    view, history = _view(qtbot, race, records)
    view.resize(900, 700)
    log, rng = LayerStatsRing(), np.random.default_rng(0)
    for k in range(3000):  # far more evaluations than the plot has pixels
        grad = np.array([1 + rng.random(3), 10 + rng.random(3)])  # run 0: 1-2, run 1: 10-11
        log.append(k, k / 100, k / 10, grad, grad / 100)
    view.layer_plot.log = log
    view.layer_plot.set_layers(3)
    view.curves.draw_layers()
    shown = view.layer_plot.grad_curves[0].getData()[1]
    assert len(shown) < 3000 and (10 ** shown < 2.0).all()
    view.layer_run_combo.setCurrentIndex(1)
    shown = view.layer_plot.grad_curves[0].getData()[1]
    assert len(shown) < 3000 and (10 ** shown >= 10.0).all()


def test_boundary_images_are_one_grid_per_run_and_change_while_training(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records[:1])  # step 0 is evaluated
    first = [image.copy() for image in view.boundary_images()]
    assert len(first) == 2
    assert all(image.shape == (BOUNDARY_GRID, BOUNDARY_GRID) for image in first)
    np.testing.assert_array_equal(first[0], records[0].evaluation.boundary[0])
    history.extend(records[1:])
    view.update_from(history)
    view.flush()
    last = view.boundary_images()
    for before, after in zip(first, last):
        assert after.shape == (64, 64)
        assert np.abs(after - before).max() > 0.1
    assert view._panels[0].image.levels is not None
    assert list(view._panels[0].image.levels) == [0.0, 1.0]  # fixed: colour means P(class 1)
    assert "val acc" in view._panels[1].title


def test_snapshots_are_redrawn_only_after_a_new_evaluation(qtbot, moons_race, monkeypatch):
    race, records = moons_race
    view, history = _view(qtbot, race)
    calls = []
    original = view._draw_panel
    monkeypatch.setattr(view, "_draw_panel", lambda i: (calls.append(
        (i, view._history.last_evaluation_step)), original(i)))
    history.extend(records[:3])  # step 0 evaluated, steps 1-2 not
    view.update_from(history)
    view.flush()
    view.update_from(history)
    view.flush()
    history.extend(records[3:5])
    view.update_from(history)
    view.flush()
    assert calls == [(0, 0), (1, 0)]
    history.extend(records[5:11])  # step 10 is evaluated
    view.update_from(history)
    view.flush()
    assert calls == [(0, 0), (1, 0), (0, 10), (1, 10)]


def test_update_from_draws_one_part_per_call_and_hidden_tabs_on_show(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race)
    history.extend(records[:11])
    view.update_from(history)  # the curves tab is shown: one curve part is drawn
    drawn = [plot.curves[0].has_data() for plot in
             (view.loss_plot, view.accuracy_plot, view.lr_plot)]
    assert sum(drawn) == 1
    assert all(image is None for image in view.boundary_images())  # hidden tab: not drawn
    for _ in range(5):
        view.update_from(history)
    assert all(plot.curves[0].has_data() for plot in
               (view.loss_plot, view.accuracy_plot, view.lr_plot))
    assert all(image is None for image in view.boundary_images())
    view.tabs.setCurrentIndex(TAB_BOUNDARIES)  # shown: its pending panels are drawn at once
    assert all(image is not None for image in view.boundary_images())


def test_long_series_are_decimated_for_drawing_but_kept_whole(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    n = 50_000
    x = np.arange(n, dtype=np.float64)
    y = np.exp(-x / 1e4) + np.random.default_rng(0).random(n) * 0.01
    view.loss_plot.update_runs([(x, y), (x, y)], smoothing=0.5)
    item = view.loss_plot.curves[0]
    assert len(item.xData) <= 2000  # what is painted
    np.testing.assert_array_equal(item.getOriginalDataset()[1], y)  # what is kept
    np.testing.assert_allclose(item.yData.max(), np.log10(y.max()))  # log axis done here
    # The EMA extended incrementally equals the EMA of the whole series.
    x2 = np.arange(n + 500, dtype=np.float64)
    y2 = np.concatenate([y, y[:500]])
    view.loss_plot.update_runs([(x2, y2), (x2, y2)], smoothing=0.5)
    np.testing.assert_allclose(view.loss_plot.smoothed[0].getOriginalDataset()[1],
                               debiased_ema(y2, 0.5),
                               rtol=1e-10)
    (x0, x1), (y0, y1) = view.loss_plot.plotItem.vb.viewRange()
    assert x0 <= 0 and x1 >= n + 499 and y0 <= np.log10(y2.min()) and y1 >= np.log10(y2.max())


def test_multiclass_boundaries_are_rgba_images(qtbot, blobs_race):
    race, records = blobs_race
    view, _ = _view(qtbot, race, records)
    images = view.boundary_images()
    assert len(images) == 2
    for image in images:
        assert image.shape == (64, 64, 4) and image.dtype == np.uint8
        assert image[..., 3].min() < image[..., 3].max()  # alpha follows the confidence
    classes = records[-1].evaluation.boundary_class[0]
    colors = {tuple(images[0][r, c, :3]) for r, c in [(0, 0), (32, 32), (63, 63)]}
    assert len({int(classes[r, c]) for r, c in [(0, 0), (32, 32), (63, 63)]}) <= len(colors)
    matrix = view.confusion_matrix_shown()
    assert matrix.shape == (3, 3) and matrix.sum() == len(race.data.y_val)


def test_regression_shows_fitted_curves_and_r2(qtbot, linear_race):
    race, records = linear_race
    view, history = _view(qtbot, race, records)
    assert view.tabs.tabText(TAB_BOUNDARIES) == "Fitted curves"
    assert not view.tabs.isTabEnabled(TAB_CONFUSION)  # no confusion matrix for regression
    curves = view.fitted_curves()
    assert len(curves) == 2
    for i, (x, y) in enumerate(curves):
        assert len(x) == len(y) == CURVE_POINTS
        np.testing.assert_allclose(y, records[-1].evaluation.curve[i])
        assert x[0] == pytest.approx(float(race.data.x_train.min()))
    _, r2 = view.accuracy_plot.dashed[0].getOriginalDataset()
    np.testing.assert_array_equal(r2, history.evals[0].column("val_r2"))
    assert "R²" in view.table.horizontalHeaderItem(4).text()


def test_comparison_table_has_a_row_per_run_and_sorts_by_number(qtbot, moons_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    table = view.table
    assert table.rowCount() == 2
    assert [row[1] for row in view.table_rows()] == list(race.labels)
    final_loss = [float(history.evals[i].column("val_loss")[-1]) for i in range(2)]
    for row in view.table_rows():
        assert row[-1] == "finished"
    table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    keys = [table.item(r, 2).key() for r in range(2)]
    assert keys == sorted(final_loss)
    table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    assert [table.item(r, 2).key() for r in range(2)] == sorted(final_loss, reverse=True)
    # Numbers, not text: "10" sorts after "9".
    assert NumericItem("9", 9.0) < NumericItem("10", 10.0)
    assert not NumericItem("10", 10.0) < NumericItem("9", 9.0)
    assert NumericItem("1", 1.0) < NumericItem("—")  # missing values sort last

    # The target column: first evaluated step at or below the target validation loss.
    view.target_spin.setValue(10.0)  # every run is below at its first evaluation
    table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert [row[6] for row in view.table_rows()] == ["0", "0"]


def test_export_writes_the_table_atomically(qtbot, moons_race, tmp_path):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    target = tmp_path / "comparison"
    view.save_dialog = lambda *args: (str(target), "CSV files (*.csv)")
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    written = tmp_path / "comparison.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comparison.csv"]  # no temp file left
    with written.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert header[1] == "Run" and header[-1] == "Status"
    shown = view.table_rows()
    assert len(body) == len(shown) == 2
    assert [r[1] for r in body] == [r[1] for r in shown]  # same rows, same (sorted) order
    for row in body:
        i = list(race.labels).index(row[1])
        assert float(row[2]) == history.evals[i].column("val_loss")[-1]  # full precision
        assert row[-1] == "finished"


def test_export_reports_a_failure_instead_of_raising(qtbot, moons_race, tmp_path):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    errors = []
    view.save_dialog = lambda *args: (str(tmp_path / "missing" / "x.csv"), "")
    view.report_error = lambda parent, title, text: errors.append(text)
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert len(errors) == 1 and "x.csv" in errors[0]
    view.save_dialog = lambda *args: ("", "")  # cancelled: nothing happens
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    assert len(errors) == 1


def test_a_diverged_run_is_reported_as_diverged(qtbot, diverging_race):
    race, records = diverging_race
    view, history = _view(qtbot, race, records)
    event = history.divergences[0]
    status, _ = view.run_status(0)
    assert status == f"diverged at {event.step}"
    assert view.table_rows()[0][-1] == status
    assert view.table_rows()[1][-1] == "finished"
    assert f"diverged at {event.step}" in view._panels[0].title
    # Its curve holds only finite numbers and stops where it diverged.
    x, y = view.loss_plot.curves[0].getOriginalDataset()
    assert np.isfinite(y).all() and x[-1] < event.step
    image = view.boundary_images()[0]
    assert image is None or np.isfinite(image).all()


def test_set_runs_rebuilds_and_clear_empties(qtbot, moons_race, blobs_race):
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    item_count = len(view.loss_plot.plotItem.items)
    view.set_runs(list(race.labels), COLORS[:2], race.data)
    assert len(view.loss_plot.plotItem.items) == item_count  # old items removed, not piled up
    view.update_from(history)
    view.flush()
    view.clear()
    assert len(view.loss_plot.curves[0].getOriginalDataset()[0] or []) == 0
    assert all(image is None for image in view.boundary_images())
    assert view.table.rowCount() == 2 and view.table_rows()[0][2] == "—"

    blobs, blob_records = blobs_race
    view.set_runs(["only"], COLORS[:1], blobs.data)
    assert view.table.rowCount() == 1 and len(view._panels) == 1
    assert len(view.confusion_texts) == 9


def test_every_tab_paints(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    view.smoothing_slider.setValue(50)
    view.resize(900, 700)
    for index in range(view.tabs.count()):
        view.tabs.setCurrentIndex(index)
        image = view.grab()
        assert not image.isNull() and image.width() == 900


# -- several seeds: mean ± std bands ----------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_race():
    problem = NetworkProblem(dataset=MOONS, model=MLP, batch_size=32, eval_every=10,
                             device="cpu", seeds=3)
    lab = validate_lab(Lab(name="t", seed=5, steps=30, problem=problem,
                           runs=(RunSpec("SGD", "sgd", {"lr": 0.1, "momentum": 0.9}),
                                 RunSpec("Adam", "adam", {"lr": 0.02}))))
    return _race(lab)


def test_one_seed_draws_no_bands(qtbot, moons_race):
    race, records = moons_race
    view, _ = _view(qtbot, race, records)
    for plot in (view.loss_plot, view.accuracy_plot):
        assert plot.bands == [None, None] and plot.dashed_bands == [None, None]


def test_several_seeds_draw_mean_plus_minus_std_bands(qtbot, seeded_race):
    import pyqtgraph as pg

    race, records = seeded_race
    view, history = _view(qtbot, race, records)
    view.smoothing_slider.setValue(0)  # the loss band as measured
    for i in range(2):
        evals = history.evals[i]
        # Accuracy (linear axis): train band under the solid line, val band under the dashed.
        for dashed, name in ((False, "train_accuracy"), (True, "val_accuracy")):
            x, lower, upper = view.accuracy_plot.band_data(i, dashed=dashed)
            mean, std = evals.column(name), evals.column(f"{name}_std")
            np.testing.assert_array_equal(x, evals.column("step"))
            np.testing.assert_allclose(lower, mean - std)
            np.testing.assert_allclose(upper, mean + std)
            band = (view.accuracy_plot.dashed_bands if dashed else view.accuracy_plot.bands)[i]
            assert isinstance(band.fill, pg.FillBetweenItem)
            assert band.fill in view.accuracy_plot.plotItem.items
            assert band.fill.brush().color().alpha() == 50
            assert band.fill.brush().color().rgb() == pg.mkColor(COLORS[i]).rgb()
            assert not band.fill.path().isEmpty()
        # Loss (log axis): the mini-batch mean ± std; a lower edge <= 0 is floored.
        x, lower, upper = view.loss_plot.band_data(i)
        mean, std = history.steps[i].column("loss"), history.steps[i].column("loss_std")
        np.testing.assert_array_equal(x, history.steps[i].column("step"))
        np.testing.assert_allclose(upper, mean + std)
        np.testing.assert_allclose(lower, np.where(mean - std > 0, mean - std, mean / 10))
        np.testing.assert_allclose(std, [r.loss_std[i] for r in records])
        assert std.max() > 0
        _, vlow, vup = view.loss_plot.band_data(i, dashed=True)
        vmean, vstd = evals.column("val_loss"), evals.column("val_loss_std")
        np.testing.assert_allclose(vup, vmean + vstd)
        np.testing.assert_allclose(vlow, np.where(vmean - vstd > 0, vmean - vstd, vmean / 10))


def test_the_solid_band_is_smoothed_like_its_line(qtbot, seeded_race):
    race, records = seeded_race
    view, history = _view(qtbot, race, records)
    view.smoothing_slider.setValue(50)
    a = view.smoothing
    x, lower, upper = view.loss_plot.band_data(0)
    mean, std = history.steps[0].column("loss"), history.steps[0].column("loss_std")
    np.testing.assert_allclose(upper, debiased_ema(mean + std, a))
    view.smoothing_slider.setValue(0)
    _, _, upper = view.loss_plot.band_data(0)
    np.testing.assert_allclose(upper, mean + std)

    # Streamed a few records per frame (each frame smooths only the new points), at the default.
    streamed, history = _view(qtbot, race)
    for start in range(0, len(records), 4):
        history.extend(records[start : start + 4])
        streamed.update_from(history)
        streamed.flush()
    for i in range(2):
        mean, std = history.steps[i].column("loss"), history.steps[i].column("loss_std")
        x, lower, upper = streamed.loss_plot.band_data(i)
        np.testing.assert_allclose(upper, debiased_ema(mean + std, DEFAULT_SMOOTHING), rtol=1e-12)
        smooth_mean = streamed.loss_plot.smoothed[i].getOriginalDataset()[1]
        np.testing.assert_allclose((lower + upper) / 2, smooth_mean, rtol=1e-12)  # about its line


def test_the_comparison_table_shows_mean_plus_minus_std(qtbot, seeded_race):
    race, records = seeded_race
    view, history = _view(qtbot, race, records)
    last = records[-1].evaluation
    rows = {row[1]: row for row in view.table_rows()}
    for i, label in enumerate(race.labels):
        loss, loss_std = last.val["loss"][i], last.val_std["loss"][i]
        acc, acc_std = last.val["accuracy"][i], last.val_std["accuracy"][i]
        assert rows[label][2] == f"{loss:.4g} ± {loss_std:.2g}"
        assert rows[label][4] == f"{acc:.1%} ± {acc_std:.1%}"
    # Sorting and the CSV export still use the mean.
    item = view._table_items[0][2]
    assert item.key() == pytest.approx(float(last.val["loss"][0]))


def test_a_new_axis_range_waits_for_a_redraw_of_its_own_while_streaming(qtbot, moons_race):
    """A new range (axis re-layout, every curve repainted) is the costliest redraw, so while
    streaming, data that still mostly shows is drawn in one update_from call and the range set
    in the next: no single redraw does both. Data mostly out of view (the first data) gets its
    range at once; a flush (end of a race, a screenshot) does both at once."""
    race, records = moons_race
    view, history = _view(qtbot, race)
    vb = view.loss_plot.plotItem.vb
    history.extend(records[:19])
    view.update_from(history)  # the first data: fitted at once, it was out of view
    (x0, x1), _ = vb.viewRange()
    assert x0 <= 0 and x1 >= 18 and not view.loss_plot.fit_pending
    view.flush()
    vb.setRange(xRange=(0, 15), yRange=vb.viewRange()[1], padding=0)  # an older, narrower range
    history.extend(records[19:20])
    for _ in range(10):  # round-robin: until the loss part is drawn again
        view.update_from(history)
        if len(view.loss_plot.curves[0].getOriginalDataset()[1]) == 20:
            break
    assert vb.viewRange()[0] == [0.0, 15.0]  # not re-ranged in the same call
    assert view.loss_plot.fit_pending
    accuracy_drawn = view.accuracy_plot.curves[0].getOriginalDataset()[1].copy()
    view.update_from(history)  # the next call sets the range, and draws nothing else
    (x0, x1), _ = vb.viewRange()
    assert x0 <= 0 and x1 >= 19 and not view.loss_plot.fit_pending
    np.testing.assert_array_equal(view.accuracy_plot.curves[0].getOriginalDataset()[1],
                                  accuracy_drawn)
    # A few redraws later every curve is drawn inside its plot's range.
    for _ in range(8):
        view.update_from(history)
    for plot in (view.loss_plot, view.accuracy_plot, view.lr_plot):
        (x0, x1), (y0, y1) = plot.plotItem.vb.viewRange()
        x, y = plot.curves[0].xData, plot.curves[0].yData
        assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1
    # flush fits at once.
    history.extend(records[20:])
    view.update_from(history)
    view.flush()
    assert not any(plot.fit_pending for plot in (view.loss_plot, view.accuracy_plot,
                                                 view.lr_plot, view.layer_plot))
    assert vb.viewRange()[0][1] >= 40


def test_plots_that_share_an_x_axis_get_a_new_range_in_separate_redraws(qtbot, moons_race):
    """The accuracy plot shows the loss plot's steps, and the ratio plot the gradient plot's:
    while streaming, the follower copies its leader's new x range one redraw later (two axes
    re-laid out and every curve of both repainted in one turn were the race's slowest frames);
    a few redraws later all four ranges agree."""
    race, records = moons_race
    view, history = _view(qtbot, race)
    history.extend(records[:19])
    view.update_from(history)
    view.flush()
    pairs = ((view.loss_plot.plotItem.vb, view.accuracy_plot.plotItem.vb),
             (view.layer_plot.grad_plot.vb, view.layer_plot.ratio_plot.vb))
    for leader, follower in pairs:
        assert leader.viewRange()[0] == follower.viewRange()[0]
        for vb in (leader, follower):  # an older range the data has just left
            vb.setRange(xRange=(0, 16), yRange=vb.viewRange()[1], padding=0)
    history.extend(records[19:21])
    both_moved_in_one_turn = False
    for _ in range(30):
        before = [vb.viewRange()[0] for pair in pairs for vb in pair]
        view.update_from(history)
        after = [vb.viewRange()[0] for pair in pairs for vb in pair]
        moved = [b != a for b, a in zip(before, after)]
        both_moved_in_one_turn |= (moved[0] and moved[1]) or (moved[2] and moved[3])
    assert not both_moved_in_one_turn
    for leader, follower in pairs:
        assert leader.viewRange()[0][1] >= records[20].step
        assert follower.viewRange()[0] == leader.viewRange()[0]


def test_zooming_one_of_two_plots_that_share_an_x_axis_zooms_both(qtbot, moons_race):
    """Panned or zoomed by the user, the loss and accuracy plots move together (as pyqtgraph's
    linked views would) and both stop following the data; a double click on either follows
    the data again with both."""
    race, records = moons_race
    view, history = _view(qtbot, race, records)
    view.flush()
    loss_vb, accuracy_vb = view.loss_plot.plotItem.vb, view.accuracy_plot.plotItem.vb
    accuracy_vb.setXRange(5, 15, padding=0)  # as a mouse drag does, then it says so:
    accuracy_vb.sigRangeChangedManually.emit([True, True])
    assert loss_vb.viewRange()[0] == accuracy_vb.viewRange()[0] == [5.0, 15.0]
    assert not view.loss_plot.follow and not view.accuracy_plot.follow
    history.extend([])
    view.update_from(history)
    view.flush()  # new draws do not undo the user's zoom
    assert loss_vb.viewRange()[0] == [5.0, 15.0]
    view.layer_plot.ratio_plot.vb.setXRange(2, 9, padding=0)
    view.layer_plot.ratio_plot.vb.sigRangeChangedManually.emit([True, True])
    assert view.layer_plot.grad_plot.vb.viewRange()[0] == [2.0, 9.0]
    assert not view.layer_plot.follow
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    centre = QPointF(view.accuracy_plot.rect().center())
    event = QMouseEvent(QEvent.Type.MouseButtonDblClick, centre, centre,
                        Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton,
                        Qt.KeyboardModifier.NoModifier)
    view.accuracy_plot.mouseDoubleClickEvent(event)
    assert view.loss_plot.follow and view.accuracy_plot.follow
    (x0, x1), _ = loss_vb.viewRange()
    assert x0 <= 0 and x1 >= records[-1].step
    assert accuracy_vb.viewRange()[0] == loss_vb.viewRange()[0]


def test_fast_curve_bounds_equal_pyqtgraphs_after_new_data_and_a_zoom(qtbot):
    """FastCurve computes its bounding rect its own (cheaper) way: it must be pyqtgraph's rect,
    or curves would leave paint trails or be clipped."""
    import pyqtgraph as pg

    from app.widgets.curves import FastCurve

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    curve = FastCurve(pen=pg.mkPen("w", width=1), skipFiniteCheck=True)
    widget.plotItem.addItem(curve)
    x = np.linspace(0, 50, 300)
    for y in (np.sin(x), 3 * np.cos(x) + 10):
        curve.setData(x, y)
        widget.plotItem.vb.setRange(xRange=(0, 60), yRange=(-5, 15), padding=0)
        qtbot.wait(10)
        assert curve.boundingRect() == pg.PlotCurveItem.boundingRect(curve)
        widget.plotItem.vb.setRange(xRange=(10, 20), yRange=(0, 1), padding=0)  # a zoom
        qtbot.wait(10)
        assert curve.boundingRect() == pg.PlotCurveItem.boundingRect(curve)
    curve.setData(x, np.where(x > 25, np.nan, x))  # non-finite data: pyqtgraph's own path
    assert curve.boundingRect() == pg.PlotCurveItem.boundingRect(curve)


def test_the_accuracy_axis_never_shows_ticks_beyond_zero_and_one(qtbot, blobs_race):
    race, records = blobs_race
    view, history = _view(qtbot, race, records)
    view.resize(900, 500)
    view.show()
    qtbot.waitExposed(view)
    best = max(float(np.nanmax(history.evals[i].column("val_accuracy")))
               for i in range(len(race.labels)))
    assert best > 0.97  # blobs are easy: the curves reach (almost) 100 %, where padding hits 1.1
    plot = view.accuracy_plot
    view.accuracy_plot.fit_view(force=True)
    y0, y1 = plot.plotItem.vb.viewRange()[1]
    assert best <= y1 <= 1.02 and y0 >= -0.02  # all data shown, only a hair of headroom
    axis = plot.getAxis("left")
    ticks = [v for _spacing, values in axis.tickValues(y0, y1, axis.height()) for v in values]
    assert ticks and max(ticks) <= 1.0 + 1e-9 and min(ticks) >= 0.0
    # Panning the view up does not take it past 1 either.
    plot.plotItem.vb.setYRange(0.9, 1.3, padding=0)
    assert plot.plotItem.vb.viewRange()[1][1] <= 1.02


def test_per_layer_curves_hold_every_evaluation_when_redraws_are_rarer(qtbot):
    """At Max speed the race evaluates several times between two redraws: the per-layer plot
    still gets every evaluation, not only the newest."""
    race, records = _race(_lab([RunSpec("Adam", "adam", {"lr": 0.02})], steps=40, eval_every=2))
    view, history = _view(qtbot, race)
    for start in range(0, len(records), 9):  # a redraw every 9 steps: ~4 evaluations each
        history.extend(records[start:start + 9])
        view.update_from(history)
    view.flush()
    evaluated = [r.step for r in records if r.evaluation is not None]
    x, _ = view.layer_plot.grad_curves[0].getOriginalDataset()
    assert list(x) == evaluated[1:] or list(x) == evaluated  # step 0 has no update ratio yet
    assert len(x) >= len(evaluated) - 1


def test_streamed_curve_plots_repaint_one_rectangle_per_frame(qtbot):
    """Changed curves whose rects union to an L (a long high run beside a short low one) gave
    pyqtgraph's minimal update a clip of two rectangles, under which Qt strokes every curve about
    twice as slowly: late in a long race every other loss-plot frame took twice as long. Each
    redraw must repaint one rectangle."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from app.network.views import RunCurvesPlot

    plot = RunCurvesPlot("Loss", "loss", False, "lossCurves")
    qtbot.addWidget(plot)
    plot.resize(420, 380)
    plot.set_runs(["long", "short"], COLORS[:2])
    plot.show()
    qtbot.waitExposed(plot)

    class PaintRegions(QObject):
        def __init__(self):
            super().__init__()
            self.rects: list[int] = []

        def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
            if event.type() == QEvent.Type.Paint:
                self.rects.append(event.region().rectCount())
            return False

    regions = PaintRegions()
    plot.viewport().installEventFilter(regions)
    rng = np.random.default_rng(0)
    none = (np.empty(0), np.empty(0))
    for k in range(1, 6):
        x = np.arange(1000.0 * k)
        high = 1.0 + 0.3 * rng.random(len(x))
        low = 0.2 + 0.05 * rng.random(len(x) // 2)
        plot.update_runs([(x, high), (x[: len(low)], low)], [none, none])
        QApplication.processEvents()
    assert len(regions.rects) >= 4  # every update was painted
    assert set(regions.rects) == {1}


@pytest.mark.parametrize("log_y", [False, True])
def test_streamed_curves_draw_what_a_fresh_plot_draws_while_the_history_thins_itself(
        qtbot, log_y):
    """Each frame only reads the points added since the last one (`ValidPrefix`,
    `GrowingThinning`): frame after frame, through the history thinning its own buffer in
    place, a NaN, a zero on the log axis and a change of smoothing, every curve must show exactly
    what a plot that forgets everything before each frame shows."""
    from app.network.views import RunCurvesPlot
    from core.engine.history import RunSeries

    plots = []
    for name in ("streamed", "fresh"):
        plot = RunCurvesPlot("Loss", "loss", log_y, name, legend=False)
        qtbot.addWidget(plot)
        plot.resize(150, 200)  # a narrow plot: a small point budget, so thinning happens
        plot.set_runs(["a", "b"], COLORS[:2])
        plot.show()
        qtbot.waitExposed(plot)
        plots.append(plot)
    streamed, fresh = plots
    series = [RunSeries(capacity=1024) for _ in range(2)]
    rng = np.random.default_rng(3)
    step = 0
    for frame in range(60):
        for run, s in enumerate(series):
            n = int(rng.integers(1, 90))
            steps = np.arange(step, step + n, dtype=float)
            loss = np.exp(-steps / 3000.0) * (1 + 0.3 * rng.random(n))
            if frame == 20 and run == 1:
                loss[n // 2] = np.nan  # a bad value mid-series: left out from then on
            if frame == 30 and run == 0:
                loss[0] = 0.0  # no place on a log axis
            rows = np.zeros((len(s.fields), n))
            rows[s.fields.index("step")], rows[s.fields.index("loss")] = steps, loss
            s.extend(rows)
        step += 90
        smoothing = 0.6 if frame < 45 else 0.9
        data = [(s.column("step"), s.column("loss")) for s in series]
        dashed = [(x[::7], y[::7]) for x, y in data]
        streamed.update_runs(data, dashed, smoothing)
        fresh.invalidate()
        fresh.update_runs(data, dashed, smoothing)
        for kind in ("curves", "smoothed", "dashed"):
            for mine, theirs in zip(getattr(streamed, kind), getattr(fresh, kind)):
                np.testing.assert_array_equal(mine.getData()[0], theirs.getData()[0])
                # The EMA extended by its new points differs from one computed afresh in the
                # last bit only.
                np.testing.assert_allclose(mine.getData()[1], theirs.getData()[1], rtol=1e-12,
                                           atol=1e-12)
    assert len(series[0]) < 60 * 45  # the history did thin itself in place
    assert len(streamed.curves[0].getData()[0]) <= streamed._budget()  # and so did the plot
    assert streamed.smoothed[0].thinning.size > 1


def _key_above_data(legend, plot, items) -> None:
    """``legend`` is shown between ``plot``'s title and its data, inside the plot, over none of
    the points drawn by ``items``."""
    assert legend.isVisible()
    key, data = legend.sceneBoundingRect(), plot.vb.sceneBoundingRect()
    assert key.bottom() <= data.top() + 0.5, (key, data)  # above the data
    assert plot.sceneBoundingRect().adjusted(-0.5, -0.5, 0.5, 0.5).contains(key)  # fits
    drawn = 0
    for item in items:
        x, y = item.getData()
        for point in zip(x, y):
            assert not key.contains(plot.vb.mapViewToScene(pg.Point(*point)))
            drawn += 1
    assert drawn > 0


def test_the_legends_sit_above_the_data_and_hide_none_of_it(qtbot, moons_race):
    """The loss plot's key (runs, "smoothed 0.90", "raw", "val") and the per-layer plot's
    ("L1 L2 L3") are rows between the title and the data: no curve point is under them (they
    were boxes over the newest steps), they fit their plot, and both per-layer plots keep their
    data areas level."""
    race, records = moons_race
    view, history = _view(qtbot, race)
    view.resize(815, 690)  # its size in a 1280×800 window (also about its smallest)
    view.show()
    qtbot.waitExposed(view)
    history.extend(records)
    view.update_from(history)
    view.flush()
    qtbot.wait(20)
    loss, layers = view.loss_plot, view.layer_plot
    texts = [label.text for _, label in loss.legend.items]
    assert texts == ["SGD", "Adam", "smoothed 0.90", "raw", "val"]
    assert [label.text for _, label in layers.legend.items] == ["L1", "L2", "L3"]
    _key_above_data(loss.legend, loss.plotItem, loss.curves + loss.smoothed + loss.dashed)
    _key_above_data(layers.legend, layers.grad_plot, layers.grad_curves)
    assert layers.grad_plot.vb.sceneBoundingRect().top() == pytest.approx(
        layers.ratio_plot.vb.sceneBoundingRect().top(), abs=0.5)


def test_a_narrow_plot_wraps_its_key_and_a_short_one_keeps_the_runs_named(qtbot):
    """Narrow, the key wraps over more lines (still above the data, inside the plot); when all
    its lines would take more than `LEGEND_MAX_FRACTION` of the plot's height it drops the
    line-style key but still names every run (hidden, it left runs of similar colour unnamed)."""
    plot = RunCurvesPlot("Loss", "loss", True, "lossCurves")
    qtbot.addWidget(plot)
    plot.set_runs(["SGD", "Momentum", "Adam"], COLORS)
    x = np.arange(200.0)
    plot.update_runs([(x, np.exp(-x / 50) + 0.1)] * 3, smoothing=0.9)
    plot.resize(260, 520)
    plot.show()
    qtbot.waitExposed(plot)
    qtbot.wait(20)
    _key_above_data(plot.legend, plot.plotItem, plot.curves + plot.smoothed)
    assert plot.legend.line_count() >= 3
    plot.resize(160, 200)
    qtbot.wait(20)
    assert plot.legend.isVisible() and plot.legend.runs_only
    shown = [label.text for _, label in plot.legend.items if label.isVisible()]
    assert shown == ["SGD", "Momentum", "Adam"]
    _key_above_data(plot.legend, plot.plotItem, plot.curves + plot.smoothed)
    plot.resize(700, 400)
    qtbot.wait(20)
    assert plot.legend.isVisible() and plot.legend.line_count() == 1
    assert not plot.legend.runs_only
    _key_above_data(plot.legend, plot.plotItem, plot.curves + plot.smoothed)


@pytest.fixture(scope="module")
def long_race():
    return _race(_lab([RunSpec("SGD", "sgd", {"lr": 0.1}), RunSpec("Adam", "adam", {"lr": 0.02})],
                      steps=300, eval_every=25))


def _x_ranges(view) -> list[tuple[float, float]]:
    """The x ranges of the loss, accuracy, lr and both per-layer plots."""
    layers = view.layer_plot
    return [tuple(vb.viewRange()[0])
            for vb in (view.loss_plot.plotItem.vb, view.accuracy_plot.plotItem.vb,
                       view.lr_plot.plotItem.vb, layers.grad_plot.vb, layers.ratio_plot.vb)]


def test_the_views_of_a_race_show_one_x_range_that_ends_at_the_race(qtbot, long_race):
    """While streaming, loss, accuracy, learning rate and the per-layer plots show the same steps
    at every moment (the lr and per-layer plots re-ranged in frames of their own); the x axis never runs far past the race's
    last step (a 1000-step race ended on 0 … 1600), also when the race ran while another tab
    was shown; and its last tick is not cut."""
    race, records = long_race
    steps = race.lab.steps
    view, history = _view(qtbot, race)
    view.resize(815, 690)
    view.show()
    qtbot.waitExposed(view)
    for start in range(0, len(records), 20):
        history.extend(records[start:start + 20])
        view.update_from(history)
        view.flush()
        ranges = _x_ranges(view)
        assert all(r == ranges[0] for r in ranges), ranges
    x0, x1 = _x_ranges(view)[0]
    assert steps <= x1 <= steps * 1.03, (x0, x1)
    # A new race (Play again, another lab): no plot keeps this race's axes before its first
    # step (the per-layer plots kept 0 … 300 until the next race's first evaluation).
    view.set_runs(list(race.labels), COLORS[:2], race.data, total_steps=steps)
    starts = _x_ranges(view)
    assert all(start == starts[0] for start in starts), starts
    assert starts[0][1] <= 100
    # The same race drawn while the boundaries tab was shown, then the curves tab opened.
    hidden, hidden_history = _view(qtbot, race)
    hidden.resize(815, 690)
    hidden.show()
    qtbot.waitExposed(hidden)
    hidden.tabs.setCurrentIndex(TAB_BOUNDARIES)
    for start in range(0, len(records), 20):
        hidden_history.extend(records[start:start + 20])
        hidden.update_from(hidden_history)
    hidden.tabs.setCurrentIndex(TAB_CURVES)
    hidden.update_from(hidden_history)
    hidden.flush()
    for x0, x1 in _x_ranges(hidden):
        assert steps <= x1 <= steps * 1.03, (x0, x1)
