"""Nothing changes or vanishes without the user knowing.

Four ways a lab used to change behind the user's back, each driven as a user would meet it:
File ▸ Examples replacing a modified lab without asking; the mouse wheel changing a value while
scrolling the left panel; a refused value (a negative lr) silently reverting; and the next start
offering to "restore" a lab that had nothing unsaved.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QWidget,
)

from app.shell.recovery import RecoveryStore
from core.lab.format import load_lab

ROOT = Path(__file__).resolve().parents[2]
RAVINE = ROOT / "resources" / "labs" / "ravine.lab.json"


def show_page_of(widget: QWidget) -> None:
    """Bring forward the left dock's tab that holds ``widget`` (Data / Network / Training /
    Runs in a network lab), as a user clicks a tab before typing in it."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QTabWidget) and parent.objectName() == "labTabs":
            parent.setCurrentIndex(next(i for i in range(parent.count())
                                        if parent.widget(i).isAncestorOf(widget)))
            return
        parent = parent.parentWidget()


def type_into(qtbot, box, text: str) -> None:
    show_page_of(box)
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)


# --------------------------------------------------------------------------- File ▸ Examples


def _answer_the_question(window, button: QMessageBox.StandardButton) -> list[str]:
    """Answer the next modal question with ``button``; the list receives its text (or nothing
    when no question came)."""
    seen: list[str] = []
    timer = QTimer(window)  # dies with the window: never fires into another test

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            timer.stop()
            seen.append(box.text())
            box.button(button).click()

    timer.timeout.connect(answer)
    timer.start(20)
    return seen


@pytest.fixture
def asking_window(qtbot, settings):
    """A window that really asks before discarding (the usual fixture answers "discard")."""
    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    yield window
    window.document.undo_stack.setClean()  # closing must not ask
    window.controller.shutdown()


def _example_action(window, name: str):
    # Listed by title ("Ravine: SGD zig-zags, …"); the file name is the entry's tooltip.
    return next(a for a in window.examples_menu.actions() if a.toolTip() == f"{name}.lab.json")


def test_opening_an_example_asks_first_and_cancel_keeps_the_lab_and_its_undo(
    qtbot, asking_window
):
    window = asking_window
    document = window.document
    edited = replace(document.lab, seed=123)
    document.edit(edited, "Change seed")
    assert window.undo_action.isEnabled()

    seen = _answer_the_question(window, QMessageBox.StandardButton.Cancel)
    _example_action(window, "ravine").trigger()
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    assert "unsaved changes" in seen[0]
    assert document.lab == edited
    assert document.is_dirty() and window.undo_action.isEnabled()
    document.undo_stack.undo()  # the history survived: the edit can still be taken back
    assert document.lab.seed != 123


def test_opening_an_example_after_discard_opens_it(qtbot, asking_window):
    window = asking_window
    window.document.edit(replace(window.document.lab, seed=123), "Change seed")
    seen = _answer_the_question(window, QMessageBox.StandardButton.Discard)
    _example_action(window, "ravine").trigger()
    assert seen and "unsaved changes" in seen[0]
    assert window.document.lab == load_lab(RAVINE)
    assert window.document.path == RAVINE


# --------------------------------------------------------------------------- the mouse wheel


def _wheel(widget: QWidget, notches: int = -1) -> None:
    """One real wheel notch over the middle of ``widget`` (negative: towards the user), sent
    through the window system as a mouse would send it (spontaneous, so Qt propagates it and
    gives focus on the wheel where a widget asks for that)."""
    top = widget.window()
    QTest.wheelEvent(top.windowHandle(), widget.mapTo(top, widget.rect().center()),
                     QPoint(0, 120 * notches))
    QApplication.processEvents()


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea:
    parent = widget.parentWidget()
    while not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    return parent


def _read(widget):
    return widget.value() if hasattr(widget, "value") else widget.currentIndex()


