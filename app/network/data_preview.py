"""The data preview of the network problem panel's Data set section (app/network/dataset_editor.py).

`DataPreview` plots a data set's training points (filled) and validation points (hollow): a 2-D
set's points by class (exactly as the decision boundaries of app/network/views.py draw them) or,
for regression, by target from blue (low) to orange (high); a set of one input and one target as
its curve, target over input. Other sets (images, tables) have no picture: `show_data` says so and
the editor hides the plot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize

from app.shell.theme import CLASS_COLORS, FOREGROUND, class_color, class_point_style
from app.widgets.static_plot import StaticPlot
from core.problems.datasets.dataset import Dataset

# A preview of 100k points would cost more to draw than it shows; a regular subsample of this
# many per split looks the same.
MAX_PREVIEW_POINTS = 1500
PREVIEW_LEVELS = 12  # colour steps of a 2-D regression target
PREVIEW_HEIGHT = 118


class DataPreview(StaticPlot):
    """The data preview: small, not interactive, and the wheel scrolls the panel instead."""

    def __init__(self, **kwargs):
        super().__init__(PREVIEW_HEIGHT, **kwargs)
        self._shown: Dataset | None = None
        self._items: list[pg.ScatterPlotItem] = []
        self._has_picture = False
        self.setToolTip("The training points (filled) and validation points (hollow)")
        self.setAccessibleName("Data preview")
        plot_item = self.getPlotItem()
        for axis in ("left", "bottom"):
            plot_item.getAxis(axis).setStyle(tickLength=-4)
            plot_item.getAxis(axis).setTextPen(pg.mkPen("#8a8d93"))
        plot_item.setContentsMargins(0, 2, 4, 0)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        # pyqtgraph asks for 600×480, which would widen the whole dock.
        return QSize(300, PREVIEW_HEIGHT)

    def show_data(self, dataset: Dataset | None) -> bool:
        """Plot ``dataset``; False when it has no picture (or is None), so the plot can hide."""
        if dataset is self._shown and dataset is not None:
            return self._has_picture  # same (cached) data: an edit elsewhere does not redraw
        self._shown = dataset
        plot_item = self.getPlotItem()
        for item in self._items:
            plot_item.removeItem(item)
        self._items = []
        points = self._points(dataset) if dataset is not None else None
        self._has_picture = points is not None
        if points is None:
            return False
        (train, val), (train_codes, val_codes, palette) = points, _color_codes(dataset)
        classes = dataset.task == "classification"
        plot_item.setAspectLocked(dataset.is_2d)
        # One scatter item per split and colour, each with one pen and brush: per-point styles
        # make pyqtgraph render a symbol per point (~0.4 s for 1,000 points).
        for split, codes, hollow in ((train, train_codes, False), (val, val_codes, True)):
            pick = _subsample(len(split))
            shown, shown_codes = split[pick], codes[pick]
            for code in np.unique(shown_codes):
                color = palette[int(code)]
                if classes:  # the classes' points exactly as the decision boundaries draw them
                    pen, brush = class_point_style(int(code), hollow)
                    style = {"pen": pen, "brush": brush, "size": 6 if hollow else 5}
                else:
                    style = ({"pen": pg.mkPen(color, width=1.2), "brush": None, "size": 6}
                             if hollow else {"pen": None, "brush": pg.mkBrush(color), "size": 5})
                item = pg.ScatterPlotItem(pos=shown[shown_codes == code], pxMode=True, **style)
                plot_item.addItem(item)
                self._items.append(item)
        plot_item.autoRange(padding=0.04)
        return True

    def _points(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
        """(train, val) plane positions to plot, or None when the set has no picture."""
        if dataset.is_2d:
            colored_by = "class" if dataset.task == "classification" else \
                "target (blue low, orange high)"
            self.setToolTip(
                f"The training points (filled) and validation points (hollow), by {colored_by}"
            )
            return dataset.points_train, dataset.points_val
        if dataset.input_shape == (1,) and dataset.task == "regression":
            # One input and one target: the set is a curve, shown as target over input.
            self.setToolTip("Target over input: training (filled), validation (hollow)")
            return (np.column_stack([dataset.x_train[:, 0], dataset.y_train[:, 0]]),
                    np.column_stack([dataset.x_val[:, 0], dataset.y_val[:, 0]]))
        return None


def _subsample(count: int) -> np.ndarray:
    step = max(1, -(-count // MAX_PREVIEW_POINTS))  # ceil division
    return np.arange(0, count, step)


def _color_codes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A colour index per train and val sample, and the colours: the class, or (2-D
    regression) the target in `PREVIEW_LEVELS` steps from blue (low) to orange (high)."""
    if dataset.task == "classification":
        return (dataset.y_train % len(CLASS_COLORS), dataset.y_val % len(CLASS_COLORS),
                list(CLASS_COLORS))
    if not dataset.is_2d:
        return (np.zeros(len(dataset.y_train), np.int64),
                np.zeros(len(dataset.y_val), np.int64), [FOREGROUND])
    train, val = dataset.y_train[:, 0], dataset.y_val[:, 0]
    both = np.concatenate([train, val])
    low, high = float(both.min()), float(both.max())
    span = high - low if high > low else 1.0  # one scale for both splits

    def codes(values: np.ndarray) -> np.ndarray:
        t = np.clip((values - low) / span, 0.0, 1.0)
        return np.round(t * (PREVIEW_LEVELS - 1)).astype(np.int64)

    color_map = pg.ColorMap([0.0, 0.5, 1.0], [class_color(0), "#e6e6e6", class_color(1)])
    levels = np.linspace(0.0, 1.0, PREVIEW_LEVELS)
    palette = [c.name() for c in color_map.map(levels, mode="qcolor")]
    return codes(train), codes(val), palette
