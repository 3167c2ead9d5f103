"""The start page: shown on first start and from Help ▸ Getting started, remembered once
dismissed; its choices open the default race, the network example, a lesson, the Open dialog;
lessons in teaching order with the user's progress."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.shell import start_page
from app.shell.start_page import (
    FINISHED_KEY,
    OPENED_KEY,
    due_at_startup,
    lessons_in_order,
    show_if_due,
    show_start_page,
)
from core.lab.format import default_lab


def test_first_start_shows_it_and_dismissing_is_remembered(window, settings):
    window.show()
    assert due_at_startup(settings)
    page = window.start_page if show_if_due(window) else None
    assert page is not None and page.isVisible()
    assert page.geometry() == window.rect()  # covers the window, so a grab shows it
    page.dismiss()
    assert not page.isVisible()
    assert not due_at_startup(settings) and not show_if_due(window)
    # Help ▸ Getting started brings it back; the checkbox asks for it at every start.
    window.getting_started_action.trigger()
    page = window.start_page
    assert page.isVisible()
    page.always_check.setChecked(True)
    page.dismiss()
    assert due_at_startup(settings)


def test_lessons_listed_in_order_with_progress(window, settings):
    from core.teaching.lessons.loader import TEACHING_ORDER

    lessons, problem = lessons_in_order()
    assert lessons and not problem
    names = {x.name for x in lessons}
    assert [x.name for x in lessons] == [n for n in TEACHING_ORDER if n in names]
    first, second = lessons[0].name, lessons[1].name
    settings.setValue(OPENED_KEY, [first, second])
    settings.setValue(FINISHED_KEY, [first])
    page = show_start_page(window)
    items = [page.lesson_list.item(i) for i in range(page.lesson_list.count())]
    assert [i.data(Qt.ItemDataRole.UserRole) for i in items] == [x.name for x in lessons]
    states = [i.data(Qt.ItemDataRole.UserRole + 1) for i in items]
    assert states[:2] == ["finished", "opened"] and set(states[2:]) == {"new"}
    assert items[0].text().startswith(start_page.MARKS["finished"])


def test_opening_and_finishing_a_lesson_is_recorded(window, settings, qtbot):
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # as fast as it goes
    assert window.open_lesson("ravine", autoplay=False)
    assert window.lesson_progress.state("ravine") == "opened"
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    assert window.lesson_progress.state("ravine") == "finished"
    assert settings.value(FINISHED_KEY) in (["ravine"], "ravine")


def test_a_lesson_on_the_page_opens_it(window, qtbot):
    page = show_start_page(window)
    item = page.lesson_list.item(1)
    page.lesson_list.itemClicked.emit(item)
    assert window.lesson is not None
    assert window.lesson.name == item.data(Qt.ItemDataRole.UserRole)
    assert not page.isVisible()
    window.pause()


def test_play_a_race_and_compare_on_a_network(window, qtbot):
    from core.lab.format import load_lab

    window.document.replace(load_lab(start_page_example()), None)  # something else is open
    page = show_start_page(window)
    page.play_card.click()
    assert not page.isVisible()
    assert window.document.lab == default_lab()
    assert window.controller.is_playing() or window.race_wiring.finished
    window.pause()
    page = show_start_page(window)
    page.network_card.click()
    assert window.document.lab.is_network and window.document.path.name == "moons_race.lab.json"
    assert window.controller.is_playing() or window.race_wiring.finished
    window.pause()


def start_page_example():
    from core.user_data import RESOURCES_DIR

    return RESOURCES_DIR / "labs" / "ravine.lab.json"


def test_open_a_lab_opens_the_dialog(window, monkeypatch):
    opened = []
    monkeypatch.setattr(window, "open_dialog", lambda: opened.append(True))
    page = show_start_page(window)
    page.open_card.click()
    assert opened == [True] and not page.isVisible()
