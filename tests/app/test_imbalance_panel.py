"""Imbalanced classes in the network problem panel, driven as a user would: the data set's
imbalance box and the Training section's class weights reach the lab, and a wrong value is
refused with the field named."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QComboBox, QLabel

from app.network.problem_panel import NetworkProblemPanel
from core.lab.format import Lab, NetworkProblem, RunSpec
from core.problems.datasets.build import make_dataset
from tests.app.recorder import Recorder

IMBALANCED = {"name": "moons", "n": 600, "noise": 0.2, "val_fraction": 0.2, "imbalance": 20}


def _lab(**problem) -> Lab:
    return Lab(name="t", seed=0, steps=100, runs=(RunSpec("Adam", "adam", {"lr": 0.01}),),
               problem=NetworkProblem(dataset=dict(IMBALANCED), **problem))


@pytest.fixture
def panel(qtbot):
    widget = NetworkProblemPanel()
    qtbot.addWidget(widget)
    widget.resize(380, 900)
    widget.set_lab(_lab())
    return widget


def _combo(panel) -> QComboBox:
    combo = panel.findChild(QComboBox, "classWeightsCombo")
    assert combo is not None
    return combo


def test_balanced_class_weights_are_chosen_and_switched_off(panel):
    recorder = Recorder(panel)
    combo = _combo(panel)
    assert combo.currentData() is None and combo.isEnabled()
    combo.setCurrentIndex(combo.findData("balanced"))
    assert recorder.last.problem.class_weights == "balanced"
    combo.setCurrentIndex(combo.findData(None))
    assert recorder.last.problem.class_weights is None


def test_a_files_own_weights_are_shown_and_kept(qtbot):
    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(_lab(class_weights=(1.0, 20.0)))
    combo = _combo(panel)
    assert combo.currentText() == "as in the file: 1, 20"


def test_a_regression_set_turns_the_weights_off(qtbot):
    panel = NetworkProblemPanel()
    qtbot.addWidget(panel)
    panel.set_lab(Lab(name="t", seed=0, steps=100, runs=(RunSpec("Adam", "adam", {"lr": 0.01}),),
                      problem=NetworkProblem(dataset={"name": "sine"}, loss="mse",
                                             model={"layers": [{"linear": 1}]})))
    assert not _combo(panel).isEnabled()


def test_the_imbalance_reaches_the_panels_data_set(panel):
    data = panel.dataset_editor.dataset()
    counts = np.bincount(np.concatenate([data.y_train, data.y_val]))
    assert counts.tolist() == [571, 29]  # 600 · 20/21 and 600/21, rounded to sum to 600
    again = make_dataset(IMBALANCED, 0)
    np.testing.assert_array_equal(data.y_train, again.y_train)
    summary = panel.findChild(QLabel, "datasetSummary") or panel.dataset_editor.summary_label
    assert "2 classes (571 : 29)" in summary.text()
