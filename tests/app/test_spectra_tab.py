"""The network view's Spectra tab (app/network/spectra_tab.py) against a real matrix race: its
lines are the records' singular values of each run's update, divided by the largest, and Muon's
profile is the flat one."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from app.network.views import NetworkView
from core.engine.history import NetworkHistory
from core.engine.network_race import NetworkRace
from core.lab.format import Lab, NetworkProblem, RunSpec, validate_lab


def test_the_spectra_tab_draws_each_runs_update_singular_values(qtbot):
    problem = NetworkProblem(dataset={"name": "low_rank", "n": 256, "dims": 8, "rank": 2},
                             model={"layers": [{"linear": 8}, {"linear": 8}]}, loss="mse",
                             batch_size=None, eval_every=5, device="cpu")
    runs = (RunSpec("muon", "muon", {"lr": 0.02, "weight_decay": 0.0}),
            RunSpec("adam", "adam", {"lr": 0.01}))
    lab = validate_lab(Lab(name="t", seed=0, steps=20, problem=problem, runs=runs))
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_runs(list(race.labels), ["#e69f00", "#56b4e9"], race.data, 20)
    view.update_from(history)
    tab = view.spectra
    view.show()
    qtbot.waitExposed(view)
    view.tabs.setCurrentWidget(tab)  # shown: the tab draws itself (and polls while shown)
    assert [step for step, _ in history.update_spectra] == [0, 5, 10, 15]  # none after step 20
    assert tab.layer_box.count() == 2
    for run in (0, 1):
        view.select_run(run)
        tab.layer_box.setCurrentIndex(1)
        tab.draw()
        expected = np.stack([s[run][1] / s[run][1][0] for _, s in history.update_spectra])
        for k, curve in enumerate(tab.time_curves):
            x, y = curve.xData, curve.yData  # the data, not its log10 on screen
            np.testing.assert_array_equal(x, [0, 5, 10, 15])
            np.testing.assert_allclose(y, expected[:, k])
    assert len(tab.profile_curves) == 2
    muon, adam = (curve.yData for curve in tab.profile_curves)
    assert np.median(muon) > 2 * np.median(adam)  # the orthogonalised update is the flatter
    assert "largest half of the singular values spans" in tab.caption.text()


def test_the_window_opens_trains_and_draws_a_matrix_lab(qtbot, window, tmp_path):
    from core.lab.format import save_lab

    problem = NetworkProblem(dataset={"name": "matrix_regression", "n": 128, "dims": 8,
                                      "condition": 100.0},
                             model={"layers": [{"linear": 8, "bias": False}]}, loss="mse",
                             batch_size=None, eval_every=10, device="cpu")
    lab = validate_lab(Lab(name="matrix", seed=0, steps=40, problem=problem,
                           runs=(RunSpec("Muon", "muon", {"lr": 0.02}),
                                 RunSpec("Adam", "adam", {"lr": 0.01}))))
    path = tmp_path / "matrix.lab.json"
    save_lab(lab, path)
    assert window.open_lab(path)
    finished = []
    window.race_finished.connect(lambda *args: finished.append(args))
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    window.play()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    view = window.network_view
    view.tabs.setCurrentWidget(view.spectra)
    view.spectra.draw(force=True)
    assert len(view.spectra.profile_curves) == 2 and len(view.spectra.time_curves) == 8
    assert "Finished" in window.status_label.text()


def test_the_layer_editor_keeps_a_linear_layer_without_bias_when_its_width_changes(qtbot):
    from PySide6.QtWidgets import QLabel, QTableWidget

    from app.network.layer_rows import COL_KIND, COL_VALUE
    from app.network.problem_panel import NetworkProblemPanel
    from tests.app.recorder import Recorder

    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(Lab(name="m", seed=0, steps=20, problem=NetworkProblem(
        dataset={"name": "low_rank", "n": 128, "dims": 8},
        model={"layers": [{"linear": 16, "bias": False}, {"linear": 8, "bias": False}]},
        loss="mse"), runs=(RunSpec("Muon", "muon", {"lr": 0.02}),)))
    recorder = Recorder(panel)
    table = panel.findChild(QTableWidget, "layerList")
    assert table.cellWidget(0, COL_KIND).currentData() == "linear"
    assert table.cellWidget(0, COL_VALUE).value() == 16
    assert panel.findChild(QLabel, "paramCount").text() == "256 parameters"  # 8·16 + 16·8
    table.cellWidget(0, COL_VALUE).setValue(4)
    assert recorder.last.problem.model["layers"][0] == {"linear": 4, "bias": False}
    assert panel.findChild(QLabel, "paramCount").text() == "64 parameters"


def test_the_profile_key_is_a_row_above_the_data_naming_every_run(qtbot):
    """pyqtgraph's legend box sat in the plot's top-right corner, over the end of Muon's flat
    profile (it stays near 1, at the top): the key is a row between title and data."""
    problem = NetworkProblem(dataset={"name": "matrix_regression", "n": 128, "dims": 8,
                                      "condition": 100.0},
                             model={"layers": [{"linear": 8, "bias": False}]}, loss="mse",
                             batch_size=None, eval_every=5, device="cpu")
    runs = (RunSpec("SGD", "sgd", {"lr": 0.05}), RunSpec("Adam", "adam", {"lr": 0.01}),
            RunSpec("Muon", "muon", {"lr": 0.02}))
    lab = validate_lab(Lab(name="t", seed=0, steps=20, problem=problem, runs=runs))
    race = NetworkRace(lab)
    history = NetworkHistory(race.labels)
    history.extend(list(race.records()))
    view = NetworkView()
    qtbot.addWidget(view)
    view.set_runs(list(race.labels), ["#ee6677", "#88ccee", "#228833"], race.data, 20)
    view.update_from(history)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.tabs.setCurrentWidget(view.spectra)
    view.spectra.draw(force=True)
    qtbot.wait(20)
    item = view.spectra.profile_plot.plotItem
    key, data = item.legend.sceneBoundingRect(), item.vb.sceneBoundingRect()
    assert [label.text for _, label in item.legend.items] == ["SGD", "Adam", "Muon"]
    assert item.legend.isVisible() and key.height() > 0
    assert not key.intersects(data), (key, data)
    # Muon's profile (near 1 at every index) stays inside the data area, under the key.
    muon = view.spectra.profile_curves[2]
    x, y = muon.getData()
    for point in zip(x, y):
        assert not key.contains(item.vb.mapViewToScene(pg.Point(*point)))


def test_flushing_at_the_end_of_a_race_draws_the_newest_evaluation(qtbot, window, tmp_path):
    """The tab redraws on its own timer; the window's flush (the end of a race, an exported
    picture) draws the newest evaluation now instead of one a timer tick behind."""
    from core.lab.format import save_lab

    problem = NetworkProblem(dataset={"name": "matrix_regression", "n": 64, "dims": 6},
                             model={"layers": [{"linear": 6, "bias": False}]}, loss="mse",
                             batch_size=None, eval_every=5, device="cpu")
    lab = validate_lab(Lab(name="matrix", seed=0, steps=30, problem=problem,
                           runs=(RunSpec("Muon", "muon", {"lr": 0.02}),)))
    path = tmp_path / "m.lab.json"
    save_lab(lab, path)
    window.resize(1280, 800)
    window.show()
    assert window.open_lab(path)
    view = window.network_view
    view.tabs.setCurrentWidget(view.spectra)
    view.spectra.timer.stop()  # as if its next tick had not come yet
    view.spectra.timer.setInterval(10 ** 7)
    finished = []
    window.race_finished.connect(lambda *args: finished.append(args))
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    window.play()
    qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
    window.flush_redraw()
    newest = window.history.update_spectra[-1][0]
    curve = view.spectra.time_curves[0]
    assert curve.getData()[0][-1] == newest
