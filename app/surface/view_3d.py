"""The loss surface in 3-D (pyqtgraph.opengl), with every run's path drawn on it.

OpenGL is not everywhere: Qt's offscreen and minimal platforms have none, a remote X display may
lack GLX, PyOpenGL may be missing. `opengl_unavailable_reason` finds out *before* any GL widget
exists (creating one without a context only logs warnings and paints nothing), and the view then
shows a plain message saying why, instead of crashing. The GL widget itself is created lazily, the
first time there is something to draw and the view is shown, so a user who never opens the tab
never pays for a GL context.

The grid is drawn in plane units on x and y (α, β scaled to ±1) and height 0 … `HEIGHT` for the
lowest … highest value shown (the same log or linear values as the 2-D map, coloured with its
colour map). A path point sits on the surface at the loss of the surface *at its projection*
(what the map shows there), lifted slightly so the line stays visible. This module does not
import the 2-D map's module (which pulls in torch), so a bare 3-D view starts fast.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QVector3D
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

from app.shell.theme import BACKGROUND

HEIGHT = 1.2  # the surface's height in the same units as the ±1 plane
LIFT = 0.02  # paths float this much above the surface
NO_GL_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb")


def opengl_unavailable_reason() -> str | None:
    """Why a GL view cannot work here, or None when it can."""
    platform = QGuiApplication.platformName()
    if platform in NO_GL_PLATFORMS:
        return f"the Qt platform “{platform}” has no OpenGL"
    try:
        import OpenGL.GL  # noqa: F401 - PyOpenGL is what pyqtgraph.opengl draws with
        import pyqtgraph.opengl  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means no 3-D view
        return f"PyOpenGL could not be loaded ({exc})"
    from PySide6.QtGui import QOffscreenSurface, QOpenGLContext

    context = QOpenGLContext()
    if not context.create():
        return "no OpenGL context could be created on this display"
    surface = QOffscreenSurface()
    surface.setFormat(context.format())
    surface.create()
    ok = context.makeCurrent(surface)
    if ok:
        context.doneCurrent()
    surface.destroy()
    if not ok:
        return "the OpenGL context could not be made current on this display"
    return None


def surface_heights(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Heights 0 … HEIGHT for ``values`` (non-finite → the top), and the (lo, hi) they map."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.zeros_like(values), 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    clean = np.where(np.isfinite(values), values, hi)
    return (clean - lo) / (hi - lo) * HEIGHT, lo, hi


class Surface3DView(QWidget):
    """A GLViewWidget with the surface and the paths, or a message when there is no OpenGL."""

    def __init__(self, colormap: pg.ColorMap | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("surface3d")
        # The 2-D map passes its own map, so both views colour a loss alike.
        self.colormap = colormap or pg.colormap.get("viridis")
        self._stack = QStackedLayout(self)
        self.fallback = QLabel(objectName="surface3dFallback")
        self.fallback.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.fallback.setWordWrap(True)
        self.fallback.setText("Compute a surface to see it in 3-D.")
        self.fallback.setToolTip("The 3-D view of the loss surface")
        self._stack.addWidget(self.fallback)
        self.view = None  # the GLViewWidget, once created
        self._surface_item = None
        self._lines: list = []
        self._pending = None
        self._reason: str | None = None
        self._checked = False

    # -- availability ------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        if not self._checked:
            self._reason = opengl_unavailable_reason()
            self._checked = True
        return self._reason

    def _ensure_view(self) -> bool:
        if self.view is not None:
            return True
        reason = self.unavailable_reason()
        if reason is not None:
            self.fallback.setText(self.no_gl_text(reason))
            self.fallback.setToolTip(f"No 3-D view: {reason}")
            return False
        import pyqtgraph.opengl as gl

        self.view = gl.GLViewWidget()
        self.view.setObjectName("surface3dGL")
        self.view.setToolTip("Drag to rotate, right-drag or wheel to zoom, middle-drag to pan.")
        self.view.setBackgroundColor(QColor(BACKGROUND))
        self.view.setCameraPosition(pos=QVector3D(0, 0, HEIGHT / 3), distance=3.5, elevation=28,
                                    azimuth=-55)
        grid = gl.GLGridItem()
        grid.setSize(2, 2)
        grid.setSpacing(0.25, 0.25)
        grid.setColor((120, 130, 150, 90))
        self.view.addItem(grid)
        self._add_items(gl)
        self._stack.addWidget(self.view)
        self._stack.setCurrentWidget(self.view)
        return True

    def _add_items(self, gl) -> None:
        """The surface item (app/arena/function_3d.py draws a mesh with holes instead)."""
        self._surface_item = gl.GLSurfacePlotItem(smooth=False, computeNormals=False,
                                                  glOptions="opaque")
        self.view.addItem(self._surface_item)

    def no_gl_text(self, reason: str) -> str:
        """What the view says in place of the 3-D picture when there is no OpenGL."""
        return (f"The 3-D view needs OpenGL, and {reason}.\n"
                "The Map tab shows the same surface as a heatmap with contours.")

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._pending is not None:
            self._draw(*self._pending)

    # -- drawing -----------------------------------------------------------------------------

    def set_surface(self, alphas, betas, values, paths, colors) -> None:
        """Draw ``values[j, i]`` (display values: log or linear) over the α, β grid, and each
        path as (alpha, beta, display value at its projection) in its run's colour."""
        self._pending = (np.asarray(alphas), np.asarray(betas), np.asarray(values), paths,
                         list(colors))
        if self.isVisible():
            self._draw(*self._pending)

    def _draw(self, alphas, betas, values, paths, colors) -> None:
        if not self._ensure_view():
            return
        import pyqtgraph.opengl as gl

        span_a = max(float(np.max(np.abs(alphas))), 1e-12)
        span_b = max(float(np.max(np.abs(betas))), 1e-12)
        heights, lo, hi = surface_heights(values)
        rgba = self.colormap.map(heights.ravel() / HEIGHT, mode="float").reshape(*heights.shape, 4)
        # GLSurfacePlotItem wants z[i, j] at (x[i], y[j]) (our grids are rows = β), and one
        # colour per vertex in that same x-major order, flat: (len(x)·len(y), 4).
        vertex_colors = np.ascontiguousarray(rgba.transpose(1, 0, 2)).reshape(-1, 4)
        self._surface_item.setData(x=alphas / span_a, y=betas / span_b, z=heights.T,
                                   colors=vertex_colors)
        for line in self._lines:
            self.view.removeItem(line)
        self._lines = []
        for (a, b, v), color in zip(paths, colors):
            if len(a) < 1:
                continue
            z = (np.clip(np.where(np.isfinite(v), v, hi), lo, hi) - lo) / (hi - lo) * HEIGHT
            pos = np.column_stack([a / span_a, b / span_b, z + LIFT]).astype(np.float32)
            c = QColor(color)
            line = gl.GLLinePlotItem(pos=pos, color=(c.redF(), c.greenF(), c.blueF(), 1.0),
                                     width=3, antialias=False, mode="line_strip")
            line.setGLOptions("opaque")
            self.view.addItem(line)
            self._lines.append(line)
            dot = gl.GLScatterPlotItem(pos=pos[-1:], color=(c.redF(), c.greenF(), c.blueF(), 1.0),
                                       size=10, pxMode=True)
            self.view.addItem(dot)
            self._lines.append(dot)

    def grab_image(self) -> QImage | None:
        """The rendered frame (None without OpenGL)."""
        if self.view is None:
            return None
        return self.view.grabFramebuffer()

    @property
    def available(self) -> bool:
        return self.view is not None
