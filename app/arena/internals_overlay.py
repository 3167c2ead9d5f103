"""Optimizer internals drawn on the landscape: gradient, momentum, step and adaptive arrows, boxes.

Reads `core.optim.internals.Internals` (one per run, for the update that led to the shown step) and
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
45 % of the view are clipped to it, and an arrow that would leave the view ends at its edge (its
head stays visible); a clipped arrow carries a "cut" mark (two slashes across the shaft) and the
legend says so. A box larger than the view (Adam's on the ravine: γ·√v̂ of the steep coordinate is
tens of times the view) would draw as two lines across the whole landscape: its sides beyond the
view are clamped to the view's edge, drawn dashed with an outward chevron ("it goes on this way"),
and the legend says "off-scale". The true numbers stay in `boxes`, `segments`' lengths and the
readout. Arrow heads, cut marks and chevrons are built in screen pixels, so they look the same on
any zoom and axis ratio. The legend stays inside the view: when its one-line form is wider (the
internals dock open at 1280×800 leaves the landscape ~225 px wide) it takes a compact form (one
scale per line, short labels, 7 pt), scaled down only if even that does not fit.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from core.optim.internals import PARTS

STYLE = {  # part: (colour, pen style, legend text)
    # Saturated hues, brighter than any of the runs' colours (core.lab.format.RUN_COLORS);
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
EDGE_INSET_PX = 4.0  # a clamped side sits this far inside the view, not hidden under its frame
CHEVRON_PX = (9.0, 7.0)  # depth, half-width of the "continues beyond" mark on a clamped side
CUT_PX = (5.0, 4.0, 14.0)  # half-length, gap, distance from the head of a clipped arrow's slashes
LEGEND_MARGIN_PX = 8.0  # the legend's offset from the view's corner, and its room on the far side
# The legend's compact form, for a narrow landscape (the internals dock open at 1280×800): one
# scale per line, short labels, a smaller font. A view narrower still scales it down to fit.
COMPACT_TEXT = {"gradient": "−γ·g", "velocity": "momentum", "step": "Δ step",
                "effective": "effective", "accumulator": "box γ·√acc"}
LEGEND_TEXT_SIZE = {"full": "8pt", "compact": "7pt"}


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
    """The arrow and box items of one LandscapePlot (hooks in app/arena/function_map.py)."""

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
        # The sides of an off-scale box that stand in for sides beyond the view: dashed.
        width, z = WIDTH_Z["accumulator"]
        self.box_clamped = pg.PlotDataItem(pen=pg.mkPen(STYLE["accumulator"][0], width=width,
                                                        style=Qt.PenStyle.DashLine))
        self.box_clamped.setZValue(z)
        plot_item.addItem(self.box_clamped)
        self.legend = pg.LegendItem(offset=(LEGEND_MARGIN_PX, LEGEND_MARGIN_PX),
                                    brush=pg.mkBrush(10, 12, 18, 200),
                                    pen=pg.mkPen(255, 255, 255, 60), labelTextColor="#e8ecf4",
                                    labelTextSize=LEGEND_TEXT_SIZE["full"], verSpacing=-4)
        self.legend.setParentItem(self.vb)
        self.legend.setZValue(40)
        # Its text size is its own (full or compact form) times `text_scale`: presenter mode
        # (app/shell/presenter.py) sets the scale rather than the size.
        self.legend.own_text_size = True
        self.text_scale = 1.0
        self._legend_key = None
        self.legend_form = "full"  # or "compact": what fits the view (see `_fit_legend`)
        self._full_width = 0.0  # the full legend's width for the current key, once measured
        self.vb.sigResized.connect(self._fit_legend)
        self.scales: dict[int, float] = {}  # run → its arrows' scale factor
        self._labels: list[str] = []
        self.clipped = False
        self.clip_length = math.inf  # arrows longer than this (data units) are cut to it
        self._internals: list | None = None
        self._shown: list[set[str]] = []
        # (run, part) → (start, end) of each shaft as drawn, data coordinates (tests, tooltips)
        self.segments: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
        self.boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # run → (centre, half-sides)
        # run → (low corner, high corner) of the box as drawn: the true box unless off-scale
        self.drawn_boxes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.off_scale: set[int] = set()  # runs whose box is larger than the view
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
        self.drawn_boxes = {}
        self.off_scale = set()
        self.clipped = False
        self.clip_length = CLIP_FRACTION * span
        paths = {part: ([], []) for part in PARTS}
        clamped_sides: tuple[list, list] = ([], [])
        legs_x, legs_y = [], []
        inset = np.abs(np.asarray(pixel, dtype=float)) * EDGE_INSET_PX
        view_lo = np.array([x0, y0]) + inset
        view_hi = np.array([x1, y1]) - inset
        for run, info, vectors, shown in visible:
            origin = info.origin
            scale = self.scales[run] = self._choose_scale(run, vectors, shown, span)
            for part in ARROW_PARTS:
                vec = vectors.get(part)
                if part not in shown or vec is None:
                    continue
                drawn = vec * scale
                length = float(np.hypot(*drawn))
                cut = False
                if length > self.clip_length:
                    drawn = drawn * (self.clip_length / length)
                    cut = True
                # An arrow leaving the view ends at its edge, so its head is seen.
                fraction = _fraction_inside(origin, drawn, view_lo, view_hi)
                if fraction < 1.0:
                    drawn = drawn * fraction
                    cut = True
                self.clipped |= cut
                end = origin + drawn
                self.segments[(run, part)] = (origin.copy(), end)
                _arrow(paths[part], origin, end, pixel)
                if cut:
                    _cut_mark(paths[part], origin, end, pixel)
                if part == "effective":
                    corner = (end[0], origin[1])  # the x leg, then the y leg
                    legs_x += [origin[0], corner[0], corner[0]]
                    legs_y += [origin[1], corner[1], end[1]]
                    legs_x.append(np.nan)
                    legs_y.append(np.nan)
            half = vectors.get("accumulator")
            if "accumulator" in shown and half is not None:
                half = half * scale  # not shortened: its proportions are the message
                self.boxes[run] = (origin.copy(), half)
                self._add_box(run, origin - half, origin + half, view_lo, view_hi, pixel,
                              paths["accumulator"], clamped_sides)
        for part, (xs, ys) in paths.items():
            item = self.items[part]
            if xs:
                item.setData(np.array(xs, dtype=float), np.array(ys, dtype=float), connect="finite")
            else:
                item.setData([], [])
        xs, ys = clamped_sides
        if xs:
            self.box_clamped.setData(np.array(xs, dtype=float), np.array(ys, dtype=float),
                                     connect="finite")
        else:
            self.box_clamped.setData([], [])
        if legs_x:
            self.legs.setData(np.array(legs_x), np.array(legs_y), connect="finite")
        else:
            self.legs.setData([], [])
        self._update_legend(visible)

    def _add_box(self, run: int, lo: np.ndarray, hi: np.ndarray, view_lo: np.ndarray,
                 view_hi: np.ndarray, pixel, solid: tuple[list, list],
                 dashed: tuple[list, list]) -> None:
        """The box [lo, hi]: true sides solid; sides beyond the view clamped to it, dashed,
        with an outward chevron."""
        shown_lo, shown_hi = np.maximum(lo, view_lo), np.minimum(hi, view_hi)
        if np.any(shown_lo >= shown_hi):
            # Panned away from the box, or the view is smaller than the inset: nothing to clamp.
            shown_lo, shown_hi = lo, hi
        self.drawn_boxes[run] = (shown_lo, shown_hi)
        (ax, ay), (bx, by) = shown_lo, shown_hi
        # Each side: its two ends, whether it stands in for a side beyond the view, its outward
        # unit normal in screen terms (x right, y up).
        sides = (((ax, ay), (bx, ay), lo[1] < shown_lo[1], (0.0, -1.0)),
                 ((bx, ay), (bx, by), hi[0] > shown_hi[0], (1.0, 0.0)),
                 ((bx, by), (ax, by), hi[1] > shown_hi[1], (0.0, 1.0)),
                 ((ax, by), (ax, ay), lo[0] < shown_lo[0], (-1.0, 0.0)))
        for start, end, beyond, normal in sides:
            xs, ys = dashed if beyond else solid
            xs += [start[0], end[0], np.nan]
            ys += [start[1], end[1], np.nan]
            if beyond:
                self.off_scale.add(run)
                _chevron(solid, ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), normal, pixel)

    def _update_legend(self, visible) -> None:
        parts = tuple(p for p in PARTS if any(p in shown and vec.get(p) is not None
                                              for _, _, vec, shown in visible))
        runs = [(self._labels[run] if run < len(self._labels) else f"run {run + 1}",
                 self.scales[run]) for run, *_ in visible]
        key = (parts, tuple(runs), self.clipped, bool(self.off_scale))
        if key == self._legend_key:
            return
        self._legend_key = key
        self._full_width = 0.0
        self._build_legend("full")
        self._fit_legend()

    def _build_legend(self, form: str) -> None:
        parts, runs, clipped, off_scale = self._legend_key
        self.legend_form = form
        self.legend.clear()
        self.legend.setScale(1.0)
        if not parts:
            self.legend.setVisible(False)
            return
        self.legend.setVisible(True)
        points = float(LEGEND_TEXT_SIZE[form].removesuffix("pt")) * self.text_scale
        self.legend.opts["labelTextSize"] = f"{points:.1f}pt"
        scales = [f"{format_scale(scale)} {escape(label)}" for label, scale in runs]
        if form == "full":
            note = ", long ones clipped" if clipped else ""
            self.legend.addItem(pg.PlotDataItem(pen=None),
                                f"<b>arrows {' · '.join(scales)}</b>{note}")
        else:  # one line per run's scale, in one label: lines sit closer than legend rows
            note = "<br>long ones clipped" if clipped else ""
            self.legend.addItem(pg.PlotDataItem(pen=None),
                                f"<b>arrows {'<br>'.join(scales)}</b>{note}")
        text = STYLE if form == "full" else {p: (None, None, t) for p, t in COMPACT_TEXT.items()}
        for part in parts:
            self.legend.addItem(self.items[part], text[part][2])
        if off_scale:
            self.legend.addItem(self.box_clamped,
                                "box off-scale: dashed sides lie beyond the view"
                                if form == "full" else "box off-scale (dashed)")
        if form == "full":
            self._full_width = self.legend.width()

    def set_text_scale(self, scale: float) -> None:
        """The legend's text ``scale`` times its usual size (presenter mode: larger)."""
        self.text_scale = scale
        if self._legend_key is not None:
            self._build_legend(self.legend_form)
            if self.legend_form == "compact":  # the full form's width at the new size
                self._build_legend("full")
            self._fit_legend()

    def _fit_legend(self, *_args) -> None:
        """Keep the legend inside the view: the full form when it fits, else the compact one,
        scaled down when even that is too big (called on every resize of the view)."""
        if self._legend_key is None or not self._legend_key[0]:
            return
        room_w = self.vb.width() - 2 * LEGEND_MARGIN_PX
        room_h = self.vb.height() - 2 * LEGEND_MARGIN_PX
        if room_w <= 0 or room_h <= 0:
            return  # not laid out yet: fitted on the first resize
        wanted = "full" if self._full_width <= room_w else "compact"
        if wanted != self.legend_form:
            self._build_legend(wanted)
        width, height = self.legend.width(), self.legend.height()
        scale = min(1.0, room_w / width if width else 1.0, room_h / height if height else 1.0)
        if abs(scale - self.legend.scale()) > 1e-3:
            self.legend.setScale(scale)


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


