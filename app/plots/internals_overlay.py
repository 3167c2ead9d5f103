"""Optimizer internals drawn on the landscape: gradient, momentum, step and adaptive arrows, boxes.

Reads `core.internals.Internals` (one per run, for the update that led to the shown step) and
draws, from each run's previous point θ_{t−1}:

* −γ·g (red): where plain gradient descent with the run's γ would have stepped;
* momentum (cyan): the move the velocity alone asks for (−γ·b for SGD, −γ·m̂ for Adam);
* Δ (white): the step the point really took;
* effective step (yellow, dashed, with its two per-coordinate legs dotted): an adaptive method's
  −γ·numerator/divisor, coordinate by coordinate;
* accumulator box (violet): half-sides γ·√(accumulated g²) per coordinate, centred on θ_{t−1}.

Why a box of √accumulator, not of the effective learning rate: the box is the per-coordinate
divisor drawn in the same units as the −γ·g (or −γ·m̂) arrow, so the picture states the rule —
in each coordinate, step / γ = (how far the arrow reaches) / (box half-side). A wide, flat box
says "x has seen big gradients, so x now moves little"; watching Adagrad's box only grow shows
why its steps only shrink. A box of γ/√s would be large exactly where nothing happens.

All vectors of one run share one scale factor, so a run's gradient, momentum and step stay
comparable; it is a 1-2-5 number (at least 1) chosen so the run's longest step-sized arrow is
~15 % of the view, kept while it still fits (so it does not flicker from frame to frame), and
printed per run in the legend ("arrows ×1 Momentum 0.9 · ×5 Adam"). One scale for all runs
would leave a slow run's arrows a few pixels long beside a fast one's. Arrows that would reach past
45 % of the view are clipped to it, and the legend says so (the readout has the true numbers);
boxes are not clipped (zoom out to see a big one whole). Arrow heads are built in
screen pixels, so they look the same on any zoom and axis ratio.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.internals import PARTS

STYLE = {  # part: (colour, pen style, legend text)
    # Saturated hues that none of the runs' Okabe–Ito colours (core.lab.RUN_COLORS) uses;
    # arrows also have heads and thicker pens, which trajectories do not.
    "gradient": ("#ff2e4d", Qt.PenStyle.SolidLine, "−γ·g  plain gradient step"),
    "velocity": ("#00f0ff", Qt.PenStyle.SolidLine, "momentum  −γ·b  (Adam: −γ·m̂)"),
    "step": ("#ffffff", Qt.PenStyle.SolidLine, "Δ  the step taken"),
    "effective": ("#a8ff3e", Qt.PenStyle.DashLine, "effective step, per coordinate"),
    "accumulator": ("#ff4dff", Qt.PenStyle.SolidLine, "box: half-sides γ·√accumulator"),
}
ARROW_PARTS = ("gradient", "velocity", "step", "effective")
WIDTH_Z = {"step": (8, 24), "velocity": (4, 25), "effective": (3, 26), "gradient": (2, 27),
           "accumulator": (2, 23)}
SCALED_BY = ("step", "velocity", "effective")  # the scale follows the moves, not the gradient
TARGET_FRACTION = 0.15
KEEP_RANGE = (0.04, 0.3)
CLIP_FRACTION = 0.45
HEAD_PX = (10.0, 4.5)  # length, half-width


def nice_scale(raw: float) -> float:
    """The 1-2-5 number nearest to raw on a log scale (a legend reads ×5, not ×4.73)."""
    if not (raw > 0 and math.isfinite(raw)):
        return 1.0
    exponent = math.floor(math.log10(raw))
    candidates = [m * 10.0**e for e in (exponent, exponent + 1) for m in (1.0, 2.0, 5.0)]
    return min(candidates, key=lambda c: abs(math.log(c / raw)))


def format_scale(scale: float) -> str:
    return f"×{scale:g}"


class InternalsOverlay:
    """The arrow and box items of one LandscapePlot (hooks in app/plots/landscape.py)."""

    def __init__(self, plot_item: pg.PlotItem):
        self.plot_item = plot_item
        self.vb = plot_item.vb
        self.items: dict[str, pg.PlotDataItem] = {}
        self.legs = pg.PlotDataItem(pen=pg.mkPen(STYLE["effective"][0], width=1,
                                                 style=Qt.PenStyle.DotLine))
        self.legs.setZValue(24)
        plot_item.addItem(self.legs)
        for part in PARTS:
            color, style, _ = STYLE[part]
            # Arrows often coincide (SGD+momentum: Δ = −γ·b exactly), so they are nested stripes:
            # the widest at the bottom, the gradient thin on top.
            width, z = WIDTH_Z[part]
            item = pg.PlotDataItem(pen=pg.mkPen(color, width=width, style=style))
            item.setZValue(z)
            plot_item.addItem(item)
            self.items[part] = item
        self.legend = pg.LegendItem(offset=(8, 8), brush=pg.mkBrush(10, 12, 18, 200),
                                    pen=pg.mkPen(255, 255, 255, 60), labelTextColor="#e8ecf4",
                                    labelTextSize="8pt", verSpacing=-4)
        self.legend.setParentItem(self.vb)
        self.legend.setZValue(40)
        self._legend_key = None
        self.scales: dict[int, float] = {}  # run → its arrows' scale factor
        self._labels: list[str] = []
        self.clipped = False
        self.clip_length = math.inf  # arrows longer than this (data units) are cut to it
        self._internals: list | None = None
        self._shown: list[set[str]] = []
        # (run, part) → (start, end) of each shaft as drawn, data coordinates (tests, tooltips)
        self.segments: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        self.boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # run → (centre, half-sides)
        self.vb.sigRangeChanged.connect(self._on_range_changed)

    # -- inputs ---------------------------------------------------------------------------------

    def clear(self) -> None:
        self._internals = None
        self.redraw()

    def update(self, internals: list | None, shown: list[set[str]], labels=()) -> None:
        """Draw ``internals`` (one Internals or None per run) for the parts ``shown[run]``."""
        self._internals = internals
        self._shown = shown
        self._labels = list(labels)
        self.redraw()

    def _on_range_changed(self, *_args) -> None:
        if self._internals is not None:
            self.redraw()  # heads are in pixels and the scale follows the view

    # -- drawing --------------------------------------------------------------------------------

    def _visible(self):
        if not self._internals:
            return []
        out = []
        for run, info in enumerate(self._internals):
            shown = self._shown[run] if run < len(self._shown) else set()
            if info is not None and shown:
                out.append((run, info, info.vectors(), shown))
        return out

    def _choose_scale(self, run: int, vectors: dict, shown: set, span: float) -> float:
        current = self.scales.get(run, 1.0)
        lengths = [float(np.hypot(*vectors[p])) for p in SCALED_BY
                   if p in shown and vectors.get(p) is not None]
        if not lengths and "gradient" in shown:
            lengths = [float(np.hypot(*vectors["gradient"]))]
        longest = max(lengths, default=0.0)
        if longest <= 0 or not math.isfinite(longest):
            return current
        low, high = KEEP_RANGE
        if low * span <= longest * current <= high * span:
            return current
        # Never below ×1: big steps are drawn true to size (Δ then lies on the trajectory).
        return max(1.0, nice_scale(TARGET_FRACTION * span / longest))

    def redraw(self) -> None:
        visible = self._visible()
        (x0, x1), (y0, y1) = self.vb.viewRange()
        span = min(x1 - x0, y1 - y0)
        pixel = self.vb.viewPixelSize()
        self.segments = {}
        self.boxes = {}
        self.clipped = False
        self.clip_length = CLIP_FRACTION * span
        paths = {part: ([], []) for part in PARTS}
        legs_x, legs_y = [], []
        for run, info, vectors, shown in visible:
            origin = info.origin
            scale = self.scales[run] = self._choose_scale(run, vectors, shown, span)
            for part in ARROW_PARTS:
                vec = vectors.get(part)
                if part not in shown or vec is None:
                    continue
                drawn = vec * scale
                length = float(np.hypot(*drawn))
                if length > self.clip_length:
                    drawn = drawn * (self.clip_length / length)
                    self.clipped = True
                end = origin + drawn
                self.segments[(run, part)] = (origin.copy(), end)
                _arrow(paths[part], origin, end, pixel)
                if part == "effective":
                    corner = (end[0], origin[1])  # the x leg, then the y leg
                    legs_x += [origin[0], corner[0], corner[0]]
                    legs_y += [origin[1], corner[1], end[1]]
                    legs_x.append(np.nan)
                    legs_y.append(np.nan)
            half = vectors.get("accumulator")
            if "accumulator" in shown and half is not None:
                half = half * scale  # not clipped: its proportions are the message
                self.boxes[run] = (origin.copy(), half)
                xs, ys = paths["accumulator"]
                cx, cy = origin
                hx, hy = half
                xs += [cx - hx, cx + hx, cx + hx, cx - hx, cx - hx, np.nan]
                ys += [cy - hy, cy - hy, cy + hy, cy + hy, cy - hy, np.nan]
        for part, (xs, ys) in paths.items():
            item = self.items[part]
            if xs:
                item.setData(np.array(xs, dtype=float), np.array(ys, dtype=float), connect="finite")
            else:
                item.setData([], [])
        if legs_x:
            self.legs.setData(np.array(legs_x), np.array(legs_y), connect="finite")
        else:
            self.legs.setData([], [])
        self._update_legend(visible)

    def _update_legend(self, visible) -> None:
        parts = tuple(p for p in PARTS if any(p in shown and vec.get(p) is not None
                                              for _, _, vec, shown in visible))
        runs = [(self._labels[run] if run < len(self._labels) else f"run {run + 1}",
                 self.scales[run]) for run, *_ in visible]
        key = (parts, tuple(runs), self.clipped)
        if key == self._legend_key:
            return
        self._legend_key = key
        self.legend.clear()
        if not parts:
            self.legend.setVisible(False)
            return
        self.legend.setVisible(True)
        clipped = ", long ones clipped" if self.clipped else ""
        header = pg.PlotDataItem(pen=None)
        scales = " · ".join(f"{format_scale(scale)} {escape(label)}" for label, scale in runs)
        self.legend.addItem(header, f"<b>arrows {scales}</b>{clipped}")
        for part in parts:
            self.legend.addItem(self.items[part], STYLE[part][2])


def _arrow(path: tuple[list, list], start: np.ndarray, end: np.ndarray, pixel) -> None:
    """Append a shaft and a two-barb head (sized in screen pixels) to ``path``."""
    xs, ys = path
    xs += [start[0], end[0], np.nan]
    ys += [start[1], end[1], np.nan]
    px, py = pixel
    if not (px > 0 and py > 0):
        return
    dx, dy = (end[0] - start[0]) / px, (end[1] - start[1]) / py
    norm = math.hypot(dx, dy)
    if norm < 1.0:
        return
    length, half = HEAD_PX
    length = min(length, 0.6 * norm)  # a short arrow keeps a proportionate head
    half = half * length / HEAD_PX[0]
    ux, uy = dx / norm, dy / norm
    for sign in (1.0, -1.0):
        bx = -length * ux + sign * half * -uy
        by = -length * uy + sign * half * ux
        xs += [end[0], end[0] + bx * px, np.nan]
        ys += [end[1], end[1] + by * py, np.nan]
