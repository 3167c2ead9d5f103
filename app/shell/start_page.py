"""The start page: the app's three uses on one screen, shown over the window on first start and
from Help ▸ Getting started (F1).

* **Play a race**: the default arena (SGD, Momentum and Adam on a 2-D function), playing at once;
* **Compare optimizers on a network**: the two-moons example (resources/labs/moons_race.lab.json);
* **Lessons**: every lesson in teaching order with the user's progress (`LessonProgress`:
  opened, and finished = a race of the lesson's lab ran to its end while the lesson was open);
* **Open a lab**: the Open dialog, and the recent files.

`StartPage` is a child of the window covering it (so a grab of the window shows it), dismissed by
Close, Esc, or choosing anything. Dismissing it is remembered in the window's QSettings
(``start_page/dismissed``; a checkbox asks for it at every start instead); tests pass their own
QSettings, so nothing of theirs reaches the user's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import LabError
from core.user_data import RESOURCES_DIR

DISMISSED_KEY = "start_page/dismissed"
ALWAYS_KEY = "start_page/show_at_startup"
OPENED_KEY, FINISHED_KEY = "lessons/opened", "lessons/finished"
NETWORK_EXAMPLE = "moons_race.lab.json"
MARKS = {"finished": "✓", "opened": "◐", "new": "○"}


def _names(settings, key: str) -> list[str]:
    value = settings.value(key, [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


class LessonProgress(QObject):
    """Which lessons the user opened and finished, kept in the window's QSettings."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        window.document.lab_changed.connect(self._on_lab_changed)
        window.race_finished.connect(self._on_race_finished)

    def _add(self, key: str, name: str) -> None:
        names = _names(self.window.settings, key)
        if name not in names:
            self.window.settings.setValue(key, [*names, name])

    def _on_lab_changed(self, *_args) -> None:
        lesson = getattr(self.window, "lesson", None)
        if lesson is not None and self.window.document.path is None:
            self._add(OPENED_KEY, lesson.name)

    def _on_race_finished(self, completed: bool) -> None:
        lesson = getattr(self.window, "lesson", None)
        if completed and lesson is not None and self.window.document.path is None:
            self._add(FINISHED_KEY, lesson.name)

    def state(self, name: str) -> str:
        """"finished", "opened" or "new"."""
        if name in _names(self.window.settings, FINISHED_KEY):
            return "finished"
        return "opened" if name in _names(self.window.settings, OPENED_KEY) else "new"


def lessons_in_order():
    """The lessons in teaching order (core/teaching/lessons/loader.py, `TEACHING_ORDER`), or []
    and the reason they cannot be read."""
    from core.teaching.lessons.loader import list_lessons

    try:
        return list_lessons(), ""
    except LabError as exc:
        return [], str(exc)


def _default_race_text() -> str:
    """What the default arena races, read from it ("SGD, … and Adam race down Rosenbrock …")."""
    from core.lab.format import default_lab
    from core.problems.functions import get_function

    lab = default_lab()
    labels = [run.label for run in lab.runs]
    names = ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else labels[0]
    return f"{names} race down {get_function(lab.problem.function).title} from one start."


def _action_card(title: str, text: str, name: str) -> QPushButton:
    """A big button: a title and a line saying what it does."""
    button = QPushButton(objectName=name)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setMinimumHeight(100)
    layout = QVBoxLayout(button)
    layout.setContentsMargins(16, 10, 16, 10)
    heading = QLabel(f"<span style='font-size:13pt; font-weight:600'>{title}</span>")
    body = QLabel(text, wordWrap=True)
    body.setStyleSheet("color: palette(placeholder-text);")
    for label in (heading, body):
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout.addWidget(label)
    return button