@pytest.mark.parametrize(
    ("kind", "name"),
    [(QSpinBox, "batchSizeBox"), (QComboBox, "initCombo"), (QDoubleSpinBox, "optParam_lr")],
)
def test_the_wheel_over_an_unfocused_editor_scrolls_the_panel_and_changes_nothing(
    qtbot, window, kind, name
):
    window.new_network_lab()
    window.resize(1280, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    editor = window.findChild(kind, name)
    show_page_of(editor)
    assert editor is not None and editor.isVisible()
    area = _scroll_area_of(editor)
    bar = area.verticalScrollBar()
    if bar.maximum() == 0:  # make the panel scroll, as on a small screen
        area.widget().setMinimumHeight(area.viewport().height() + 400)
        qtbot.waitUntil(lambda: bar.maximum() > 0)
    if isinstance(editor, QComboBox):
        editor.setCurrentIndex(1)  # one that a notch either way would change
    area.ensureWidgetVisible(editor)
    start = bar.value()
    notch = -1 if start < bar.maximum() else 1  # a direction in which the panel can move
    other = window.runs_panel.optimizer_combo  # focus is somewhere else in the panel
    if not other.isVisible():  # on another tab of the left dock: one beside the editor
        other = next(w for w in area.widget().findChildren(QComboBox)
                     if w is not editor and w.isVisible() and w.isEnabled())
    other.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is other)
    lab, undo_count, before = window.document.lab, window.document.undo_stack.count(), _read(editor)

    _wheel(editor, notch)
    assert _read(editor) == before
    assert window.document.lab == lab and window.document.undo_stack.count() == undo_count
    assert bar.value() != start, "the wheel must scroll the panel instead"
    # A real wheel gives a WheelFocus widget the focus *before* anything can look at the event:
    # the value would change on the same notch.
    assert editor.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert not editor.hasFocus()

    # Focused (clicked or tabbed into), the wheel does change it: an undoable edit.
    area.ensureWidgetVisible(editor)
    editor.setFocus()
    qtbot.waitUntil(editor.hasFocus)
    _wheel(editor, notches=1 if kind is not QComboBox else -1)
    assert _read(editor) != before
    assert window.document.undo_stack.count() == undo_count + 1


# --------------------------------------------------------------------------- refused values


def _reddish(color) -> bool:
    return color.red() > color.green() + 40 and color.red() > color.blue() + 40


def test_a_negative_lr_is_refused_in_red_and_the_field_stays_marked_until_fixed(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    window.runs_panel.select_run(3)  # Adam, lr 0.05
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(QDoubleSpinBox, "optParam_lr")
    error = window.findChild(QLabel, "paramError")
    normal_text = box.palette().color(QPalette.ColorRole.Text)
    assert not _reddish(normal_text)

    type_into(qtbot, box, "-0.1")
    assert error.isVisible()
    assert "lr" in error.text() and ">= 0" in error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert box.text() == "-0.1", "what was typed stays on screen, to be fixed"
    assert document.lab == lab and document.undo_stack.count() == undo_count
    assert document.lab.runs[3].params["lr"] == 0.05

    # Still marked after the focus moves on; a valid value clears it and is applied.
    window.runs_panel.optimizer_combo.setFocus()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text))
    type_into(qtbot, box, "0.02")
    assert document.lab.runs[3].params["lr"] == 0.02
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


def test_an_out_of_range_whole_number_is_refused_in_red_too(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    window.runs_panel.select_run(0)  # SGD; warm restarts' T_mult must be >= 1
    combo = window.runs_panel.schedule_combo
    combo.setCurrentIndex(combo.findData("cosine_warm_restarts"))
    combo.activated.emit(combo.currentIndex())
    box = window.findChild(QSpinBox, "schedParam_T_mult")
    lab = window.document.lab
    type_into(qtbot, box, "0")
    error = window.findChild(QLabel, "scheduleError")
    assert error.isVisible() and "T_mult" in error.text() and ">= 1" in error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text))
    assert window.document.lab == lab


