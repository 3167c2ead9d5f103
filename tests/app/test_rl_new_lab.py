"""File ▸ New rl race (CartPole) and the run editor of an rl lab: a REINFORCE lab that the window
shows in its rl view and can race, and an editor that offers no lr schedule (rl races refuse one,
core/engine/rl_race.py) instead of previewing one over steps that do not apply."""

from __future__ import annotations

from dataclasses import replace

from core.lab.format import lab_from_dict, lab_to_dict


def _file_menu_texts(window) -> list[str]:
    menu = window.menuBar().actions()[0].menu()
    return [a.text() for a in menu.actions()]


def test_file_new_rl_race_opens_a_reinforce_cartpole_lab_that_races(window, qtbot):
    assert "New r&l race (CartPole)" in _file_menu_texts(window)
    window.show()
    qtbot.waitExposed(window)
    window.new_rl_action.trigger()
    lab = window.document.lab
    assert lab.problem.kind == "rl" and lab.problem.env == "cartpole"
    assert lab.problem.agent == "reinforce"
    assert [r.optimizer for r in lab.runs] == ["sgd", "rmsprop", "adam"]
    assert lab_from_dict(lab_to_dict(lab)) == lab  # it saves as a valid lab file
    assert window.center_stack.currentWidget() is window.rl_view
    # A short race of it runs to its end in the window (the real rl race, fewer episodes).
    window.document.replace(replace(lab, problem=replace(lab.problem, episodes=16)), None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=120_000):
        window.play()
    window.flush_redraw()
    assert all(len(r) == 16 for r in window.race_wiring.history.returns)


def test_the_run_editor_of_an_rl_lab_shows_no_schedule_or_lr_preview(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    editor = window.runs_panel.editor
    window.new_network_lab()
    window.runs_panel.select_run(0)
    assert not editor.schedule_group.isHidden() and editor.rl_note.isHidden()
    assert len(editor.lr_preview.curve.getData()[0]) > 0  # a network run's lr over its steps
    window.new_rl_lab()
    window.runs_panel.select_run(0)
    assert editor.schedule_group.isHidden()
    assert not editor.rl_note.isHidden() and "no learning-rate schedule" in editor.rl_note.text()
    x, _ = editor.lr_preview.curve.getData()
    assert x is None or len(x) == 0


def test_the_runs_table_of_an_rl_lab_shows_no_schedule(window, qtbot):
    """An rl race takes no schedule: the Schedule column says "—" (it said "constant", as if
    one could be picked), with a tooltip that says why; a network lab's runs keep theirs."""
    from PySide6.QtWidgets import QTableWidget

    from app.runs.runs_table import COL_SCHEDULE

    table = window.runs_panel.findChild(QTableWidget, "runsTable")
    window.new_network_lab()
    assert table.item(0, COL_SCHEDULE).text() != "—"
    window.new_rl_lab()
    assert table.rowCount() >= 1
    for row in range(table.rowCount()):
        cell = table.item(row, COL_SCHEDULE)
        assert cell.text() == "—"
        assert "rl races have no lr schedule" in cell.toolTip()
