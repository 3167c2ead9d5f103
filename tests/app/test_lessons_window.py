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
