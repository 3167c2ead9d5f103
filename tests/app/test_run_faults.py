"""In the window, a run whose optimizer fails is shown stopped with the reason and the
traceback, the other runs finish and the app stays up (core/engine/faults.py; the engine's side
is tests/core/test_faults.py, whose faulty optimizer classes this test registers too)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.runs.runs_table import COL_LABEL
from core.engine import faults
from core.lab.format import FunctionProblem, Lab, NetworkProblem, RunSpec, save_lab, validate_lab
from core.optim import optimizers
from core.optim.hyperparams import HyperParam
from core.optim.optimizers import OptimizerInfo
from tests.core.test_faults import FAULT_AT, Raises, Slow


@pytest.fixture(autouse=True)
def faulty_optimizers(monkeypatch):
    lr = HyperParam("lr", 0.01, "float", low=0.0, log=True)
    for name, cls in (("raises", Raises), ("slow", Slow)):
        monkeypatch.setitem(optimizers.OPTIMIZERS, name,
                            OptimizerInfo(name=name, cls=cls, title=name.capitalize(),
                                          hyperparams=(lr,), update_rule="θ ← θ − lr·g"))
    # The races' clock: only the slow optimizer moves it (41.2 s on its 5th step).
    Slow.clock[0] = 0.0
    monkeypatch.setattr(faults, "clock", lambda: Slow.clock[0])


def _play(qtbot, window, tmp_path, lab) -> None:
    path = tmp_path / "faults.lab.json"
    save_lab(lab, path)
    window.show()
    assert window.open_lab(path)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000) as done:
        window.play()
    assert done.args == [True]


def test_a_failed_run_is_marked_in_its_row_with_the_reason_and_the_traceback(qtbot, window,
                                                                              tmp_path):
    lab = validate_lab(Lab(name="faults", steps=60,
                           problem=FunctionProblem("rosenbrock", (-1.5, 2.0)),
                           runs=(RunSpec("Adam", "adam", {"lr": 0.05}),
                                 RunSpec("Broken", "raises", {"lr": 1e-3}),
                                 RunSpec("SGD", "sgd", {"lr": 1e-3}),
                                 RunSpec("Slow", "slow", {"lr": 1e-3}))))
    _play(qtbot, window, tmp_path, lab)
    # The app is up and the other runs ran to the end; the verdict counts the failure.
    assert window.isVisible()
    history = window.history
    assert [len(series) for series in history.runs] == [61, FAULT_AT, 61, FAULT_AT]
    assert history.divergences[1].kind == "failed"
    assert window.status_label.text().endswith("; 2 failed.")
    assert "by Adam" in window.status_label.text() or "by SGD" in window.status_label.text()

    table = window.runs_panel.runs_table
    label = table.table.item(1, COL_LABEL)
    tip = label.toolTip()
    assert f"Failed at step {FAULT_AT}: ZeroDivisionError: the update rule divided by zero" in tip
    assert "last good (step 4)" in tip
    assert 'raise ZeroDivisionError("the update rule divided by zero")' in tip  # the last frame
    assert not label.data(Qt.ItemDataRole.DecorationRole).isNull()  # the warning sign
    slow = table.table.item(3, COL_LABEL).toolTip()
    assert f"Was stopped at step {FAULT_AT}: step took 41.2 s, over the 30 s limit" in slow
    healthy = table.table.item(0, COL_LABEL)
    assert healthy.data(Qt.ItemDataRole.DecorationRole) is None and "Failed" not in \
        healthy.toolTip()

    # Right-click ▸ Why it stopped…: the reason, and the whole traceback under Show Details.
    box = table.show_stop_details(1)
    assert box.text().startswith(f"Broken: Failed at step {FAULT_AT}: ZeroDivisionError")
    assert box.detailedText().startswith("Traceback (most recent call last)")
    assert "test_faults.py" in box.detailedText()
    assert table.show_stop_details(0) is None
    box.close()

    # The window goes on working: the next race starts afresh and fails the same way.
    Slow.clock[0] = 0.0
    _play(qtbot, window, tmp_path, lab)
    assert window.history.divergences[1].step == FAULT_AT


def test_a_failed_network_run_reads_failed_in_the_comparison_table(qtbot, window, tmp_path):
    problem = NetworkProblem(dataset={"name": "moons", "n": 128, "noise": 0.2,
                                      "val_fraction": 0.25},
                             model={"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 2}]},
                             batch_size=32, eval_every=5, device="cpu")
    lab = validate_lab(Lab(name="faults", steps=20, problem=problem,
                           runs=(RunSpec("Adam", "adam", {"lr": 0.01}),
                                 RunSpec("Broken", "raises", {"lr": 0.1}))))
    _play(qtbot, window, tmp_path, lab)
    assert window.isVisible()
    view = window.network_view
    assert view.run_status(1)[0] == f"failed at {FAULT_AT}"
    assert view.run_status(0)[0] == "finished"
    tip = window.runs_panel.runs_table.table.item(1, COL_LABEL).toolTip()
    assert "ZeroDivisionError: the update rule divided by zero" in tip
