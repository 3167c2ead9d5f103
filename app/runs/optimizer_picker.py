"""The optimizer picker of the run editor: every optimizer a run can use, grouped (torch.optim,
pytorch-optimizer, schedule-free, yours), with type-to-search.

`OptimizerPicker` is a QComboBox (its items carry the optimizer's name as data, so ``findData``,
``currentData`` and ``activated`` work as for any combo), whose popup is a search field over a
grouped list (`PickerPopup`): typing filters by name, title, group and description; a group shows
while any of its entries matches. torch.optim's entries are there from the start with their
hand-written descriptions; the zoo's (app/runs/zoo_listing.py) are added when the popup first
opens, because importing pytorch-optimizer takes seconds that the app's first paint must not wait
for (app/shell/warmup.py usually lists it in the background before then).

An entry that cannot race the lab shown is listed disabled with the reason in its text and
tooltip: on a 2-D function, an optimizer that only works on weight matrices (Muon); anywhere, a
zoo class that cannot race here at all (it takes a whole model, wraps another optimizer…). A zoo
optimizer that failed its check (app/runs/check_dialog.py) carries a warning sign.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.runs import zoo_listing
from core.optim.optimizers import OPTIMIZERS, OptimizerInfo

GROUPS = ("torch.optim", "pytorch-optimizer", "schedule-free", "yours")
GROUP_TITLES = {"torch.optim": "torch.optim", "pytorch-optimizer": "pytorch-optimizer",
                "schedule-free": "Schedule-Free", "yours": "Yours (your own code)"}
NO_CODE_YET = "Yours — Add ▸ Optimizer from file… (or drop a .py on the runs)"
NAME_ROLE = Qt.ItemDataRole.UserRole  # what QComboBox.findData / currentData read
GROUP_ROLE = Qt.ItemDataRole.UserRole + 1
HEADER_ROLE = Qt.ItemDataRole.UserRole + 2  # True on a group's title row
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3  # the lower-case text a search matches
MATRIX_ROLE = Qt.ItemDataRole.UserRole + 4  # True: only works on weight matrices
REFUSED_ROLE = Qt.ItemDataRole.UserRole + 5  # why it cannot race at all ("" if it can)
TITLE_ROLE = Qt.ItemDataRole.UserRole + 6
BADGE_ROLE = Qt.ItemDataRole.UserRole + 7  # True: failed its check (a warning sign)

MATRIX_REASON = "works on weight matrices only: race it on a network lab"


def matches(item: QStandardItem, terms: list[str]) -> bool:
    """Whether every search term occurs in the entry's name, title, group or description."""
    text = item.data(SEARCH_ROLE) or ""
    return all(term in text for term in terms)


