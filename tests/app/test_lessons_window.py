"""Lessons in the window: one click loads the lab, shows the text and plays."""

from __future__ import annotations

from core.teaching.lessons.loader import list_lessons, load_lesson


def test_a_lesson_loads_its_lab_text_and_plays(qtbot, window):
    assert window.open_lesson("ravine")
    lesson = load_lesson("ravine")
    assert window.document.lab == lesson.lab
    assert window.document.path is None  # Save asks where: never overwrite the lesson
    text = window.lesson_panel.text.text()
    assert lesson.title in text and lesson.question.split()[0] in text
    assert window.controller.is_playing()
    window.reset()


def test_a_two_lab_lesson_offers_both_labs(qtbot, window):
    assert window.open_lesson("batch_norm", autoplay=False)
    lesson = load_lesson("batch_norm")
    window.lesson_panel.lab_chosen.emit(1)
    assert window.document.lab == lesson.labs[1]
    window.reset()
    window.close_lesson()
    assert not window.lesson_dock.isVisibleTo(window)


def test_every_lesson_is_in_the_menu(window):
    titles = [a.text() for a in window.lessons_menu.actions()]
    assert titles == [lesson.title for lesson in list_lessons()]
    assert len(titles) >= 12


def test_an_unknown_lesson_is_refused_and_the_lab_kept(window):
    before = window.document.lab
    assert not window.open_lesson("no-such-lesson")
    assert window.document.lab == before


def test_the_menu_lists_the_lessons_in_teaching_order(window):
    from core.teaching.lessons.loader import TEACHING_ORDER

    titles = [a.text() for a in window.lessons_menu.actions()]
    in_order = [load_lesson(name).title for name in TEACHING_ORDER]
    assert titles[: len(in_order)] == in_order
    assert titles[0] == load_lesson("learning_rate").title  # the lr first, not "AdamW"


def test_next_previous_and_replay_from_the_lesson_panel(qtbot, window):
    from core.teaching.lessons.loader import lesson_names

    names = lesson_names()
    window.show()
    window.resize(1280, 800)
    assert window.open_lesson("ravine", autoplay=False)
    panel = window.lesson_panel
    at = names.index("ravine")
    assert panel.position.text() == f"Lesson {at + 1} of {len(names)}"
    # Read to the bottom, then Next: the next lesson, from its top.
    qtbot.waitUntil(lambda: panel.verticalScrollBar().maximum() > 0)
    panel.verticalScrollBar().setValue(panel.verticalScrollBar().maximum())
    panel.next_button.click()
    assert window.lesson.name == names[at + 1]
    assert panel.verticalScrollBar().value() == 0
    assert window.document.lab == load_lesson(names[at + 1]).lab
    panel.previous_button.click()
    assert window.lesson.name == "ravine"
    window.reset()
    # Replay: the lesson's lab again, from step 0, playing.
    window.step()
    qtbot.waitUntil(lambda: window.history.last_step >= 1, timeout=5000)
    panel.replay_button.click()
    assert window.controller.is_playing()
    assert window.document.lab == load_lesson("ravine").lab
    window.reset()
    # The ends of the order: no Previous before the first, no Next after the last.
    window.open_lesson(names[0], autoplay=False)
    assert not panel.previous_button.isEnabled() and panel.next_button.isEnabled()
    window.open_lesson(names[-1], autoplay=False)
    assert panel.previous_button.isEnabled() and not panel.next_button.isEnabled()
    window.reset()


def test_the_lesson_speaks_to_a_student_not_a_developer(window):
    assert window.open_lesson("ravine", autoplay=False)
    text = window.lesson_panel.text.text()
    assert "Checked by the tests" not in text and "Measured in this race" in text
    window.reset()


def test_closing_the_lesson_dock_with_its_cross_gives_the_editors_back(qtbot, window):
    window.show()
    assert window.open_lesson("ravine", autoplay=False)  # hides the problem editor
    problem = window.dock_splitter.widget(0)
    assert not problem.isVisible()
    window.lesson_dock.close()  # what the dock's × does
    assert problem.isVisible() and window.runs_panel.isVisible()
    assert window.lesson is None
    window.reset()
