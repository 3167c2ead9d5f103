"""A TensorFlow-Playground-style network picture: neurons as circles, weights as coloured edges.

Architecture and weights are kept apart on purpose. `NetworkDiagram.set_architecture` decides
what is drawn; `NetworkDiagram.set_weights`, called at every evaluation of a race, only recolours
the edges: it re-lays nothing and touches a single item. Every edge lives in one `_EdgesItem`
that paints them grouped by colour bucket (a few ``drawLines`` calls), so a live update costs a
handful of pen changes instead of one ``setPen`` per edge.

The layout is computed in pixels for the widget's current size (and again on resize), not drawn
once and scaled: scaling would shrink a wide network's circles and labels to nothing, or blow a
tiny one up. Circles stay round, labels keep the font size of the application.

What is drawn
-------------
* One column of circles per vector the network computes: the inputs, the flattened images, and
  the output of every linear layer. At most `MAX_DRAWN_NEURONS` circles per column; a wider
  layer shows its first ones and "⋮ +N".
* Activations, dropout and batch norm keep a vector's size: they are written under the column
  they act on ("16" / "ReLU").
* Image stages (the input images, conv2d, maxpool) are blocks captioned with their shape
  (channels × height × width); their weights are kernels, not edges between neurons.
* Edges of linear layers between drawn neurons: blue for a positive weight, orange for a negative
  one, thicker and more opaque the larger |w| is relative to the largest drawn |w|. A weight of
  exactly 0 is grey (a ``zeros`` init shows as a grey, symmetric network).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QLineF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from app.shell.theme import BACKGROUND, FOREGROUND
from core.problems.model_spec import ModelSpec

MAX_DRAWN_NEURONS = 16
POSITIVE_COLOR = "#4a90e2"  # blue, as TensorFlow Playground
NEGATIVE_COLOR = "#f28e2b"  # orange
ZERO_COLOR = "#6b6e75"
NEURON_FILL = "#2f3238"
NEURON_BORDER = "#c9cbd0"
BLOCK_FILL = "#34404f"
LABEL_COLOR = FOREGROUND
MUTED_COLOR = "#8a8d93"

# Geometry, in pixels.
MAX_COLUMN_GAP = 150.0
MAX_NEURON_GAP = 22.0
MIN_RADIUS, MAX_RADIUS = 2.0, 7.0
BLOCK_WIDTH = 20.0
MARGIN = 8.0
NAMES_WIDTH = 34.0  # left of the inputs, for their names (x, y, x², sin x, …)
ELLIPSIS_HEIGHT = 14.0

# |w| relative to the largest drawn |w|, in this many steps of width and opacity.
WEIGHT_LEVELS = 8
MIN_EDGE_WIDTH, MAX_EDGE_WIDTH = 0.6, 3.0
MIN_EDGE_ALPHA, MAX_EDGE_ALPHA = 50, 235
UNWEIGHTED_EDGE_ALPHA = 70  # before any weights are known


@dataclass
class _Column:
    """One vector of the network drawn as circles, or one image stage drawn as a block."""

    size: int  # values in the vector (channels, for an image stage)
    drawn: np.ndarray  # indices of the values that get a circle
    caption: list[str]  # lines under the column: its size, then what acts on it
    block_shape: tuple[int, ...] | None = None  # image stages only
    x: float = 0.0
    ys: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _EdgeSlot:
    """Where one linear layer's drawn edges sit in the shared edge list."""

    start: int
    stop: int
    out_index: np.ndarray
    in_index: np.ndarray
    shape: tuple[int, int]  # the full (out, in) weight shape this layer must be given
    source: int  # column indices
    target: int


