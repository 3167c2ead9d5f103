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


def _number_box(window):
    from PySide6.QtWidgets import QDoubleSpinBox

    box = window.runs_panel.findChild(QDoubleSpinBox, "optParam_lr")
    window.show()
    window.activateWindow()
    box.setFocus()
    return box


def test_space_ctrl_i_and_ctrl_e_work_with_the_focus_in_a_number_box(qtbot, window):
    from PySide6.QtCore import Qt

    triggered = []
    window.export_action.triggered.disconnect()  # no dialog in a test: just see it asked for
    window.export_action.triggered.connect(lambda: triggered.append("export"))
    window.play_action.triggered.disconnect()
    window.play_action.triggered.connect(lambda: triggered.append("play"))
    box = _number_box(window)
    qtbot.waitUntil(box.hasFocus)
    text = box.text()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert triggered == ["play"] and box.text() == text  # no space typed into the number
    qtbot.keyClick(box, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert triggered == ["play", "export"]
    assert window.internals_dock.isHidden()
    qtbot.keyClick(box, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert not window.internals_dock.isHidden()


def test_space_types_a_space_in_a_label_and_the_status_line_says_so(qtbot, window):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLineEdit

    triggered = []
    window.play_action.triggered.disconnect()
    window.play_action.triggered.connect(lambda: triggered.append("play"))
    from dataclasses import replace

    lab = window.document.lab
    problem = replace(lab.problem, function={"expression": "x**2 + y**2"})
    window.document.edit(replace(lab, problem=problem), "Custom expression")
    window.show()
    window.activateWindow()
    name = window.problem_panel.findChild(QLineEdit, "expressionEdit")
    name.setFocus()
    qtbot.waitUntil(name.hasFocus)
    before = name.text()
    qtbot.keyClick(name, Qt.Key.Key_Space)
    assert triggered == [] and name.text() == before + " "
    # The ready line promises Space only where it plays.
    assert "Space" in window.status_label.text() and "typing" in window.status_label.text()


def test_the_status_line_says_playing_then_paused_at_the_step_shown(qtbot, window):
    window.speed_combo.setCurrentIndex(0)  # 10 steps/s: time to pause before the end
    assert "Ready" in window.status_label.text()
    window.play()
    qtbot.waitUntil(lambda: window.controller.state() == "playing", timeout=10_000)
    assert window.status_label.text().startswith("Playing")
    assert "Ready" not in window.status_label.text()
    qtbot.waitUntil(lambda: window.history.last_step >= 1, timeout=10_000)
    window.pause()
    qtbot.waitUntil(lambda: window.controller.state() == "paused", timeout=10_000)
    window.flush_redraw()
    shown = window.step_label.text().split()[1]  # "step 7 / 200"
    assert window.status_label.text().startswith(f"Paused at step {shown}.")
    window.step()
    qtbot.waitUntil(lambda: window.step_label.text().split()[1] != shown, timeout=10_000)
    window.flush_redraw()
    assert window.status_label.text().startswith(
        f"Paused at step {window.step_label.text().split()[1]}.")
    window.reset()


def test_tool_windows_close_with_a_button_ctrl_w_and_esc(qtbot, window):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPushButton

    window.show()
    for kind in ("lr_finder", "sweep", "fair_race", "fingerprint"):
        tool = window.open_tool(kind)
        qtbot.waitExposed(tool)
        button = tool.findChild(QPushButton, "toolCloseButton")
        assert button is not None and button.isVisible() and button.text() == "Close"
        button.click()
        assert not tool.isVisible()
        for keys in ((Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier),
                     (Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier)):
            window.open_tool(kind)
            tool.activateWindow()
            qtbot.waitUntil(tool.isActiveWindow)
            qtbot.keyClick(tool, *keys)
            assert not tool.isVisible(), (kind, keys)
    window.export_action.trigger()
    dialog = window.export_dialog
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow)
    qtbot.keyClick(dialog, Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)
    assert not dialog.isVisible()


MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def test_a_network_lab_opens_on_the_overview_and_the_confusion_shows_the_selected_run(
        qtbot, window):
    from app.network.views import TAB_CONFUSION, TAB_OVERVIEW

    assert window.open_lab(MOONS)
    view = window.network_view
    view.tabs.setCurrentIndex(TAB_CONFUSION)
    window.new_network_lab()  # a new race: nothing to see in a confusion matrix yet
    assert view.tabs.currentIndex() == TAB_OVERVIEW  # data → network → output
    assert window.open_lab(MOONS)
    assert view.tabs.currentIndex() == TAB_OVERVIEW

    labels = [run.label for run in window.document.lab.runs]
    window.runs_panel.select_run(labels.index("Adam"))
    assert view.confusion_run_combo.currentText() == "Adam"
    assert view.race.selected_run == labels.index("Adam")
    # An edit resets the race: the selection stays the run selected in the table.
    choose_optimizer(window, "adamw")
    assert window.runs_panel.selected_run() == labels.index("Adam")
    assert view.confusion_run_combo.currentText() == "AdamW"
    view.tabs.setCurrentIndex(TAB_CONFUSION)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    with qtbot.waitSignal(window.race_finished, timeout=120_000):
        window.play()
    window.flush_redraw()
    title = view.confusion.confusion_plot.plotItem.titleLabel.text
    assert "AdamW ·" in title, (title, view.race.selected_run, [c is None for c in view.confusion.confusions])


def test_examples_are_listed_by_their_title(window):
    titles = [action.text() for action in window.examples_menu.actions()]
    assert "Moons race" in titles and "Banana race" in titles
    assert not any("_" in title or title.endswith(".lab.json") for title in titles)
    assert titles == sorted(titles, key=str.casefold)


def test_the_window_never_widens_itself_past_a_1280_px_screen(qtbot, window):
    """Network lab, a lesson, the internals, a branch: the docks and views fit in 1280 px
    (each used to add its minimum width: 1280 → 1458 → 1483 → 1678)."""
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)

    def fits(what: str) -> None:
        qtbot.wait(10)  # let the layouts settle
        assert window.width() <= 1280, what
        assert window.minimumSizeHint().width() <= 1280, what

    fits("start")
    assert window.open_lab(MOONS)
    fits("network lab")
    assert window.open_lesson("overfitting", autoplay=False)
    fits("network lab and a lesson")
    window.internals_action.trigger()
    fits("and the internals")
    window.network_view.tabs.setCurrentIndex(window.network_view.tabs.count() - 1)  # Surface
    fits("the surface page")
    assert window.open_lesson("ravine", autoplay=False)
    fits("a function lesson with the internals")
    # Squeezed to fit, nothing in the docks loses its right edge: each column is as wide as
    # its contents need, within the 1280 px.
    editor = window.runs_panel.editor
    editor_view = editor.parentWidget()  # the scroll area's viewport
    assert editor.width() <= editor_view.width()
    lesson_body = window.lesson_panel.widget()
    assert lesson_body.width() <= window.lesson_panel.viewport().width()
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step >= 1, timeout=10_000)
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step >= 2, timeout=10_000)
    runs = len(window.document.lab.runs)
    window.timeline.branch_action.trigger()
    assert len(window.document.lab.runs) == runs + 1  # the branch is a new run
    fits("after a branch")
    window.reset()


