"""The 2-D test function in 3-D, with every run's path lying on the surface (the arena's 3-D tab).

Built on the loss-surface view (app/surface/view_3d.py): the same OpenGL check, the same message
where there is no OpenGL, the same lazily created GL widget. What differs is the data:

* the surface is a mesh in the function's own units, x and y as on the map and height the map's
  display value (f, or log10(f − min) for functions coloured on a log scale, from
  `function_map.display_transform`); one GL transform fits it into the view's box at equal x and y
  scales, so the mesh's vertices *are* the function's values (`function_mesh`);
* where f is undefined (NaN: log x for x < 0) there are no triangles: a hole, not a peak;
* each path is the run's recorded points at the run's recorded loss (`path_vertices`), so a path
  lies where the run really was, not where the grid interpolates; it follows the race live.

Data is computed here without GL, so tests check it on Qt's offscreen platform; GL only draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor, QMatrix4x4

from app.arena.function_map import COLORMAP, display_transform
from app.surface.view_3d import HEIGHT, LIFT, Surface3DView
from core.problems.functions import Objective, finite_values

MESH_RESOLUTION = 120  # vertices per side: smooth enough to turn, cheap to rebuild on an edit
LOG_FLOOR_PERCENTILE = 1.0  # log-scaled heights start here (`function_mesh`)


@dataclass(frozen=True)
class FunctionMesh:
    """The surface in function units: ``vertices`` (R·R, 3) = (x, y, display value) row-major
    over (y, x), ``faces`` (F, 3) vertex indices of the triangles where f is defined, one RGBA
    colour per vertex, and what the heights mean."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    lo: float
    hi: float
    domain: tuple[tuple[float, float], tuple[float, float]]
    transform: object  # f -> display value, as the map's heatmap
    label: str


def function_mesh(objective: Objective, resolution: int = MESH_RESOLUTION) -> FunctionMesh:
    """``objective`` sampled on a ``resolution``² grid, as a mesh with holes where f is NaN."""
    xs, ys, raw = objective.raw_grid(resolution)
    undefined = np.isnan(raw)
    z = finite_values(raw)
    transform, label = display_transform(objective, z[~undefined] if (~undefined).any() else z)
    values = transform(z)
    shown = values[~undefined] if (~undefined).any() else values
    lo, hi = float(np.min(shown)), float(np.max(shown))
    if objective.log_scale:
        # log10(f − min) plunges in a pit narrower than a grid cell (Rosenbrock's: to −7 at
        # one vertex): the heights span the values but the lowest percent, which lie on the
        # floor, so the pit does not flatten the rest of the surface against the ceiling.
        lo = float(np.percentile(shown, LOG_FLOOR_PERCENTILE))
    if hi <= lo:
        hi = lo + 1.0
    x_mesh, y_mesh = np.meshgrid(xs, ys, indexing="xy")
    vertices = np.column_stack([x_mesh.ravel(), y_mesh.ravel(), values.ravel()])
    # Two triangles per grid cell, kept only where all three corners are defined.
    r = resolution
    j, i = np.meshgrid(np.arange(r - 1), np.arange(r - 1), indexing="ij")
    a = (j * r + i).ravel()
    b, c, d = a + 1, a + r + 1, a + r
    faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    defined = ~undefined.ravel()
    faces = faces[defined[faces].all(axis=1)]
    colors = np.asarray(COLORMAP.map(np.clip((values.ravel() - lo) / (hi - lo), 0, 1),
                                     mode="float"), dtype=np.float32)
    colors[:, :3] *= _light(xs, ys, values, lo, hi).ravel()[:, None]
    return FunctionMesh(vertices, faces.astype(np.int32), colors, lo, hi, objective.domain,
                        transform, label)


