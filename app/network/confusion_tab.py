"""The network view's confusion-matrix tab: the selected run's validation confusion matrix.

Counts as text, cells coloured by the row share (recall), so small classes read as well as big
ones. Each run shows its last matrix taken while it was alive (`record`); the run is the view's
selection, shared with the per-layer plot of the Curves tab.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.network.race_state import ShownRace
from app.shell.theme import BACKGROUND, FOREGROUND
from core.engine.history import NetworkHistory

MAX_CONFUSION_TEXT = 20  # above this many classes the counts would not fit in their cells


class ConfusionTab(QWidget):
    """A run combo over the matrix plot (an image of row shares, a count per cell)."""

    def __init__(self, race: ShownRace, parent=None):
        super().__init__(parent)
        self.race = race
        # Per run: the last matrix taken while the run was alive (shown after it died).
        self.confusions: list[np.ndarray | None] = []
        self.confusion_steps: list[int] = []
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        controls.addWidget(QLabel("Run"))
        # Its selection is the view's (`NetworkView._on_run_selected`).
        self.confusion_run_combo = QComboBox(objectName="confusionRunCombo")
        self.confusion_run_combo.setToolTip("The run whose confusion matrix is shown.")
        controls.addWidget(self.confusion_run_combo)
        controls.addStretch(1)

        self.confusion_plot = pg.PlotWidget()
        self.confusion_plot.setObjectName("confusionPlot")
        self.confusion_plot.setToolTip(
            "Rows are true classes, columns predictions; numbers are counts and the colour is "
            "the share of the row (the class's recall on the diagonal)."
        )
        self.confusion_plot.setMenuEnabled(False)
        item = self.confusion_plot.plotItem
        item.setLabel("bottom", "predicted class")
        item.setLabel("left", "true class")
        item.invertY(True)  # true class 0 in the top row, as matrices are written
        item.setAspectLocked(True)
        item.hideButtons()
        self.confusion_image = pg.ImageItem(axisOrder="row-major")
        self.confusion_image.setLookupTable(
            pg.ColorMap([0.0, 1.0], [QColor(BACKGROUND).lighter(140), QColor("#3d7fd9")])
            .getLookupTable(nPts=256)
        )
        item.addItem(self.confusion_image)
        self.confusion_texts: list[pg.TextItem] = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.confusion_plot, 1)

    def set_runs(self) -> None:
        """Class ticks and a text per cell for the race's data set; forgets the matrices."""
        count = len(self.race.labels)
        self.confusions = [None] * count
        self.confusion_steps = [0] * count
        plot = self.confusion_plot.plotItem
        for text in self.confusion_texts:
            plot.removeItem(text)
        self.confusion_texts = []
        self.confusion_image.clear()
        data = self.race.dataset
        if data is None or data.task != "classification":
            plot.setTitle("")
            return
        k = data.n_classes
        names = data.class_names or tuple(str(c) for c in range(k))
        ticks = [[(c, str(names[c])) for c in range(k)]]
        plot.getAxis("bottom").setTicks(ticks)
        plot.getAxis("left").setTicks(ticks)
        plot.setRange(xRange=(-0.5, k - 0.5), yRange=(-0.5, k - 0.5), padding=0.02)
        if k <= MAX_CONFUSION_TEXT:
            for row in range(k):
                for col in range(k):
                    text = pg.TextItem("", anchor=(0.5, 0.5), color=FOREGROUND)
                    text.setPos(col, row)
                    plot.addItem(text)
                    self.confusion_texts.append(text)
        plot.setTitle("")

    def record(self, history: NetworkHistory) -> None:
        """Keep the newest evaluation's matrix of each run still alive."""
        ev = history.last_evaluation
        if ev.confusion is None:
            return
        step = history.last_evaluation_step
        for i in range(min(len(self.confusions), len(ev.confusion))):
            if step <= self.race.last_valid_step(i):
                self.confusions[i] = ev.confusion[i]
                self.confusion_steps[i] = step

    def draw(self) -> None:
        """The selected run's matrix (blank until it has one)."""
        run = self.race.selected_run
        matrix = self.matrix_shown()
        if matrix is None:
            self.confusion_image.clear()
            for text in self.confusion_texts:
                text.setText("")
            return
        counts = np.asarray(matrix, dtype=np.float64)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        k = counts.shape[0]
        self.confusion_image.setImage(share, levels=(0.0, 1.0), autoLevels=False)
        self.confusion_image.setRect(QRectF(-0.5, -0.5, k, k))
        if self.confusion_texts:
            flat_counts = counts.astype(np.int64).ravel()
            flat_share = share.ravel()
            for text, count, fraction in zip(self.confusion_texts, flat_counts, flat_share):
                text.setText(str(count))
                # Dark text on the bright cells, light text on the dark ones.
                text.setColor(QColor("#101010") if fraction > 0.6 else QColor(FOREGROUND))
        total = int(counts.sum())
        data = self.race.dataset
        split = "validation" if data is not None and len(data.y_val) else "training"
        self.confusion_plot.plotItem.setTitle(
            f"{self.race.labels[run]} · {split} set, {total} samples, "
            f"step {self.confusion_steps[run]}",
            color=self.race.colors[run], size="10pt",
        )

    def matrix_shown(self) -> np.ndarray | None:
        run = self.race.selected_run
        return self.confusions[run] if run < len(self.confusions) else None