class GroupFilter(QSortFilterProxyModel):
    """Entries whose text holds every typed word, and the title row of each group with one."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._terms: list[str] = []

    def set_text(self, text: str) -> None:
        self.beginFilterChange()
        self._terms = text.casefold().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:  # noqa: N802 - Qt's name
        model = self.sourceModel()
        item = model.item(row)
        if not self._terms:
            return True
        if item.data(HEADER_ROLE):
            group = item.data(GROUP_ROLE)
            return any(
                model.item(r).data(GROUP_ROLE) == group and not model.item(r).data(HEADER_ROLE)
                and matches(model.item(r), self._terms)
                for r in range(row + 1, model.rowCount())
            )
        return matches(item, self._terms)


class PickerPopup(QFrame):
    """The picker's popup: a search field over the grouped list. Enter or a click picks."""

    picked = Signal(str)  # an optimizer's name

    def __init__(self, picker: OptimizerPicker):
        super().__init__(picker, Qt.WindowType.Popup)
        self.setObjectName("optimizerPopup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        self.search = QLineEdit(objectName="optimizerSearch")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search optimizers")
        layout.addWidget(self.search)
        self.filter = GroupFilter(self)
        self.filter.setSourceModel(picker.model())
        self.list = QListView(objectName="optimizerList")
        self.list.setModel(self.filter)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setUniformItemSizes(True)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing always goes to the search
        layout.addWidget(self.list, 1)
        self.hint = QLabel(objectName="optimizerSearchHint")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.search.textChanged.connect(self._on_text)
        self.search.installEventFilter(self)
        self.list.clicked.connect(self._on_clicked)
        # While the zoo is being described in the background, grey out what cannot race as it
        # is found (app/runs/zoo_listing.py).
        self.timer = QTimer(self, interval=400)
        self.timer.timeout.connect(self._on_tick)

    def _on_tick(self) -> None:
        self.parent().refresh()
        if not zoo_listing.is_describing():
            self.timer.stop()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt's name
        self.timer.stop()
        super().hideEvent(event)

    def open_at(self, anchor: QWidget, text: str = "") -> None:
        count = sum(1 for r in range(self.filter.sourceModel().rowCount())
                    if not self.filter.sourceModel().item(r).data(HEADER_ROLE))
        self.search.setPlaceholderText(f"Type to search {count} optimizers…")
        width = max(anchor.width(), 380)
        height = min(460, max(260, anchor.screen().availableGeometry().height() // 2))
        self.resize(width, height)
        below = anchor.mapToGlobal(anchor.rect().bottomLeft())
        screen = anchor.screen().availableGeometry()
        x = min(below.x(), screen.right() - width)
        y = below.y() if below.y() + height <= screen.bottom() else \
            anchor.mapToGlobal(anchor.rect().topLeft()).y() - height
        self.move(max(screen.left(), x), max(screen.top(), y))
        self.show()
        self.search.setFocus()
        self.search.setText(text)
        self._on_text(text)  # after show: the list scrolls to the choice at its real size
        if zoo_listing.is_describing():
            self.timer.start()

    def _on_text(self, text: str) -> None:
        self.filter.set_text(text)
        entries = [self.filter.index(r, 0) for r in range(self.filter.rowCount())
                   if not self.filter.index(r, 0).data(HEADER_ROLE)]
        if text.strip():
            self.hint.setText(f"{len(entries)} match{'es' if len(entries) != 1 else ''}"
                              " — Enter picks the highlighted one" if entries
                              else "No optimizer matches; try fewer letters.")
        else:
            self.hint.setText("↑↓ to move, Enter to pick, Esc to close")
        current = self._current_or_first(entries)
        self.list.setCurrentIndex(current if current is not None else QModelIndex())
        if current is not None:
            self.list.scrollTo(current)

    def _current_or_first(self, entries: list[QModelIndex]) -> QModelIndex | None:
        """What Enter would pick: with no text, the run's optimizer; else the best match (the
        title itself, then a title that starts with the text, then the first match)."""
        usable = [i for i in entries if i.flags() & Qt.ItemFlag.ItemIsEnabled]
        text = self.search.text().strip().casefold()
        if not text:
            chosen = self.parent().currentData()
            return next((i for i in usable if i.data(NAME_ROLE) == chosen),
                        usable[0] if usable else None)
        if not usable:
            return None
        return min(usable, key=lambda i: (i.data(TITLE_ROLE).casefold() != text,
                                          not i.data(TITLE_ROLE).casefold().startswith(text),
                                          i.row()))

    def _move(self, step: int) -> None:
        row = self.list.currentIndex().row()
        rows = self.filter.rowCount()
        r = row
        for _ in range(rows):
            r = (r + step) % rows if rows else 0
            index = self.filter.index(r, 0)
            if not index.data(HEADER_ROLE) and index.flags() & Qt.ItemFlag.ItemIsEnabled:
                self.list.setCurrentIndex(index)
                self.list.scrollTo(index)
                return

    def _pick(self, index: QModelIndex) -> None:
        if index.isValid() and not index.data(HEADER_ROLE) and \
                index.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.hide()
            self.picked.emit(index.data(NAME_ROLE))

    def _on_clicked(self, index: QModelIndex) -> None:
        self._pick(index)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                self._move(1 if key == Qt.Key.Key_Down else -1)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._pick(self.list.currentIndex())
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                return True
        return super().eventFilter(watched, event)


class OptimizerPicker(QComboBox):
    """The grouped, searchable optimizer combo of the run editor. See the module docstring."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, objectName="optimizerCombo")
        self.setAccessibleName("Optimizer")
        self.setModel(QStandardItemModel(self))
        self._network = False
        self._popup: PickerPopup | None = None
        for group in GROUPS:
            self._header(group)
        for info in OPTIMIZERS.values():
            self._add(info.name, info.title, "torch.optim", info.description,
                      matrix=bool(info.min_param_ndim))
        self._zoo_listed = False
        self._apply_rules()

    # ---------------------------------------------------------------- the entries

    def _header(self, group: str, text: str | None = None) -> QStandardItem:
        item = QStandardItem(text or GROUP_TITLES[group])
        item.setData(group, GROUP_ROLE)
        item.setData(True, HEADER_ROLE)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = item.font()
        font.setBold(True)
        item.setFont(font)
        self.model().appendRow(item)
        return item

    def _group_end(self, group: str) -> int:
        """The row after the last row of ``group`` (its entries follow its title row)."""
        model = self.model()
        end = None
        for row in range(model.rowCount()):
            if model.item(row).data(GROUP_ROLE) == group:
                end = row + 1
        return model.rowCount() if end is None else end

    def _add(self, name: str, title: str, group: str, description: str = "", origin: str = "",
             matrix: bool = False, refused: str = "") -> QStandardItem:
        item = QStandardItem(title)
        item.setData(name, NAME_ROLE)
        item.setData(title, TITLE_ROLE)
        item.setData(group, GROUP_ROLE)
        item.setData(" ".join((name, title, group, description, origin)).casefold(), SEARCH_ROLE)
        item.setData(matrix, MATRIX_ROLE)
        item.setData(refused, REFUSED_ROLE)
        item.setData(description or origin or title, Qt.ItemDataRole.ToolTipRole)
        self.model().insertRow(self._group_end(group), item)
        return item

    def entries(self, group: str | None = None) -> list[QStandardItem]:
        """The entry items (not the titles), of one group or of all."""
        model = self.model()
        return [model.item(r) for r in range(model.rowCount())
                if not model.item(r).data(HEADER_ROLE)
                and (group is None or model.item(r).data(GROUP_ROLE) == group)]

    def ensure_zoo(self) -> None:
        """Add the zoo's entries (the first time: imports the zoo packages, seconds)."""
        if self._zoo_listed:
            return
        if not zoo_listing.is_listed():
            QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                entries = zoo_listing.zoo_entries()
            finally:
                QGuiApplication.restoreOverrideCursor()
        else:
            entries = zoo_listing.zoo_entries()
        self._zoo_listed = True
        current = self.currentData()
        self.blockSignals(True)
        origins = {}
        for entry in entries:
            if self.findData(entry.ref) < 0:
                self._add(entry.ref, entry.title, entry.group, origin=entry.origin)
            origins[entry.group] = entry.origin
        for item in self._headers():
            group = item.data(GROUP_ROLE)
            if group in origins:  # "pytorch-optimizer 4.1.0": which version races
                item.setText(f"{GROUP_TITLES[group]} {origins[group].rsplit(' ', 1)[-1]}")
        self.setCurrentIndex(self.findData(current))
        self.blockSignals(False)
        self._apply_rules()

    def _headers(self) -> list[QStandardItem]:
        model = self.model()
        return [model.item(r) for r in range(model.rowCount()) if model.item(r).data(HEADER_ROLE)]

    def add_entry(self, info: OptimizerInfo) -> None:
        """List ``info`` (an optimizer outside torch.optim: a zoo one, or the user's code) in its
        group, if it is not listed yet; update what is known of it either way."""
        position = self.findData(info.name)
        self.blockSignals(True)
        if position < 0:
            group = info.group if info.group in GROUPS else "yours"
            self._add(info.name, info.title, group, info.description, info.origin,
                      matrix=bool(info.min_param_ndim))
        else:
            self.model().item(position).setData(bool(info.min_param_ndim), MATRIX_ROLE)
        self.blockSignals(False)
        self._apply_rules()

    # ---------------------------------------------------------------- what can race here

    def set_network(self, network: bool) -> None:
        """The lab shown is a network lab (True) or a 2-D function (False)."""
        if network != self._network:
            self._network = network
            self._apply_rules()

    def _apply_rules(self) -> None:
        """Enable what can race the lab shown; say why the rest cannot; badge failed checks."""
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        yours = next(h for h in self._headers() if h.data(GROUP_ROLE) == "yours")
        yours.setText(GROUP_TITLES["yours"] if self.entries("yours") else NO_CODE_YET)
        for item in self.entries():
            name = item.data(NAME_ROLE)
            known = zoo_listing.known(name)
            if isinstance(known, str):
                item.setData(known, REFUSED_ROLE)
            elif known is not None:
                item.setData(bool(known.min_param_ndim), MATRIX_ROLE)
            refused = item.data(REFUSED_ROLE) or (
                MATRIX_REASON if item.data(MATRIX_ROLE) and not self._network else "")
            title = item.data(TITLE_ROLE)
            text = f"{title} — {short_reason(refused)}" if refused else title
            flags = (Qt.ItemFlag.NoItemFlags if refused
                     else Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
            failed = zoo_listing.check_failures(name)
            tip = [refused and f"Cannot race here: {refused}", failed and f"⚠ Check failed: {failed}",
                   self._tooltip_of(item)]
            tip_text = "\n\n".join(t for t in tip if t)
            if (item.text(), item.flags(), item.data(Qt.ItemDataRole.ToolTipRole),
                    item.data(BADGE_ROLE)) == (text, flags, tip_text, bool(failed)):
                continue  # unchanged: no signal, the open list keeps its place
            item.setText(text)
            item.setFlags(flags)
            item.setData(bool(failed), BADGE_ROLE)
            item.setData(warning if failed else None, Qt.ItemDataRole.DecorationRole)
            item.setData(tip_text, Qt.ItemDataRole.ToolTipRole)

    @staticmethod
    def _tooltip_of(item: QStandardItem) -> str:
        if item.data(GROUP_ROLE) == "torch.optim":
            info = OPTIMIZERS.get(item.data(NAME_ROLE))
            return info.description if info else ""
        known = zoo_listing.known(item.data(NAME_ROLE))
        if known is not None and not isinstance(known, str):
            return f"{known.description}\n(from {known.origin})".strip()
        return item.data(NAME_ROLE)

    def mark_refused(self, name: str, reason: str) -> None:
        """``name`` cannot race anywhere (found when it was picked): list it disabled, saying why."""
        position = self.findData(name)
        if position >= 0:
            self.model().item(position).setData(reason, REFUSED_ROLE)
            self._apply_rules()

    def refused(self, name: str) -> str:
        """Why ``name`` cannot race the lab shown ("" when it can or is unknown here)."""
        position = self.findData(name)
        if position < 0:
            return ""
        item = self.model().item(position)
        return item.data(REFUSED_ROLE) or (
            MATRIX_REASON if item.data(MATRIX_ROLE) and not self._network else "")

    def refresh(self) -> None:
        """Re-read what is known of the zoo's entries and the checks' verdicts."""
        self._apply_rules()

    # ---------------------------------------------------------------- choosing

    def show_optimizer(self, name: str, info: OptimizerInfo | None) -> None:
        """Show ``name`` as the choice (adding its entry when it is not listed). Emits nothing."""
        if info is not None and self.findData(name) < 0:
            self.add_entry(info)
        self.blockSignals(True)
        position = self.findData(name)
        if position < 0:  # user code not loaded yet: its name is all there is
            position = self._add(name, name.rsplit(":", 1)[-1], "yours").row()
            self._apply_rules()
        self.setCurrentIndex(position)
        self.blockSignals(False)

    def choose(self, name: str) -> None:
        """Pick ``name`` as a user would: select it and emit ``activated``."""
        position = self.findData(name)
        if position < 0:
            return
        self.setCurrentIndex(position)
        self.activated.emit(position)

    def popup_widget(self) -> PickerPopup | None:
        return self._popup

    def showPopup(self, text: str = "") -> None:  # noqa: N802 - Qt's name
        self.ensure_zoo()
        zoo_listing.start_describing()
        self._apply_rules()
        if self._popup is None:
            self._popup = PickerPopup(self)
            self._popup.picked.connect(self.choose)
        self._popup.open_at(self, text)

    def hidePopup(self) -> None:  # noqa: N802 - Qt's name
        if self._popup is not None:
            self._popup.hide()
        super().hidePopup()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Typing a letter on the closed picker opens the search with that letter."""
        text = event.text()
        if text and text.isprintable() and not text.isspace() and \
                not event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier:
            self.showPopup(text)
            return
        super().keyPressEvent(event)  # ↓, ↑, Space, F4: QComboBox opens the popup


def short_reason(reason: str) -> str:
    """A reason short enough to follow a title in the list (the tooltip has all of it)."""
    if reason == MATRIX_REASON:
        return "weight matrices only"
    # "X cannot race: its constructor takes 'model' first…: it takes the whole network (a
    # torch.nn.Module), …" → "it takes the whole network": the last reason, its first clause.
    text = reason.rsplit(": ", 1)[-1].split(" (")[0].split(", ")[0].strip()
    return text if len(text) <= 48 else text[:47].rstrip() + "…"