@pytest.mark.parametrize(
    ("kind", "name", "typed", "error_name", "words"),
    [(QSpinBox, "batchSizeBox", "0", "trainingError", ("batch_size", "[1, 1000000]")),
     (QDoubleSpinBox, "dataParam_noise", "-0.5", "datasetError", ("noise", "[0, 5]")),
     (QDoubleSpinBox, "initSigmaBox", "-1", "modelError", ("init.normal", "(0, 10]"))],
)
def test_a_refused_network_setting_is_said_in_red_and_marked_until_fixed(
    qtbot, window, kind, name, typed, error_name, words
):
    window.new_network_lab()
    window.show()
    qtbot.waitExposed(window)
    if name == "initSigmaBox":  # σ is there for the normal initialisation
        init = window.findChild(QComboBox, "initCombo")
        init.setCurrentIndex(init.findData("normal"))
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(kind, name)
    error = window.findChild(QLabel, error_name)
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, typed)
    assert error.isVisible() and all(word in error.text() for word in words), error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, box, "32" if kind is QSpinBox else "0.05")
    assert document.undo_stack.count() == undo_count + 1
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


def test_a_zero_layer_width_is_said_in_red_on_its_row_until_fixed(qtbot, window):
    from app.network.layer_rows import COL_DESCRIBE

    window.new_network_lab()
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    row = next(i for i, layer in enumerate(lab.problem.model["layers"]) if "linear" in layer)
    box = window.findChild(QSpinBox, f"layerValue_{row}")
    error = window.findChild(QLabel, "modelError")
    describe = window.network_panel.layer_table.item(row, COL_DESCRIBE)

    type_into(qtbot, box, "0")
    assert error.isVisible() and f"layers[{row}]" in error.text(), error.text()
    assert describe.text().startswith("⚠") and "got 0" in describe.text()
    assert box.value() == 0, "what was typed stays on screen, to be fixed"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, window.findChild(QSpinBox, f"layerValue_{row}"), "8")
    assert document.lab.problem.model["layers"][row] == {"linear": 8}
    assert not error.isVisible()


@pytest.mark.parametrize(
    ("kind", "name", "typed", "valid", "error_name", "words", "read_back"),
    [(QSpinBox, "sharpnessEveryBox", "-5", "50", "trainingError",
      ("sharpness_every", "[0, 1000000]", "got -5"), lambda p: p.sharpness_every),
     (QDoubleSpinBox, "dataSeedBox", "-1", "123", "datasetError",
      ("dataset.seed", "[0, 4294967295]", "got -1"), lambda p: p.dataset["seed"]),
     (QDoubleSpinBox, "dataSeedBox", "5000000000", "4294967295", "datasetError",
      ("dataset.seed", "[0, 4294967295]", "got 5000000000"), lambda p: p.dataset["seed"])],
)
def test_a_typed_sharpness_interval_or_data_seed_out_of_range_is_refused_in_red(
    qtbot, window, kind, name, typed, valid, error_name, words, read_back
):
    """Before, the '-' never reached the box (-5 became every 5 steps) and a data seed of
    5000000000 lost its last digit: a different, valid value was applied without a word."""
    window.new_network_lab()
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(kind, name)
    error = window.findChild(QLabel, error_name)
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, typed)
    assert error.isVisible() and all(word in error.text() for word in words), error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert box.value() == int(typed), "what was typed stays on screen, to be fixed"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, box, valid)
    assert read_back(document.lab.problem) == int(valid)
    assert document.undo_stack.count() == undo_count + 1
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


def test_a_sharpness_interval_of_0_still_reads_off(qtbot, window):
    window.new_network_lab()
    box = window.findChild(QSpinBox, "sharpnessEveryBox")
    assert window.document.lab.problem.sharpness_every == 0 and box.text() == "off"
    type_into(qtbot, box, "20")
    assert box.text() == "every 20 steps" and window.document.lab.problem.sharpness_every == 20
    type_into(qtbot, box, "0")
    assert box.text() == "off" and window.document.lab.problem.sharpness_every == 0
    type_into(qtbot, box, "20")
    type_into(qtbot, box, "off")  # the word shown can be typed back
    assert box.text() == "off" and window.document.lab.problem.sharpness_every == 0