class StartPage(QWidget):
    """The page over the window; `dismiss` hides it and remembers that it was seen."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.setObjectName("startPage")
        self.setAutoFillBackground(False)
        card = QFrame(objectName="startCard")
        card.setMaximumSize(1040, 660)
        card.setStyleSheet(
            "QFrame#startCard { background: palette(window); border-radius: 14px;"
            " border: 1px solid palette(mid); }"
            " QPushButton[objectName^='start'] { text-align: left; border-radius: 10px;"
            " border: 1px solid palette(mid); background: palette(base); }"
            " QPushButton[objectName^='start']:hover { border: 2px solid palette(highlight); }")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 20)
        row.addStretch(1)
        outer.addLayout(row, 20)
        outer.addStretch(1)

        layout = QVBoxLayout(card)
        layout.setContentsMargins(28, 22, 28, 18)
        layout.setSpacing(14)
        layout.addLayout(self._header())
        columns = QHBoxLayout()
        columns.setSpacing(22)
        columns.addLayout(self._uses(), 11)
        columns.addLayout(self._lessons(), 10)
        layout.addLayout(columns, 1)
        layout.addLayout(self._footer())
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.dismiss)
        self.setGeometry(window.rect())
        window.installEventFilter(self)  # last: follows the window's size once fully made

    # -- parts ---------------------------------------------------------------------------------

    def _header(self) -> QHBoxLayout:
        from app.shell.desktop_entry import app_icon

        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(56, 56))
        title = QLabel("<span style='font-size:20pt; font-weight:600'>Welcome to Descent Lab"
                       "</span><br>Real PyTorch optimizers race side by side: the same start, "
                       "the same data, every step visible.")
        row = QHBoxLayout()
        row.addWidget(icon)
        row.addSpacing(8)
        row.addWidget(title, 1)
        close = QPushButton("✕", objectName="startClose", toolTip="Close (Esc)")
        close.setFixedSize(30, 30)
        close.setStyleSheet("font-size: 13pt;")
        close.clicked.connect(self.dismiss)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        return row

    def _uses(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.setSpacing(10)
        self.play_card = _action_card(
            "▶  Play a race", f"{_default_race_text()} Space pauses, drag the crosshair to "
            "move the start, add runs on the left.", "startPlayRace")
        self.play_card.clicked.connect(self.play_race)
        self.network_card = _action_card(
            "◉  Compare optimizers on a network",
            "Optimizers train the same small network on the two moons, from the same weights "
            "with the same mini-batches: loss curves, decision boundaries, a comparison table.",
            "startNetworkRace")
        self.network_card.clicked.connect(self.network_race)
        self.open_card = _action_card(
            "▤  Open a lab…", "A .lab.json file of your own, or one you saved.", "startOpenLab")
        self.open_card.clicked.connect(self.open_lab)
        for card in (self.play_card, self.network_card, self.open_card):
            column.addWidget(card)
        recent = self.window.file_actions.recent()[:3]
        if recent:
            column.addWidget(QLabel("<b>Recent</b>"))
        for path in recent:
            link = QPushButton(Path(path).name, objectName="startRecent", toolTip=path, flat=True)
            link.setStyleSheet("text-align: left; padding: 2px 6px;")
            link.clicked.connect(lambda _=False, p=path: self._open_path(p))
            column.addWidget(link)
        column.addStretch(1)
        tips = QLabel(
            "<b>Good to know</b><br>Space plays and pauses, → steps, R resets, F11 is presenter "
            "mode; Ctrl+/ lists every shortcut.<br>Hold the mouse over a plot and click its "
            "<b>?</b> to learn what it shows.", wordWrap=True, objectName="startTips")
        tips.setStyleSheet("color: palette(placeholder-text);")
        column.addWidget(tips)
        return column

    def _lessons(self) -> QVBoxLayout:
        column = QVBoxLayout()
        lessons, problem = lessons_in_order()
        progress = self.window.lesson_progress
        states = [progress.state(lesson.name) for lesson in lessons]
        done = states.count("finished")
        heading = QLabel(f"<span style='font-size:13pt; font-weight:600'>Lessons</span>"
                         f"&nbsp;&nbsp;{done} of {len(lessons)} finished")
        column.addWidget(heading)
        self.lesson_list = QListWidget(objectName="startLessons")
        self.lesson_list.setAlternatingRowColors(True)
        self.lesson_list.setStyleSheet("QListWidget::item { padding: 5px 4px; }")
        self.lesson_list.setCursor(Qt.CursorShape.PointingHandCursor)
        for i, (lesson, state) in enumerate(zip(lessons, states, strict=True), start=1):
            item = QListWidgetItem(f"{MARKS[state]}   {i}.  {lesson.title}")
            item.setData(Qt.ItemDataRole.UserRole, lesson.name)
            item.setData(Qt.ItemDataRole.UserRole + 1, state)
            item.setToolTip(f"{lesson.summary}\n({state if state != 'new' else 'not opened yet'})")
            self.lesson_list.addItem(item)
        if problem:
            self.lesson_list.addItem(f"(lessons unavailable: {problem})")
        self.lesson_list.itemClicked.connect(self._open_lesson_item)
        self.lesson_list.itemActivated.connect(self._open_lesson_item)
        column.addWidget(self.lesson_list, 1)
        column.addWidget(QLabel(f"{MARKS['finished']} finished   {MARKS['opened']} opened   "
                                f"{MARKS['new']} not yet — each lesson is a short race with a "
                                "question; the Lessons menu has them too."), 0)
        column.itemAt(column.count() - 1).widget().setWordWrap(True)
        return column

    def _footer(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.always_check = QCheckBox("Show this page at every start", objectName="startAlways")
        self.always_check.setChecked(self.window.settings.value(ALWAYS_KEY, False, type=bool))
        self.always_check.toggled.connect(
            lambda on: self.window.settings.setValue(ALWAYS_KEY, bool(on)))
        row.addWidget(self.always_check)
        row.addStretch(1)
        row.addWidget(QLabel("Help ▸ Getting started (F1) brings this page back."))
        return row

    # -- what the choices do ---------------------------------------------------------------------

    def dismiss(self) -> None:
        self.window.settings.setValue(DISMISSED_KEY, True)
        self.hide()
        self.window.setFocus()

    def play_race(self) -> None:
        from core.lab.format import default_lab

        if self.window._confirm_discard():
            self.dismiss()
            self.window.document.replace(default_lab(), None)
            self.window.play()

    def network_race(self) -> None:
        if self.window.open_lab_after_asking(RESOURCES_DIR / "labs" / NETWORK_EXAMPLE):
            self.dismiss()
            self.window.play()

    def open_lab(self) -> None:
        self.dismiss()
        self.window.open_dialog()

    def _open_path(self, path: str) -> None:
        if self.window.open_lab_after_asking(path):
            self.dismiss()

    def _open_lesson_item(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        if name and self.window._confirm_discard() and self.window.open_lesson(name):
            self.dismiss()

    # -- the backdrop --------------------------------------------------------------------------

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.window and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.window.rect())
        return False

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 150))
        painter.end()


def show_start_page(window) -> StartPage:
    """Show the start page (made afresh, so its progress and recent files are current)."""
    old = getattr(window, "start_page", None)
    if old is not None:
        old.deleteLater()
    window.start_page = StartPage(window)
    window.start_page.show()
    window.start_page.raise_()
    window.start_page.setFocus()
    return window.start_page


def due_at_startup(settings) -> bool:
    """First start (never dismissed), or the user asked for it at every start."""
    return (not settings.value(DISMISSED_KEY, False, type=bool)
            or settings.value(ALWAYS_KEY, False, type=bool))


def show_if_due(window) -> bool:
    """At startup: the start page, when `due_at_startup`."""
    if not due_at_startup(window.settings):
        return False
    show_start_page(window)
    return True