class _EdgesItem(QGraphicsItem):
    """All edges of the diagram in one item, painted bucket by bucket (one pen per bucket)."""

    def __init__(self) -> None:
        super().__init__()
        self._rect = QRectF()
        self._buckets: list[tuple[QPen, list[QLineF]]] = []
        self.setZValue(-1)  # under the neurons

    def set_buckets(self, rect: QRectF, buckets: list[tuple[QPen, list[QLineF]]]) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)
        self._buckets = buckets
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return self._rect

    def paint(self, painter: QPainter, option, widget=None) -> None:  # Qt override
        # No antialiasing: wide antialiased lines cost 5-30x more (see app/shell/theme.py), and this
        # is repainted at every evaluation of a race.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, lines in self._buckets:
            if lines:
                painter.setPen(pen)
                painter.drawLines(lines)


def _pen(color: str, width: float, alpha: int) -> QPen:
    qcolor = QColor(color)
    qcolor.setAlpha(alpha)
    pen = QPen(qcolor, width)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    return pen


def _bucket_pens() -> list[QPen]:
    """Bucket 0 is a zero weight; then WEIGHT_LEVELS positive, then WEIGHT_LEVELS negative."""
    pens = [_pen(ZERO_COLOR, MIN_EDGE_WIDTH, MIN_EDGE_ALPHA)]
    for color in (POSITIVE_COLOR, NEGATIVE_COLOR):
        for level in range(WEIGHT_LEVELS):
            t = (level + 1) / WEIGHT_LEVELS
            width = MIN_EDGE_WIDTH + t * (MAX_EDGE_WIDTH - MIN_EDGE_WIDTH)
            alpha = int(MIN_EDGE_ALPHA + t * (MAX_EDGE_ALPHA - MIN_EDGE_ALPHA))
            pens.append(_pen(color, width, alpha))
    return pens


