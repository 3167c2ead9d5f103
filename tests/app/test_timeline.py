"""The timeline in the window: step back, scrub, replay, and Ctrl+B branches (undoable)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from core.engine.function_race import race
from core.lab.format import load_lab

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"


STEPS = 80  # the ravine lab, shortened: enough to scrub, quick to play


def _lab():
    from dataclasses import replace

    return replace(load_lab(RAVINE), steps=STEPS)


def _finished_race(qtbot, window):
    """Open the (shortened) ravine lab, play it to the end at full speed; return the records."""
    window.document.replace(_lab(), None)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)  # shortcuts need the active window
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    return list(race(_lab()))


def _markers(window) -> np.ndarray:
    x, y = window.landscape.markers.getData()
    return np.column_stack([x, y])


def test_left_arrow_steps_back_and_right_arrow_steps_forward_through_history(qtbot, window):
    records = _finished_race(qtbot, window)
    last = records[-1].step
    assert window.timeline.slider.isEnabled()
    assert window.timeline.slider.maximum() == last
    np.testing.assert_array_equal(_markers(window), records[-1].point)

    qtbot.keyClick(window.landscape, Qt.Key.Key_Left)
    assert window.step_label.text() == f"step {last - 1} / {last}"
    np.testing.assert_array_equal(_markers(window), records[last - 1].point)
    qtbot.keyClick(window.landscape, Qt.Key.Key_Left)
    assert window.step_label.text() == f"step {last - 2} / {last}"
    np.testing.assert_array_equal(_markers(window), records[last - 2].point)
    assert window.loss_plot.cursor.isVisible() and window.loss_plot.cursor.value() == last - 2
    assert window.timeline.slider.value() == last - 2

    # → walks forward through the recorded steps; it does not restart the finished race.
    qtbot.keyClick(window.landscape, Qt.Key.Key_Right)
    assert window.step_label.text() == f"step {last - 1} / {last}"
    qtbot.keyClick(window.landscape, Qt.Key.Key_Right)
    assert window.step_label.text() == f"step {last} / {last}"
    assert window.timeline.position is None  # live again: the cursors are gone
    assert not window.loss_plot.cursor.isVisible()
    assert not window.controller.is_running()
    assert window.history.last_step == last


def test_the_slider_scrubs_every_view_and_play_replays_to_the_end(qtbot, window):
    records = _finished_race(qtbot, window)
    last = records[-1].step
    window.timeline.slider.setValue(25)
    assert window.step_label.text() == f"step 25 / {last}"
    np.testing.assert_array_equal(_markers(window), records[25].point)
    for i, item in enumerate(window.landscape.trajectories):
        x, y = item.getData()
        # The path ends at step 25's point (thinned to pixels, never past it).
        assert [x[-1], y[-1]] == records[25].point[i].tolist()
        assert len(x) <= 26
    assert window.lr_plot.cursor.value() == 25
    # Play at a scrubbed step replays the recorded steps to the end, like a video.
    window.play()
    assert window.timeline.replaying()
    qtbot.waitUntil(lambda: window.timeline.position is None, timeout=10_000)
    assert window.step_label.text() == f"step {last} / {last}"
    np.testing.assert_array_equal(_markers(window), records[-1].point)
    assert window.history.last_step == last  # replayed, not re-run


def test_ctrl_b_branches_the_selected_run_at_the_step_shown_and_undo_removes_it(qtbot, window):
    records = _finished_race(qtbot, window)
    window.timeline.slider.setValue(40)
    window.runs_panel.select_run(3)  # Adam
    before = window.document.lab
    qtbot.keyClick(window.landscape, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    lab = window.document.lab
    assert len(lab.runs) == len(before.runs) + 1
    branch = lab.runs[-1]
    assert branch.label == "Adam @40"
    assert (branch.branch.parent, branch.branch.step) == ("Adam", 40)
    assert window.runs_panel.selected_run() == len(lab.runs) - 1  # the editor shows the branch
    assert "Adam @40" in window.runs_panel.editor_title.toolTip()

    # The branched race: the branch replays Adam to step 40 in the window too.
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    adam, twin = window.history.runs[3], window.history.runs[4]
    np.testing.assert_array_equal(twin.column("x"), adam.column("x"))
    np.testing.assert_array_equal(twin.column("x")[:41], [r.point[3][0] for r in records[:41]])

    window.undo_action.trigger()
    assert window.document.lab == before


def test_a_race_whose_branch_lost_its_parent_is_refused_in_the_status_bar(qtbot, window):
    from dataclasses import replace

    from core.lab.branches import branch_run

    lab = branch_run(_lab(), "SGD", 10)
    # What the runs table allows: remove the parent of a branch.
    window.document.replace(replace(lab, runs=lab.runs[1:]), None)
    window.play()
    assert not window.controller.is_running()
    assert "runs[3].branch.from: no run labelled 'SGD'" in window.status_label.text()


def test_a_thinned_history_shows_the_nearest_kept_step_and_says_so(qtbot, window):
    from core.engine.history import RaceHistory

    lab = replace_steps(_lab(), 200)
    window.document.replace(lab, None)
    records = list(race(lab))
    # A small capacity thins the oldest steps, as a very long race would.
    history = RaceHistory(window.history.labels, capacity=64)
    for start in range(0, len(records), 10):  # batches, as the worker sends them
        history.extend(records[start:start + 10])
    window.history, window._latest = history, records[-1]
    wanted = next(s for s in range(1, 200) if s not in history.runs[0].column("step"))
    # Each run keeps its own steps (its lowest and highest losses): each marker sits on its
    # run's nearest kept step at or before the one asked for.
    kept = [series.column("step") for series in history.runs]
    nearest = [int(k[k <= wanted].max()) if (k <= wanted).any() else int(k[0]) for k in kept]
    window.timeline.scrub_to(wanted)
    assert window.step_label.text() == f"step {wanted} / 200"
    assert f"nearest kept step, {min(nearest)}" in window.status_label.text()
    expected = [records[n].point[i] for i, n in enumerate(nearest)]
    np.testing.assert_array_equal(_markers(window), expected)
    assert "branches from" not in window.runs_panel.table.item(0, 2).toolTip()


def replace_steps(lab, steps):
    from dataclasses import replace

    return replace(lab, steps=steps)


def test_a_network_race_says_where_its_steps_are_instead_of_a_dead_slider(qtbot, window):
    """The slider stays disabled for a network race; its tip tells why and where to look."""
    from app.shell.timeline_slider import OTHER_RACE_TIP, SLIDER_TIP

    assert window.open_lab(ROOT / "resources" / "labs" / "moons_race.lab.json")
    window.step()
    qtbot.waitUntil(lambda: window.history is not None and window.history.last_step >= 1,
                    timeout=20_000)
    slider = window.timeline.slider
    qtbot.waitUntil(lambda: slider.toolTip() == OTHER_RACE_TIP, timeout=5_000)
    assert not slider.isEnabled() and "Curves tab" in slider.toolTip()
    assert window.open_lab(RAVINE)
    assert slider.toolTip() == SLIDER_TIP
