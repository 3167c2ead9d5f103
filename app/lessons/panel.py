"""The lesson panel: what to notice, why, and a question — beside a lab that runs itself.

Shows a `core.teaching.lessons.lesson.Lesson`'s text in a right-hand dock. A lesson with several
labs (batch norm: with and without) gets one button per lab. Every sentence the text states as a
measurable fact is checked by the lesson's claims (``main.py lessons check``); the panel lists
those claims too, under "Measured in this race", so a student sees which statements the numbers
back. Above the text: Previous / Replay / Next and where the lesson stands in the teaching order
(app/shell/lesson_wiring.py opens the lessons; core/teaching/lessons/loader.py has the order).
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.widgets.layouts import ColumnScrollArea
from core.teaching.lessons.lesson import Lesson


class LessonPanel(ColumnScrollArea):
    lab_chosen = Signal(int)  # index into lesson.labs
    closed = Signal()
    previous_requested = Signal()
    next_requested = Signal()
    replay_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        self.position = QLabel(objectName="lessonPosition")
        self.position.setStyleSheet("color: #9aa0a8;")
        layout.addWidget(self.position)
        layout.addLayout(self._build_navigation())
        self.text = QLabel(objectName="lessonText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text)
        # One lab per line: side by side, long lab names made the panel wider than its dock.
        self.lab_buttons = QVBoxLayout()
        layout.addLayout(self.lab_buttons)
        close = QPushButton("Close lesson", objectName="closeLessonButton")
        close.setToolTip("Hide this panel and show every panel again; the lab stays open")
        close.clicked.connect(self.closed)
        layout.addWidget(close)
        layout.addStretch(1)
        self.setWidget(body)
        self.lesson: Lesson | None = None

    def _build_navigation(self) -> QHBoxLayout:
        """◀ Previous · Replay · Next ▶ (under "Lesson 2 of 14")."""
        row = QHBoxLayout()
        self.previous_button = QPushButton("◀ Previous", objectName="previousLessonButton")
        self.previous_button.setToolTip("The lesson before this one")
        self.previous_button.clicked.connect(self.previous_requested)
        self.replay_button = QPushButton("Replay", objectName="replayLessonButton")
        self.replay_button.setToolTip("Run this lesson's race again from the start")
        self.replay_button.clicked.connect(self.replay_requested)
        self.next_button = QPushButton("Next ▶", objectName="nextLessonButton")
        self.next_button.setToolTip("The next lesson")
        self.next_button.clicked.connect(self.next_requested)
        for widget in (self.previous_button, self.replay_button, self.next_button):
            row.addWidget(widget)
        row.addStretch(1)
        return row

    def set_position(self, index: int, count: int, previous: str = "", following: str = "") -> None:
        """Where the lesson stands in the teaching order (index from 0); the neighbours' titles
        go in the buttons' tooltips; the first has no Previous, the last no Next."""
        self.position.setText(f"Lesson {index + 1} of {count}" if count else "")
        self.previous_button.setEnabled(index > 0)
        self.next_button.setEnabled(0 <= index < count - 1)
        self.previous_button.setToolTip(f"The lesson before: {previous}" if previous else
                                        "This is the first lesson")
        self.next_button.setToolTip(f"The next lesson: {following}" if following else
                                    "This is the last lesson")

    def set_lesson(self, lesson: Lesson) -> None:
        """Show ``lesson``'s text from its top (a new lesson never keeps the old scroll)."""
        self.lesson = lesson
        notice = "".join(f"<li>{escape(item)}</li>" for item in lesson.notice)
        claims = "".join(f"<li>{escape(claim.describe())}</li>" for claim in lesson.claims)
        self.text.setText(
            f"<h2>{escape(lesson.title)}</h2>"
            f"<p><i>{escape(lesson.summary)}</i></p>"
            f"<h3>What to notice</h3><ul>{notice}</ul>"
            f"<h3>Why</h3><p>{escape(lesson.why)}</p>"
            f"<h3>Think about it</h3><p>{escape(lesson.question)}</p>"
            f"<h3>Measured in this race</h3>"
            f"<p style='color:#9aa0a8'>The app runs this very race and checks each statement "
            f"against its numbers:</p><ul style='color:#9aa0a8'>{claims}</ul>"
        )
        self.verticalScrollBar().setValue(0)
        while self.lab_buttons.count():
            item = self.lab_buttons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if len(lesson.labs) > 1:
            for i, lab in enumerate(lesson.labs):
                button = QPushButton(lab.name, objectName=f"lessonLab{i}")
                button.setToolTip(f"Open this lesson's lab {i + 1}: {lab.name}")
                button.clicked.connect(self._make_chooser(i))
                self.lab_buttons.addWidget(button)

    def _make_chooser(self, index: int):
        def choose() -> None:
            self.lab_chosen.emit(index)

        return choose
