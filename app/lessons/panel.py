"""The lesson panel: what to notice, why, and a question — beside a lab that runs itself.

Shows a `core.teaching.lessons.lesson.Lesson`'s text in a right-hand dock. A lesson with several
labs (batch norm: with and without) gets one button per lab. Every sentence the text states as a
measurable fact is checked by the lesson's claims (``main.py lessons check``); the panel lists
those claims too, so a student sees which statements the numbers back.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.teaching.lessons.lesson import Lesson


class LessonPanel(QScrollArea):
    lab_chosen = Signal(int)  # index into lesson.labs
    closed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        self.text = QLabel(objectName="lessonText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text)
        self.lab_buttons = QHBoxLayout()
        layout.addLayout(self.lab_buttons)
        close = QPushButton("Close lesson", objectName="closeLessonButton")
        close.setToolTip("Hide this panel and show every panel again; the lab stays open")
        close.clicked.connect(self.closed)
        layout.addWidget(close)
        layout.addStretch(1)
        self.setWidget(body)
        self.lesson: Lesson | None = None

    def set_lesson(self, lesson: Lesson) -> None:
        self.lesson = lesson
        notice = "".join(f"<li>{escape(item)}</li>" for item in lesson.notice)
        claims = "".join(f"<li>{escape(claim.describe())}</li>" for claim in lesson.claims)
        self.text.setText(
            f"<h2>{escape(lesson.title)}</h2>"
            f"<p><i>{escape(lesson.summary)}</i></p>"
            f"<h3>What to notice</h3><ul>{notice}</ul>"
            f"<h3>Why</h3><p>{escape(lesson.why)}</p>"
            f"<h3>Think about it</h3><p>{escape(lesson.question)}</p>"
            f"<h3>Checked by the tests</h3><ul style='color:#9aa0a8'>{claims}</ul>"
        )
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