def _fully_shown(widget) -> bool:
    """Shown, and not scrolled away or cut by any scroll area around it, nor by the window."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QAbstractScrollArea

    if not widget.isVisible():
        return False
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            viewport = parent.viewport()
            if not viewport.rect().contains(QRect(widget.mapTo(viewport, QPoint(0, 0)),
                                                  widget.size())):
                return False
        parent = parent.parentWidget()
    window = widget.window()
    return window.rect().contains(QRect(widget.mapTo(window, QPoint(0, 0)), widget.size()))


def test_the_left_column_gives_each_part_room_at_1280_by_800(qtbot, window):
    from PySide6.QtWidgets import QScrollArea, QTabWidget

    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    # A function lab: the form at its own height (no scroll bar of its own), the runs below.
    form_scroll = window.findChild(QScrollArea, "problemScroll")
    qtbot.wait(10)
    assert _fully_shown(window.problem_panel)
    assert not form_scroll.verticalScrollBar().isVisible()
    assert _fully_shown(window.runs_panel.table)

    # A network lab: its data, its network (the diagram in view, not under a long form), its
    # training and its runs each get the column's height.
    assert window.open_lab(MOONS)
    tabs = window.findChild(QTabWidget, "labTabs")
    diagram = window.network_panel.diagram
    if tabs is not None:  # the layout this test asks for: a page each
        tabs.setCurrentIndex(next(i for i in range(tabs.count())
                                  if tabs.widget(i).isAncestorOf(diagram)))
    qtbot.wait(10)
    assert _fully_shown(diagram) and diagram.height() >= 250
    preview = window.network_panel.preview
    if tabs is not None:
        tabs.setCurrentIndex(next(i for i in range(tabs.count())
                                  if tabs.widget(i).isAncestorOf(preview)))
    qtbot.wait(10)
    assert _fully_shown(preview)
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Data", "Network", "Training", "Runs"]

    # Back to a function lab: one page, no tabs.
    window.new_lab()
    qtbot.wait(10)
    assert tabs.count() == 1 and not tabs.tabBar().isVisible()
    assert _fully_shown(window.problem_panel)
