"""The main window's lessons: the Lessons menu, the lesson dock (app/lessons/panel.py) and what a
lesson does to the window (loads its lab unsaved, hides the panels it does not need, plays).
Lessons come in teaching order (core/teaching/lessons/loader.py, `lesson_names`): the menu, and
the panel's Previous / Next; Replay runs the lab shown again. Closing the lesson (its button or
the dock's ×) shows every panel again.

The dock is built on the first lesson; `window.lesson`, `window.lesson_dock` and
`window.lesson_panel` stay None until then.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDockWidget

from app.shell.menus import DEFAULT_SPEED_INDEX
from core.errors import LabError


class LessonDock(QDockWidget):
    """The lesson's dock; says when its × closes it (QDockWidget has no such signal)."""

    closed = Signal()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().closeEvent(event)
        if event.isAccepted():
            self.closed.emit()


class LessonWiring(QObject):
    """Opens and closes lessons in one `MainWindow`."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        window.lesson = None
        window.lesson_dock = None
        window.lesson_panel = None
        self.lab_index = 0  # the lesson's lab shown (Replay runs it again)

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
            window.lesson_panel.previous_requested.connect(lambda: self._go(-1))
            window.lesson_panel.next_requested.connect(lambda: self._go(+1))
            window.lesson_panel.replay_requested.connect(self._replay)
            window.lesson_dock = LessonDock("Lesson", window, objectName="lessonDock")
            # Its × must give the editors back, as "Close lesson" does.
            window.lesson_dock.closed.connect(window.close_lesson)
            window.lesson_dock.setWidget(window.lesson_panel)
            window.lesson_dock.setMinimumWidth(260)
            window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.lesson_dock)
            # One column on the right, the lesson above the internals: side by side their
            # widths added up and widened the window past the screen.
            window.splitDockWidget(window.lesson_dock, window.internals_dock,
                                   Qt.Orientation.Vertical)
        window.lesson = lesson
        window.lesson_panel.set_lesson(lesson)
        self._show_position(lesson.name)
        window.lesson_dock.show()
        # The race stays the centre of attention: the text gets a narrow column.
        lab_dock = window.findChild(QDockWidget, "labDock")
        window.resizeDocks([lab_dock, window.lesson_dock], [370, 320], Qt.Orientation.Horizontal)
        self._apply_hidden_panels(lesson.hide_panels)
        self.open_lesson_lab(0, autoplay=autoplay)
        return True

    def _show_position(self, name: str) -> None:
        from core.teaching.lessons.loader import lesson_names, load_lesson

        names = lesson_names()
        if name not in names:  # a lesson from elsewhere (a path): no neighbours
            self.window.lesson_panel.set_position(-1, 0)
            return
        index = names.index(name)

        def title(i: int) -> str:
            try:
                return load_lesson(names[i]).title if 0 <= i < len(names) else ""
            except LabError:
                return names[i]

        self.window.lesson_panel.set_position(index, len(names), title(index - 1),
                                              title(index + 1))

    def _go(self, step: int) -> None:
        """Previous (-1) or next (+1) lesson in teaching order, asking about unsaved edits."""
        from core.teaching.lessons.loader import lesson_names

        window = self.window
        names = lesson_names()
        if window.lesson is None or window.lesson.name not in names:
            return
        index = names.index(window.lesson.name) + step
        if 0 <= index < len(names) and window._confirm_discard():
            window.open_lesson(names[index])

    def _replay(self) -> None:
        """The lab shown, fresh from the lesson, played from step 0 (edits: asks first)."""
        if self.window.lesson is not None and self.window._confirm_discard():
            self.open_lesson_lab(self.lab_index)

    def open_lesson_lab(self, index: int, autoplay: bool = True) -> None:
        window = self.window
        self.lab_index = index
        lab = window.lesson.labs[index]
        window.document.replace(lab, None)
        window.status_label.setText(f"Lesson: {window.lesson.title}")
        if autoplay:
            window.speed_combo.setCurrentIndex(DEFAULT_SPEED_INDEX)
            window.play()

    def _apply_hidden_panels(self, hidden) -> None:
        """Focus: a lesson may hide the editing panels it does not need."""
        window = self.window
        window.lab_views.set_problem_hidden("problem" in hidden)
        window.runs_panel.setVisible("runs" not in hidden)
        window.arena_view.widget(1).setVisible("curves" not in hidden)

    def close_lesson(self) -> None:
        window = self.window
        if window.lesson_dock is not None:
            window.lesson_dock.hide()
        self._apply_hidden_panels(())
        window.lesson = None
