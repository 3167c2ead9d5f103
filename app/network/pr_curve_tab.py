"""The network view's Per class tab: what accuracy hides on imbalanced data.

For the selected run (the view's selection, as the confusion matrix), a table of each class's
precision, recall, F1 and support from its last validation confusion matrix, and for a binary
task the precision–recall curve of its validation scores (P(class 1)) with its average
precision, a dot where the threshold 0.5 sits (the predictions the confusion matrix counts) and
the dashed line of a classifier that guesses (precision = the share of class 1). The numbers are
core/problems/metrics.py's (`per_class_metrics_of`, `precision_recall_curve`); a run keeps what
it showed while it was alive (`record`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.network.race_state import ShownRace
from app.shell.theme import FOREGROUND
from app.widgets.plot_style import named_plot
from core.engine.history import NetworkHistory
from core.problems.metrics import average_precision, per_class_metrics_of, precision_recall_curve

COLUMNS = ("class", "precision", "recall", "F1", "support")
WEAK_RECALL = 0.5  # a class recalled less often than this is marked in the table


class PrCurveTab(QWidget):
    """Per-class table beside the precision–recall curve of the selected run."""

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.setObjectName("perClassTab")
        self.race = race
        self.confusions: list[np.ndarray | None] = []
        self.scores: list[np.ndarray | None] = []
        self.steps: list[int] = []
        self.curve_shown: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

        self.table = QTableWidget(0, len(COLUMNS), objectName="perClassTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setToolTip(
            "Each class on the validation set: precision (of the samples predicted as this "
            "class, the share that are), recall (of this class's samples, the share found), F1 "
            "(their harmonic mean) and support (how many there are). A majority-only network "
            "scores high accuracy with a minority recall of 0.")
        self.caption = QLabel(objectName="perClassCaption")
        self.caption.setWordWrap(True)

        self.pr_plot = named_plot("prCurvePlot")
        self.pr_plot.setToolTip(
            "Precision against recall as the threshold on P(class 1) falls from 1 to 0; the "
            "dot is the threshold 0.5 the confusion matrix uses, the dashed line a classifier "
            "that guesses (precision = the share of class 1). AP: the area under the curve.")
        self.pr_plot.setMenuEnabled(False)
        item = self.pr_plot.plotItem
        item.setLabel("bottom", "recall (of class 1)")
        item.setLabel("left", "precision")
        item.setRange(xRange=(0, 1), yRange=(0, 1.02), padding=0.02)
        item.setMouseEnabled(False, False)
        item.hideButtons()
        self.pr_line = item.plot([], [], pen=pg.mkPen(FOREGROUND, width=2))
        self.chance_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#888888", width=1,
                                                                 style=Qt.PenStyle.DashLine))
        item.addItem(self.chance_line)
        self.half_dot = item.plot([], [], pen=None, symbol="o", symbolSize=9)

        self.key = QLabel(objectName="prCurveKey")
        self.key.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        left.addWidget(self.caption)
        right = QVBoxLayout()
        right.addWidget(self.pr_plot, 1)
        right.addWidget(self.key)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

    def set_runs(self) -> None:
        """Forget every run's numbers; the curve only for a binary task."""
        count = len(self.race.labels)
        self.confusions, self.scores, self.steps = [None] * count, [None] * count, [0] * count
        data = self.race.dataset
        binary = data is not None and data.task == "classification" and data.n_classes == 2
        self.pr_plot.setVisible(binary)
        self.key.setVisible(binary)
        self.draw()

    def record(self, history: NetworkHistory) -> None:
        """Keep the newest evaluation's matrix and scores of each run still alive, and redraw
        (a table of k rows and one curve: cheap beside an evaluation)."""
        ev = history.last_evaluation
        if ev is None or ev.confusion is None:
            return
        step = history.last_evaluation_step
        for i in range(min(len(self.confusions), len(ev.confusion))):
            if step <= self.race.last_valid_step(i):
                self.confusions[i] = ev.confusion[i]
                self.scores[i] = None if ev.val_scores is None else ev.val_scores[i]
                self.steps[i] = step
        self.draw()

    def draw(self) -> None:
        """The selected run's table and curve (empty until it has an evaluation)."""
        run = self.race.selected_run
        matrix = self.confusions[run] if run < len(self.confusions) else None
        self._fill_table(matrix)
        self._draw_curve(run, self.scores[run] if matrix is not None else None)
        if matrix is None:
            self.caption.setText("")
            return
        data = self.race.dataset
        split = "validation" if data is not None and len(data.y_val) else "training"
        accuracy = float(np.trace(matrix)) / max(float(matrix.sum()), 1.0)
        self.caption.setText(
            f"{self.race.labels[run]} · {split} set, step {self.steps[run]}: accuracy "
            f"{accuracy:.1%}, macro F1 {self._macro_f1(matrix):.3f}")

    def _macro_f1(self, matrix: np.ndarray) -> float:
        per_class = per_class_metrics_of(matrix[None])
        present = per_class["support"][0] > 0
        return float(per_class["f1"][0][present].mean()) if present.any() else 0.0

    def _fill_table(self, matrix: np.ndarray | None) -> None:
        data = self.race.dataset
        if matrix is None or data is None:
            self.table.setRowCount(0)
            return
        per_class = {k: v[0] for k, v in per_class_metrics_of(matrix[None]).items()}
        k = matrix.shape[0]
        names = data.class_names or tuple(str(c) for c in range(k))
        self.table.setRowCount(k)
        for c in range(k):
            cells = (str(names[c]), f"{per_class['precision'][c]:.3f}",
                     f"{per_class['recall'][c]:.3f}", f"{per_class['f1'][c]:.3f}",
                     str(int(per_class["support"][c])))
            weak = per_class["support"][c] > 0 and per_class["recall"][c] < WEAK_RECALL
            for col, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                                      if col else Qt.AlignmentFlag.AlignCenter)
                if weak and col == 2:
                    cell.setForeground(QColor("#e0605a"))
                    cell.setToolTip("Fewer than half of this class's samples are found.")
                self.table.setItem(c, col, cell)

    def _draw_curve(self, run: int, scores: np.ndarray | None) -> None:
        data = self.race.dataset
        plot = self.pr_plot.plotItem
        if scores is None or data is None or data.n_classes != 2:
            self.curve_shown = None
            self.pr_line.setData([], [])
            self.half_dot.setData([], [])
            plot.setTitle("")
            self.key.setText("")
            return
        target = data.y_val if len(data.y_val) else data.y_train
        precision, recall, thresholds = precision_recall_curve(target, scores)
        self.curve_shown = (precision, recall, thresholds)
        color = self.race.colors[run]
        # Steps, as average precision integrates it (scikit-learn draws it so too): from each
        # point the precision holds until the recall of the next.
        xs, ys = np.repeat(recall, 2)[1:], np.repeat(precision, 2)[:-1]
        self.pr_line.setData(xs, ys, pen=pg.mkPen(color, width=2))
        share = float(np.mean(target == 1))
        self.chance_line.setValue(share)
        predicted = scores >= 0.5
        positives = target == 1
        found = int((predicted & positives).sum())
        half_recall = found / max(int(positives.sum()), 1)
        # None predicted: precision 0, as the table counts it (scikit-learn's zero_division=0).
        half_precision = found / int(predicted.sum()) if predicted.any() else 0.0
        self.half_dot.setData([half_recall], [half_precision], symbolBrush=color,
                              symbolPen=pg.mkPen(FOREGROUND))
        ap = average_precision(precision, recall)
        plot.setTitle(f"{self.race.labels[run]} · precision–recall of class 1 · AP {ap:.3f}",
                      color=color, size="10pt")
        at_half = (f"recall {half_recall:.2f}, precision {half_precision:.2f}" if predicted.any()
                   else "no sample is predicted as class 1")
        self.key.setText(f"● threshold 0.5, what the confusion matrix counts: {at_half}.   "
                         f"- - - guessing: precision {share:.1%} (the share of class 1)")