def weight_buckets(values: np.ndarray) -> np.ndarray:
    """The colour bucket of each weight (see `_bucket_pens`), relative to the largest |w|."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    largest = float(magnitude.max()) if magnitude.size else 0.0
    if largest == 0.0 or not np.isfinite(largest):
        return np.zeros(len(values), dtype=np.int64)
    level = np.ceil(magnitude / largest * WEIGHT_LEVELS).astype(np.int64) - 1
    level = np.clip(level, 0, WEIGHT_LEVELS - 1)
    bucket = np.where(values > 0, 1 + level, 1 + WEIGHT_LEVELS + level)
    return np.where(values == 0, 0, bucket)


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


_FEATURE_LABELS = {"x2": "x²", "y2": "y²", "sinx": "sin x", "siny": "sin y"}


class NetworkDiagram(QGraphicsView):
    """The network as a Playground-style diagram. See the module docstring.

    ``neuron_items`` holds one ellipse item per drawn neuron, column by column (an image stage's
    column is empty; its block is in ``block_items``).
    """

    # The largest circle and spacing (a subclass with pictures in its circles draws them
    # larger: app/network/overview_tab.py).
    max_radius = MAX_RADIUS
    max_neuron_gap = MAX_NEURON_GAP

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("networkDiagram")
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor(BACKGROUND)))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)  # circles; edges opt out
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setInteractive(False)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setAccessibleName("Network diagram")
        self.setToolTip(
            "The network: circles are neurons, lines are weights "
            "(blue positive, orange negative; thicker means larger)"
        )
        self._pens = _bucket_pens()
        self._unweighted_pen = _pen(ZERO_COLOR, MIN_EDGE_WIDTH, UNWEIGHTED_EDGE_ALPHA)
        self._font = QFont(self.font())
        self._font.setPointSizeF(max(7.0, self.font().pointSizeF() - 1.0))
        self.model_spec: ModelSpec | None = None
        self._input_names: tuple[str, ...] = ()
        self._message = ""
        self._columns: list[_Column] = []
        # One entry per weight layer (linear or conv) in model order; None for a conv layer.
        self._slots: list[_EdgeSlot | None] = []
        self._bucket_of_edge = np.zeros(0, dtype=np.int64)  # -1: not weighted yet
        self._clear_items()

    def _clear_items(self) -> None:
        self.scene().clear()
        self.neuron_items: list[list[QGraphicsEllipseItem]] = []
        self.block_items: list[QGraphicsRectItem] = []
        self._lines: list[QLineF] = []
        self._edges = _EdgesItem()
        self.scene().addItem(self._edges)

    # ---------------------------------------------------------------- public

    def set_architecture(
        self, model_spec: ModelSpec | None, input_names: Sequence[str] | None = None,
        message: str = "",
    ) -> None:
        """Show ``model_spec`` with grey edges (until `set_weights`).

        ``input_names`` label the input neurons (a 2-D set's features: x, y, x2, …). ``None``
        clears the diagram and shows ``message`` instead.
        """
        self.model_spec = model_spec
        self._input_names = tuple(input_names or ())
        self._message = message
        self._columns, self._slots = ([], []) if model_spec is None else _plan(model_spec)
        edge_count = sum(s.stop - s.start for s in self._slots if s is not None)
        self._bucket_of_edge = np.full(edge_count, -1, dtype=np.int64)
        self._layout()

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Recolour the edges from the current weights, without re-layout.

        ``weights`` is one array per weight layer as `core.problems.models.linear_layers` lists them:
        (out, in) for a linear layer, (out, in, k, k) for a conv layer (kernels are not drawn
        as edges). A list of only the linear layers' arrays is accepted too.
        """
        if self.model_spec is None:
            return
        linear_slots = [s for s in self._slots if s is not None]
        if len(weights) == len(self._slots):
            pairs = [(s, w) for s, w in zip(self._slots, weights) if s is not None]
        elif len(weights) == len(linear_slots):
            pairs = list(zip(linear_slots, weights))
        else:
            raise ValueError(
                f"set_weights needs {len(self._slots)} arrays (one per linear or conv layer), "
                f"got {len(weights)}"
            )
        values = np.zeros(len(self._bucket_of_edge), dtype=np.float64)
        for slot, weight in pairs:
            matrix = np.asarray(weight)
            if matrix.shape != slot.shape:
                raise ValueError(
                    f"a layer of shape {slot.shape} (out, in) got weights of shape {matrix.shape}"
                )
            # Row-major over (out, in): the order the edges were laid out in.
            values[slot.start:slot.stop] = matrix[np.ix_(slot.out_index, slot.in_index)].ravel()
        self._bucket_of_edge = weight_buckets(values)
        self._recolor()

    def edge_count(self) -> int:
        return len(self._bucket_of_edge)

    def edge_colors(self) -> np.ndarray:
        """(edges, 4) uint8 RGBA of each drawn edge, in layout order."""
        colors = np.zeros((len(self._bucket_of_edge), 4), dtype=np.uint8)
        for i, bucket in enumerate(self._bucket_of_edge):
            colors[i] = self._pen_of(bucket).color().getRgb()
        return colors

    def edge_widths(self) -> np.ndarray:
        return np.array([self._pen_of(b).widthF() for b in self._bucket_of_edge])

    def neuron_count(self) -> int:
        return sum(len(column) for column in self.neuron_items)

    def _pen_of(self, bucket: int) -> QPen:
        return self._unweighted_pen if bucket < 0 else self._pens[bucket]

    # ---------------------------------------------------------------- layout

    def _layout(self) -> None:
        """Place every item for the current viewport size (edge colours are kept)."""
        self._clear_items()
        width = max(float(self.viewport().width()), 120.0)
        height = max(float(self.viewport().height()), 80.0)
        self.scene().setSceneRect(0, 0, width, height)
        self.resetTransform()
        if self.model_spec is None:
            if self._message:
                note = self._text(self._message, MUTED_COLOR)
                rect = note.boundingRect()
                note.setPos((width - rect.width()) / 2, (height - rect.height()) / 2)
            return
        columns = self._columns
        line = self._text_height()
        caption_lines = max(len(c.caption) for c in columns)
        hidden = any(c.size > len(c.drawn) for c in columns)
        top = MARGIN
        bottom = height - MARGIN - caption_lines * line - (ELLIPSIS_HEIGHT if hidden else 0.0)
        left = MARGIN + (NAMES_WIDTH if self._input_names else 12.0)
        right = width - MARGIN - 14.0  # half an output caption
        count = len(columns)
        gap_x = min((right - left) / max(count - 1, 1), MAX_COLUMN_GAP)
        start_x = (left + right) / 2 - gap_x * (count - 1) / 2  # centred when gaps are capped
        tallest = max(max(len(c.drawn), 1) for c in columns)
        # One radius for all circles, from the tallest column; shorter columns spread out
        # (up to MAX_NEURON_GAP) so that two inputs do not huddle in the middle.
        radius = float(np.clip(min((bottom - top) / max(tallest - 1, 1), self.max_neuron_gap)
                               * 0.36, MIN_RADIUS, self.max_radius))
        # The first and last circles' centres sit a radius inside, so no circle (nor the
        # caption under a column) is cut at the edge.
        top, bottom = top + radius, bottom - radius
        middle = (top + bottom) / 2

        pen = QPen(QColor(NEURON_BORDER), 1.2)
        fill = QBrush(QColor(NEURON_FILL))
        for index, column in enumerate(columns):
            column.x = start_x + index * gap_x
            drawn = len(column.drawn)
            gap_y = min((bottom - top) / max(drawn - 1, 1), self.max_neuron_gap)
            column.ys = middle + (np.arange(drawn) - (drawn - 1) / 2) * gap_y
            caption = self._text("\n".join(column.caption), MUTED_COLOR)
            text = caption.boundingRect()
            if column.block_shape is not None:
                block = self._draw_block(column, middle, bottom - top, pen)
                self.neuron_items.append([])
                # Blocks sit close together: every other caption goes above its block, so
                # neighbours' captions ("conv 8×8×8", "pool 8×4×4") never overlap.
                above = index % 2 == 1
                y = block.top() - text.height() - 2 if above else block.bottom() + 2
            else:
                y = self._draw_neurons(column, index == 0, radius, pen, fill) + 2
            caption.setPos(column.x - text.width() / 2, y)

        lines: list[QLineF] = []
        for slot in self._slots:
            if slot is None:
                continue
            source, target = columns[slot.source], columns[slot.target]
            for y_out in target.ys:
                for y_in in source.ys:
                    lines.append(QLineF(source.x + radius, float(y_in),
                                        target.x - radius, float(y_out)))
        self._lines = lines
        self._recolor()

    def _draw_neurons(self, column: _Column, is_input: bool, radius: float, pen: QPen,
                      fill: QBrush) -> float:
        items = []
        for value_index, y in zip(column.drawn, column.ys):
            item = self.scene().addEllipse(
                QRectF(column.x - radius, y - radius, 2 * radius, 2 * radius), pen, fill
            )
            item.setZValue(1)
            items.append(item)
            if is_input and value_index < len(self._input_names):
                name = self._input_names[value_index]
                label = self._text(_FEATURE_LABELS.get(name, name), LABEL_COLOR)
                rect = label.boundingRect()
                label.setPos(column.x - radius - 4 - rect.width(), y - rect.height() / 2)
        self.neuron_items.append(items)
        column_bottom = float(column.ys[-1]) + radius
        hidden = column.size - len(column.drawn)
        if hidden > 0:
            more = self._text(f"⋮ +{hidden}", MUTED_COLOR)
            rect = more.boundingRect()
            more.setPos(column.x - rect.width() / 2, column_bottom)
            column_bottom += ELLIPSIS_HEIGHT
        return column_bottom

    def _draw_block(self, column: _Column, middle: float, room: float, pen: QPen) -> QRectF:
        # Taller for larger images, so pooling visibly shrinks the blocks.
        side = column.block_shape[1]
        block_height = float(np.clip(room * 0.2 + side * 3.0, 24.0, room * 0.6))
        rect = QRectF(column.x - BLOCK_WIDTH / 2, middle - block_height / 2, BLOCK_WIDTH,
                      block_height)
        block = self.scene().addRect(rect, pen, QBrush(QColor(BLOCK_FILL)))
        block.setToolTip(f"{column.caption[0]}: {_shape_text(column.block_shape)} "
                         "(channels × height × width)")
        self.block_items.append(block)
        return rect

    def _text(self, text: str, color: str) -> QGraphicsSimpleTextItem:
        item = self.scene().addSimpleText(text, self._font)
        item.setBrush(QBrush(QColor(color)))
        item.setZValue(2)
        return item

    def _text_height(self) -> float:
        probe = QGraphicsSimpleTextItem("Xg")
        probe.setFont(self._font)
        return probe.boundingRect().height()

    # ---------------------------------------------------------------- colouring

    def _recolor(self) -> None:
        lines = self._lines
        if len(lines) != len(self._bucket_of_edge):
            return  # not laid out yet
        buckets: list[tuple[QPen, list[QLineF]]] = [
            (self._unweighted_pen, [lines[i] for i in np.flatnonzero(self._bucket_of_edge < 0)])
        ]
        # Faint buckets first, so strong edges are painted over weak ones.
        order = [0] + [b for level in range(WEIGHT_LEVELS)
                       for b in (1 + level, 1 + WEIGHT_LEVELS + level)]
        for bucket in order:
            chosen = np.flatnonzero(self._bucket_of_edge == bucket)
            buckets.append((self._pens[bucket], [lines[i] for i in chosen]))
        self._edges.set_buckets(self.scene().sceneRect(), buckets)

    # ---------------------------------------------------------------- Qt

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(320, 220)  # QGraphicsView's own 600×480 would widen a dock

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._layout()

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        event.ignore()  # the panel around it scrolls; the diagram has nothing to zoom


def _plan(spec: ModelSpec) -> tuple[list[_Column], list[_EdgeSlot | None]]:
    """Walk the layers: a new column wherever the network computes a new vector or image stage;
    an edge slot for every linear layer (None for a conv layer, to keep `set_weights` aligned)."""
    columns: list[_Column] = []
    slots: list[_EdgeSlot | None] = []

    def neurons(size: int, caption: str) -> None:
        columns.append(_Column(size, np.arange(min(size, MAX_DRAWN_NEURONS)), [caption]))

    def block(shape: tuple[int, ...], name: str) -> None:
        columns.append(_Column(shape[0], np.zeros(0, dtype=np.int64), [name, _shape_text(shape)],
                               block_shape=shape))

    shape = spec.input_shape
    if len(shape) == 1:
        neurons(shape[0], f"{shape[0]} in")
    else:
        block(shape, "input")
    edge_count = 0
    for layer in spec.layers:
        if layer.kind == "linear":
            source = columns[-1]
            neurons(layer.out_shape[0], str(layer.out_shape[0]))
            target = columns[-1]
            count = len(source.drawn) * len(target.drawn)
            slots.append(_EdgeSlot(edge_count, edge_count + count, target.drawn, source.drawn,
                                   (layer.out_shape[0], layer.in_shape[0]),
                                   len(columns) - 2, len(columns) - 1))
            edge_count += count
        elif layer.kind == "conv2d":
            block(layer.out_shape, "conv")
            slots.append(None)
        elif layer.kind == "maxpool":
            block(layer.out_shape, "pool")
        elif layer.kind == "flatten" and len(layer.in_shape) == 3:
            neurons(layer.out_shape[0], f"flat {layer.out_shape[0]}")
        elif layer.kind == "batchnorm":
            columns[-1].caption.append("BatchNorm")
        elif layer.kind != "flatten":
            columns[-1].caption.append(layer.describe)  # "ReLU", "Dropout p=0.1"
    columns[-1].caption[0] += " out"
    return columns, slots