def test_a_dropout_p_of_1_is_said_in_red_on_its_row_and_marked_until_fixed(qtbot, window):
    """Before, the box stopped at 0.95: a typed 1 was refused key by key and 0.99 became 0.9."""
    from app.network.layer_rows import COL_DESCRIBE, COL_KIND

    window.new_network_lab()
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    table = window.network_panel.layer_table
    row = next(i for i, layer in enumerate(document.lab.problem.model["layers"]) if "act" in layer)
    kind = table.cellWidget(row, COL_KIND)
    kind.setCurrentIndex(kind.findData("dropout"))
    assert document.lab.problem.model["layers"][row] == {"dropout": 0.1}
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(QDoubleSpinBox, f"layerValue_{row}")
    error = window.findChild(QLabel, "modelError")
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, "1")
    assert error.isVisible(), "a p of 1 must be refused, not clamped"
    assert f"layers[{row}].dropout" in error.text() and "[0, 1)" in error.text(), error.text()
    assert "⚠" in table.item(row, COL_DESCRIBE).text()
    assert box.value() == 1.0, "what was typed stays on screen, to be fixed"
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    # 0.99 is a valid p (the lab format allows [0, 1)): taken as typed, not cut to 0.95 or 0.9.
    box = window.findChild(QDoubleSpinBox, f"layerValue_{row}")
    type_into(qtbot, box, "0.99")
    assert document.lab.problem.model["layers"][row] == {"dropout": 0.99}
    assert document.undo_stack.count() == undo_count + 1
    assert not error.isVisible()
    box = window.findChild(QDoubleSpinBox, f"layerValue_{row}")
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


def test_steps_out_of_range_are_said_in_red_and_marked_until_fixed(qtbot, window):
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(QSpinBox, "stepsBox")
    error = window.findChild(QLabel, "settingsError")
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, "0")
    assert error is not None and error.isVisible()
    assert "steps" in error.text() and "[1, 1000000]" in error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text))
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, box, "200")
    assert document.lab.steps == 200
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


def test_a_start_point_out_of_range_is_said_in_red_and_not_cut_to_fit(qtbot, window):
    """Before, the box dropped the seventh digit of -2000000 (the start moved to -200000 without
    a word) and rounded 0.123456 to 0.1235."""
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(QDoubleSpinBox, "startX")
    error = window.findChild(QLabel, "settingsError")
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, "-2000000")
    assert error.isVisible() and "start[0]" in error.text(), error.text()
    assert "[-1e+06, 1e+06]" in error.text() and "-2000000" in error.text(), error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert box.value() == -2_000_000, "what was typed stays on screen, to be fixed"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, box, "0.123456")
    assert document.lab.problem.start[0] == 0.123456
    assert document.undo_stack.count() == undo_count + 1
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


@pytest.mark.parametrize(("typed", "words"), [("5000000000", ("[0, 4294967295]", "5000000000")),
                                              ("1.5", ("whole number", "1.5"))])
def test_a_lab_seed_out_of_range_is_said_in_red_and_a_large_valid_one_is_kept(
    qtbot, window, typed, words
):
    """Before, the box stopped at 2³¹−1 although a lab's seed goes to 2³²−1: 5000000000 and
    3000000000 both lost their last digit and a different seed was applied without a word."""
    window.show()
    qtbot.waitExposed(window)
    document = window.document
    lab, undo_count = document.lab, document.undo_stack.count()
    box = window.findChild(QAbstractSpinBox, "seedBox")  # any kind: the old box was a QSpinBox
    error = window.findChild(QLabel, "settingsError")
    normal_text = box.palette().color(QPalette.ColorRole.Text)

    type_into(qtbot, box, typed)
    assert error.isVisible() and error.text().startswith("seed:"), error.text()
    assert all(word in error.text() for word in words), error.text()
    assert _reddish(box.palette().color(QPalette.ColorRole.Text)), "the field must be marked"
    assert document.lab == lab and document.undo_stack.count() == undo_count

    type_into(qtbot, box, "3000000000")
    assert document.lab.seed == 3_000_000_000 and isinstance(document.lab.seed, int)
    assert document.undo_stack.count() == undo_count + 1
    assert not error.isVisible()
    assert box.palette().color(QPalette.ColorRole.Text) == normal_text


