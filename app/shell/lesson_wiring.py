"""The main window's lessons: the Lessons menu, the lesson dock (app/lessons/panel.py) and what a
lesson does to the window (loads its lab unsaved, hides the panels it does not need, plays).

The dock is built on the first lesson; `window.lesson`, `window.lesson_dock` and
`window.lesson_panel` stay None until then.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDockWidget

from app.shell.menus import DEFAULT_SPEED_INDEX
from core.errors import LabError


class LessonWiring(QObject):
    """Opens and closes lessons in one `MainWindow`."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        window.lesson = None
        window.lesson_dock = None
        window.lesson_panel = None

    def fill_menu(self, menu) -> None:
        from core.teaching.lessons.loader import list_lessons

        try:
            lessons = list_lessons()
        except LabError as exc:  # a broken lesson file must not take the window down
            menu.addAction(f"(lessons unavailable: {exc})").setEnabled(False)
            return
        for lesson in lessons:
            action = menu.addAction(lesson.title)
            action.setToolTip(lesson.summary)
            action.triggered.connect(self._opener(lesson.name))

    def _opener(self, name: str):
        def open_it() -> None:
            if self.window._confirm_discard():
                self.window.open_lesson(name)

        return open_it

    def open_lesson(self, name: str, autoplay: bool = True) -> bool:
        """Load a lesson: its lab (unsaved, so Save asks where), its text, and play it."""
        from app.lessons.panel import LessonPanel
        from core.teaching.lessons.loader import load_lesson

        window = self.window
        try:
            lesson = load_lesson(name)
        except LabError as exc:
            window.file_actions.error(f"Could not open the lesson {name!r}", str(exc))
            return False
        if window.lesson_dock is None:
            window.lesson_panel = LessonPanel()
            window.lesson_panel.lab_chosen.connect(self.open_lesson_lab)
            window.lesson_panel.closed.connect(window.close_lesson)
            window.lesson_dock = QDockWidget("Lesson", window, objectName="lessonDock")
            window.lesson_dock.setWidget(window.lesson_panel)
            window.lesson_dock.setMinimumWidth(260)
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.lesson_dock)
        window.lesson = lesson
        window.lesson_panel.set_lesson(lesson)
        window.lesson_dock.show()
        # The race stays the centre of attention: the text gets a narrow column.
        lab_dock = window.findChild(QDockWidget, "labDock")
        window.resizeDocks([lab_dock, window.lesson_dock], [370, 320], Qt.Orientation.Horizontal)
        self._apply_hidden_panels(lesson.hide_panels)
        self.open_lesson_lab(0, autoplay=autoplay)
        return True

    def open_lesson_lab(self, index: int, autoplay: bool = True) -> None:
        window = self.window
        lab = window.lesson.labs[index]
        window.document.replace(lab, None)
        window.status_label.setText(f"Lesson: {window.lesson.title}")
        if autoplay:
            window.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
            window.play()

    def _apply_hidden_panels(self, hidden) -> None:
        """Focus: a lesson may hide the editing panels it does not need."""
        window = self.window
        window.dock_splitter.widget(0).setVisible("problem" not in hidden)
        window.runs_panel.setVisible("runs" not in hidden)
        window.arena_view.widget(1).setVisible("curves" not in hidden)

    def close_lesson(self) -> None:
        window = self.window
        if window.lesson_dock is not None:
            window.lesson_dock.hide()
        self._apply_hidden_panels(())
        window.lesson = None
