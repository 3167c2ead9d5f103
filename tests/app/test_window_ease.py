"""The main window as a first-time user meets it: the run editor and the internals agree, tool
windows close like windows, the status line says what is true, shortcuts work from a number box,
the lessons read in order, and the window stays on the screen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox

ROOT = Path(__file__).resolve().parents[2]
BANANA = ROOT / "resources" / "labs" / "banana_race.lab.json"


def choose_optimizer(window, name: str) -> None:
    combo = window.runs_panel.findChild(QComboBox, "optimizerCombo")
    combo.setCurrentIndex(combo.findData(name))
    combo.activated.emit(combo.currentIndex())  # what a user's pick sends


def test_the_internals_show_the_rule_of_the_run_just_given_another_optimizer(qtbot, window):
    assert window.open_lab(BANANA)
    window.internals_action.trigger()
    window.runs_panel.select_run(1)  # "Momentum" (SGD)
    choose_optimizer(window, "adagrad")
    lab = window.document.lab
    assert (lab.runs[1].label, lab.runs[1].optimizer) == ("Adagrad", "adagrad")
    title = window.internals_panel.equation_title.text()
    assert "Adagrad" in title and "SGD" not in title
    assert window.internals_panel.selected_run() == 1