# --------------------------------------------------------------------------- crash recovery


def _killed_window(qtbot, settings, store: RecoveryStore, edit: bool):
    """A window that opened the ravine lab (and edited it or not), then "died": its recovery
    file stays where a SIGKILL leaves it (closeEvent, which removes it, never runs)."""
    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings, recovery=store)
    window._confirm_discard = lambda: True
    assert window.open_lab(RAVINE)
    if edit:
        window.document.edit(replace(window.document.lab, seed=77), "Change seed")
    assert store.path.exists()
    window.controller.shutdown()
    window.deleteLater()  # gone without closeEvent, as a kill leaves it


def _next_start(qtbot, settings, store: RecoveryStore):
    from app.shell.main_window import MainWindow

    window = MainWindow(settings=settings, recovery=store)
    asked: list[tuple] = []
    window._ask_restore = lambda source, dirty: asked.append((source, dirty)) or True
    window._confirm_discard = lambda: True
    qtbot.addWidget(window)
    return window, asked


def test_after_a_kill_an_unmodified_lab_is_not_offered(qtbot, tmp_path, settings):
    store = RecoveryStore(tmp_path)
    _killed_window(qtbot, settings, store, edit=False)
    window, asked = _next_start(qtbot, settings, store)
    assert not window.offer_recovery()
    assert asked == []


def test_after_a_kill_a_modified_lab_is_offered_and_restored(qtbot, tmp_path, settings):
    store = RecoveryStore(tmp_path)
    _killed_window(qtbot, settings, store, edit=True)
    window, asked = _next_start(qtbot, settings, store)
    assert window.offer_recovery()
    assert asked == [(RAVINE, True)]
    assert window.document.lab.seed == 77


def test_a_clean_autosave_that_differs_from_its_file_is_offered(qtbot, tmp_path, settings):
    """Saved, then the file changed (or vanished) on disk: the autosave is the only copy left."""
    saved = tmp_path / "mine.lab.json"
    saved.write_text(RAVINE.read_text(encoding="utf-8"), encoding="utf-8")
    store = RecoveryStore(tmp_path / "recovery")
    store.save(replace(load_lab(saved), seed=9), saved, dirty=False)
    window, asked = _next_start(qtbot, settings, store)
    assert window.offer_recovery()
    assert asked == [(saved, False)] and window.document.lab.seed == 9


def test_the_wheel_still_works_on_editors_outside_a_scrolling_panel(qtbot):
    """Outside a panel there is nothing to scroll: a toolbar's spin box takes the wheel."""
    from PySide6.QtWidgets import QToolBar, QVBoxLayout

    from app.shell.wheel_guard import install_wheel_guard

    install_wheel_guard(QApplication.instance())
    window = QWidget()
    qtbot.addWidget(window)
    layout = QVBoxLayout(window)
    bar = QToolBar()
    free = QSpinBox()
    free.setRange(0, 100)
    free.setValue(50)
    bar.addWidget(free)
    area = QScrollArea()
    inner = QSpinBox()
    inner.setRange(0, 100)
    inner.setValue(50)
    area.setWidget(inner)
    layout.addWidget(bar)
    layout.addWidget(area)
    window.show()
    qtbot.waitExposed(window)
    _wheel(free, notches=1)
    assert free.value() == 51
    _wheel(inner, notches=1)
    assert inner.value() == 50