def _fraction_inside(origin: np.ndarray, vec: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """How much of ``origin + t·vec`` (t in [0, 1]) stays in the box [lo, hi] before leaving it.

    1.0 when the end is inside, or when the origin itself is outside (the user panned away: the
    arrow is not cut to a view it does not start in)."""
    if np.any(origin < lo) or np.any(origin > hi):
        return 1.0
    fraction = 1.0
    for axis in (0, 1):
        step = vec[axis]
        if step > 0 and origin[axis] + step > hi[axis]:
            fraction = min(fraction, (hi[axis] - origin[axis]) / step)
        elif step < 0 and origin[axis] + step < lo[axis]:
            fraction = min(fraction, (lo[axis] - origin[axis]) / step)
    return max(0.0, fraction)


def _cut_mark(path: tuple[list, list], start: np.ndarray, end: np.ndarray, pixel) -> None:
    """Two short slashes across the shaft just behind the head: "this arrow is cut short"."""
    px, py = pixel
    if not (px > 0 and py > 0):
        return
    dx, dy = (end[0] - start[0]) / px, (end[1] - start[1]) / py
    norm = math.hypot(dx, dy)
    half, gap, back = CUT_PX
    if norm < back + gap + 2.0:
        return  # too short to carry a mark beside its head
    ux, uy = dx / norm, dy / norm
    xs, ys = path
    for offset in (back, back + gap):
        mx, my = -offset * ux, -offset * uy  # pixels back from the end, along the shaft
        # A slash: across the shaft, leaning 30° towards the head.
        sx = half * (-uy + 0.6 * ux)
        sy = half * (ux + 0.6 * uy)
        xs += [end[0] + (mx - sx) * px, end[0] + (mx + sx) * px, np.nan]
        ys += [end[1] + (my - sy) * py, end[1] + (my + sy) * py, np.nan]


def _chevron(path: tuple[list, list], at: tuple[float, float], normal: tuple[float, float],
             pixel) -> None:
    """A ">" pointing along ``normal`` (screen x right, y up) with its tip on ``at``, sized in
    pixels; it lies inside the side, so the view's edge does not hide it."""
    px, py = pixel
    if not (px > 0 and py > 0):
        return
    depth, half = CHEVRON_PX
    nx, ny = normal
    tip = at
    base = (at[0] - nx * depth * px, at[1] - ny * depth * py)
    xs, ys = path
    for sign in (1.0, -1.0):
        bx, by = base[0] + sign * half * -ny * px, base[1] + sign * half * nx * py
        xs += [bx, tip[0], np.nan]
        ys += [by, tip[1], np.nan]