def _light(xs, ys, values, lo, hi) -> np.ndarray:
    """Per vertex, 0.45 … 1: Lambert shading of the surface as drawn (`fit_matrix`'s box) by a
    light from the upper left, so hills and valleys read (colours alone made a flat picture;
    pyqtgraph's shaded shader lights it from behind the default camera)."""
    half = max(xs[-1] - xs[0], ys[-1] - ys[0]) / 2 or 1.0
    z = np.clip((values - lo) / (hi - lo), 0, 1) * HEIGHT
    dz_dy, dz_dx = np.gradient(z, ys / half, xs / half)
    normal = np.stack([-dz_dx, -dz_dy, np.ones_like(z)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.array([-0.5, -0.6, 1.0]) / np.linalg.norm([-0.5, -0.6, 1.0])
    return 0.45 + 0.55 * np.clip(normal @ light, 0.0, 1.0)


def path_vertices(mesh: FunctionMesh, x: np.ndarray, y: np.ndarray,
                  loss: np.ndarray) -> np.ndarray:
    """A run's path on the surface: (N, 3) = its points (x, y) at the display value of its loss
    f(x, y), clipped to the surface's range; points whose loss is not finite are left out."""
    x, y, loss = (np.asarray(v, dtype=float) for v in (x, y, loss))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(loss)
    with np.errstate(invalid="ignore", divide="ignore"):
        height = np.clip(mesh.transform(loss[keep]), mesh.lo, mesh.hi)
    return np.column_stack([x[keep], y[keep], height])


def fit_matrix(mesh: FunctionMesh) -> QMatrix4x4:
    """Function units → the view's box: the domain's longer side spans −1…1 at equal x and y
    scales (to scale, as the map), heights lo…hi span 0…HEIGHT."""
    (x0, x1), (y0, y1) = mesh.domain
    half = max(x1 - x0, y1 - y0) / 2 or 1.0
    m = QMatrix4x4()
    m.scale(1 / half, 1 / half, HEIGHT / (mesh.hi - mesh.lo))
    m.translate(-(x0 + x1) / 2, -(y0 + y1) / 2, -mesh.lo)
    return m


class Function3DView(Surface3DView):
    """The arena's 3-D tab: the function's surface and the runs' paths (or why there is none)."""

    def __init__(self, parent=None):
        super().__init__(COLORMAP, parent)
        # Its own name: "What is this plot?" (app/shell/plot_help.py) explains this view, not
        # the network's loss surface.
        self.setObjectName("function3d")
        self.fallback.setText("Pick a function to see it in 3-D.")
        self.fallback.setToolTip("The 3-D view of the test function")
        self.mesh: FunctionMesh | None = None
        self._colors: list[QColor] = []
        self._paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._alive: list[bool] = []
        self._mesh_item = None
        self._drawn_mesh = None
        self._path_items: list = []
        self._markers = None

    def no_gl_text(self, reason: str) -> str:
        return (f"The 3-D view needs OpenGL, and {reason}.\n"
                "The Map tab shows the same function as a heatmap with contours.")

    # -- data in -------------------------------------------------------------------------------

    def set_objective(self, objective: Objective) -> None:
        self.mesh = function_mesh(objective)
        self._paths = []
        self._pending = ()
        self._refresh()

    def set_runs(self, colors: list[str]) -> None:
        self._colors = [QColor(c) for c in colors]
        self._paths, self._alive = [], []
        self._refresh()

    def update_paths(self, paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                     alive: list[bool]) -> None:
        """Each run's (x, y, loss) so far; drawn at once when the view shows, else when shown."""
        self._paths, self._alive = list(paths), list(alive)
        self._refresh()

    def path_positions(self) -> list[np.ndarray]:
        """Each run's path as drawn, in function units (x, y, display value of its loss)."""
        if self.mesh is None:
            return []
        return [path_vertices(self.mesh, *p) for p in self._paths]

    # -- drawing -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self.mesh is not None and self.isVisible():
            self._draw()

    def _add_items(self, gl) -> None:
        from OpenGL import GL

        # Paths and markers: no depth test, drawn after the surface (pyqtgraph's GLOptions).
        self._on_top = {GL.GL_DEPTH_TEST: False, GL.GL_BLEND: True, GL.GL_CULL_FACE: False,
                        "glBlendFunc": (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)}
        # Lit in the vertex colours (`_light`), drawn as they are.
        self._mesh_item = gl.GLMeshItem(smooth=True, drawEdges=False, glOptions="opaque")
        self.view.setCameraPosition(distance=3.1)  # closer than the loss surface: fills the tab
        self.view.addItem(self._mesh_item)
        self._markers = gl.GLScatterPlotItem(size=11, pxMode=True)
        self._markers.setGLOptions(self._on_top)
        self._markers.setDepthValue(20)
        self.view.addItem(self._markers)

    def _draw(self, *_) -> None:
        if self.mesh is None or not self._ensure_view():
            return
        import pyqtgraph.opengl as gl

        mesh, matrix = self.mesh, fit_matrix(self.mesh)
        if self._drawn_mesh is not mesh:
            drawn = mesh.vertices.astype(np.float32)
            drawn[:, 2] = np.maximum(drawn[:, 2], mesh.lo)  # the floor (`function_mesh`)
            self._mesh_item.setMeshData(meshdata=gl.MeshData(
                vertexes=drawn, faces=mesh.faces, vertexColors=mesh.colors))
            self._mesh_item.setTransform(matrix)
            self._markers.setTransform(matrix)
            self._drawn_mesh = mesh
        while len(self._path_items) > len(self._colors):
            self.view.removeItem(self._path_items.pop())
        while len(self._path_items) < len(self._colors):
            line = gl.GLLinePlotItem(width=3, antialias=False, mode="line_strip")
            # Drawn over the surface, never hidden by it: a path lies at the run's true loss,
            # and in a valley the flat triangles between grid points lie above it.
            line.setGLOptions(self._on_top)
            line.setDepthValue(10)
            self.view.addItem(line)
            self._path_items.append(line)
        lift = LIFT * (mesh.hi - mesh.lo) / HEIGHT
        ends, end_colors = [], []
        positions = self.path_positions()
        for k, (line, color) in enumerate(zip(self._path_items, self._colors)):
            rgba = (color.redF(), color.greenF(), color.blueF(), 1.0)
            pos = positions[k] if k < len(positions) else np.empty((0, 3))
            pos = pos + [0.0, 0.0, lift]
            line.setTransform(matrix)
            line.setData(pos=pos.astype(np.float32), color=rgba)
            line.setVisible(len(pos) > 1)
            if len(pos):
                ends.append(pos[-1])
                alive = k >= len(self._alive) or self._alive[k]
                end_colors.append(rgba if alive else (0.5, 0.5, 0.5, 1.0))
        self._markers.setData(pos=np.array(ends, dtype=np.float32).reshape(-1, 3),
                              color=np.array(end_colors, dtype=np.float32).reshape(-1, 4))
