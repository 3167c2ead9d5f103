"""The arena window end to end: load, play, plotted data, edits, undo, files, clean shutdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from core.engine.function_race import race
from core.lab.format import default_lab, load_lab

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"


def _play_to_end(qtbot, window):
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000) as done:
        window.play()
    assert done.args == [True]


def test_a_race_plays_to_the_end_and_the_plots_hold_the_engine_numbers(qtbot, window):
    assert window.open_lab(RAVINE)
    _play_to_end(qtbot, window)
    lab = load_lab(RAVINE)
    records = list(race(lab))
    for i, item in enumerate(window.landscape.trajectories):
        expected = np.stack([r.point[i] for r in records])
        series = window.history.runs[i]
        np.testing.assert_array_equal(
            np.column_stack([series.column("x"), series.column("y")]), expected
        )
        # Drawn: the same path without points that fall on the pixel of the one before, nor
        # segments already drawn (gaps); the run's marker sits on its newest point.
        x, y = item.getData()
        drawn = np.column_stack([x, y])
        assert drawn[0].tolist() == expected[0].tolist()
        assert {tuple(p) for p in drawn} <= {tuple(p) for p in expected}
        marker_x, marker_y = window.landscape.markers.getData()
        assert [marker_x[i], marker_y[i]] == expected[-1].tolist()
    # The loss plot shows f − f* per step for every run.
    for i, curve in enumerate(window.loss_plot.curves):
        steps, values = window.loss_plot.raw[i]
        assert steps.tolist() == list(range(lab.steps + 1))
        np.testing.assert_array_equal(values, [r.loss[i] for r in records])
        # What is drawn: log10 of f − f* (f* = 0 here), floored so log stays finite.
        shown_x, shown_y = curve.getData()
        np.testing.assert_allclose(shown_y, np.log10(np.maximum(values, 1e-16)))
    assert window.step_label.text() == f"step {lab.steps} / {lab.steps}"
    assert "Finished" in window.status_label.text()


def test_pause_step_and_reset(qtbot, window):
    window.open_lab(RAVINE)
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step == 1, timeout=5000)
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step == 2, timeout=5000)
    window.flush_redraw()
    assert window.step_label.text().startswith("step 2 /")
    x, _ = window.landscape.trajectories[0].getData()
    assert len(x) == 3
    window.reset()
    assert not window.controller.is_running()
    assert window.history.last_step == -1
    assert window.step_label.text().startswith("step 0 /")


def test_keyboard_space_plays_and_pauses(qtbot, window):
    window.open_lab(RAVINE)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)  # shortcuts need the active window
    window.speed_combo.setCurrentIndex(0)  # 10 steps/s: still running when we pause
    window.landscape.setFocus()
    qtbot.keyClick(window.landscape, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.controller.is_playing(), timeout=3000)
    qtbot.keyClick(window.landscape, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not window.controller.is_playing(), timeout=3000)
    window.reset()


def test_edits_are_undoable_and_reset_the_race(qtbot, window):
    window.open_lab(RAVINE)
    before = window.document.lab
    window._on_start_moved(1.0, 0.5)
    assert window.document.lab.problem.start == (1.0, 0.5)
    assert window.problem_panel.start_x.value() == 1.0
    assert "*" in window.windowTitle()
    window.undo_action.trigger()
    assert window.document.lab == before
    window.redo_action.trigger()
    assert window.document.lab.problem.start == (1.0, 0.5)


def test_dragging_the_start_marker_moves_the_start(qtbot, window):
    window.open_lab(RAVINE)
    target = window.landscape.start_target
    target.setPos(QPointF(1.5, -0.5))
    target.sigPositionChangeFinished.emit(target)
    assert window.document.lab.problem.start == (1.5, -0.5)


def test_choosing_a_function_redraws_the_landscape(qtbot, window):
    combo = window.problem_panel.function_combo
    combo.setCurrentIndex(combo.findData("himmelblau"))
    combo.activated.emit(combo.currentIndex())
    assert window.document.lab.problem.function == "himmelblau"
    assert window.landscape.objective.name == "himmelblau"
    assert len(window.landscape.minima.data) == 4
    assert window.landscape.image.image.shape[0] > 100


def test_a_typed_expression_is_used_and_a_bad_one_is_refused(qtbot, window):
    panel = window.problem_panel
    combo = panel.function_combo
    combo.setCurrentIndex(combo.findData("__expression__"))
    combo.activated.emit(combo.currentIndex())
    panel.expression_edit.setText("x**2 + 3*y**2 +* 1")
    panel._apply_expression()
    assert panel.error_label.isVisibleTo(panel)
    assert "column" in panel.error_label.text()
    assert window.document.lab.problem.function == "rosenbrock"
    panel.expression_edit.setText("x**2 + 3*y**2")
    panel._apply_expression()
    assert window.document.lab.problem.function == {"expression": "x**2 + 3*y**2"}
    assert window.landscape.objective.name == "expression"


def test_save_then_open_gives_the_same_lab(qtbot, window, tmp_path):
    window.open_lab(RAVINE)
    window._on_start_moved(0.5, 0.25)
    path = tmp_path / "mine.lab.json"
    assert window._save_to(path)
    assert "*" not in window.windowTitle()
    saved = window.document.lab
    window.new_lab()
    assert window.document.lab == default_lab()
    assert window.open_lab(path)
    assert window.document.lab == saved
    assert str(path.resolve()) in window._recent()


def test_a_bad_file_is_refused_and_the_open_lab_is_kept(qtbot, window, tmp_path):
    window.open_lab(RAVINE)
    before = window.document.lab
    bad = tmp_path / "bad.lab.json"
    bad.write_text(json.dumps({"problem": {"kind": "function", "function": "x"}, "runs": []}))
    assert not window.open_lab(bad)
    assert window.document.lab == before
    assert "problem.function" in window.last_error


def test_a_diverging_run_is_reported_and_the_others_finish(qtbot, window):
    window.open_lab(ROOT / "resources" / "labs" / "too_large_lr.lab.json")
    _play_to_end(qtbot, window)
    assert 3 in window.history.divergences
    for curve in window.loss_plot.curves + window.landscape.trajectories:
        assert all(np.all(np.isfinite(v)) for v in curve.getData())
    assert "diverged" in window.status_label.text()


@pytest.mark.parametrize("cycle", range(20))
def test_close_mid_run_leaves_no_thread(qtbot, settings, cycle):
    from app.shell.main_window import MainWindow

    win = MainWindow(settings=settings)
    win._confirm_discard = lambda: True
    qtbot.addWidget(win)
    win.speed_combo.setCurrentIndex(win.speed_combo.count() - 1)
    win.play()
    qtbot.wait(cycle * 3)
    win.close()
    assert not win.controller.is_running()


def test_a_long_divergence_message_is_elided_to_fit_and_whole_in_the_tooltip(qtbot, window):
    from PySide6.QtWidgets import QLabel

    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    window.open_lab(ROOT / "resources" / "labs" / "too_large_lr.lab.json")
    label = window.status_label
    seen = []  # (full text, what is drawn, tooltip) right after each batch
    window.controller.batch.connect(
        lambda _records: seen.append((label.text(), QLabel.text(label), label.toolTip()))
    )
    _play_to_end(qtbot, window)
    full, shown, tip = next(item for item in seen if "diverged at step" in item[0])
    # The message is longer than the bar: drawn with "…" and within the label, whole on hover.
    assert shown.endswith("…") and full.startswith(shown[:-1])
    assert label.fontMetrics().horizontalAdvance(shown) <= label.width()
    assert tip == full and "The other runs go on." in tip
    # A wider window shows more of it (re-elided on resize).
    label.setText(full)
    window.resize(1600, 700)
    qtbot.waitUntil(lambda: len(QLabel.text(label)) > len(shown), timeout=2000)
    assert label.toolTip() == full


def test_a_lab_without_runs_opens_and_play_is_refused_with_a_reason(qtbot, window, tmp_path):
    empty = tmp_path / "empty.lab.json"
    empty.write_text(json.dumps({
        "format": "descent-lab/1",
        "problem": {"kind": "function", "function": "rosenbrock"},
        "runs": [],
    }))
    assert window.open_lab(empty)
    for press in (window.play, window.step, window.toggle_play):
        press()
        assert not window.controller.is_running()
        assert "add or enable a run" in window.status_label.text()
    window.reset()
    assert window.history is None or window.history.last_step < 0
