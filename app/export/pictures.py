"""Pictures of the window's plots (the export dialog's Picture page saves them; app/export/dialog.py).

`export_picture` saves a widget as PNG (``QWidget.grab``) or SVG (``QSvgGenerator``: the view
painted as vector paths and text, the heatmap embedded as an image), written to `temp_beside` the
target and renamed into place; `window_plots` names the plots a window can export.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QWidget


def temp_beside(path: Path) -> Path:
    """A temporary name in the target's folder, same suffix (writers pick formats by it)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def export_picture(widget: QWidget, path: str | os.PathLike) -> Path:
    """Save ``widget`` as PNG or SVG (by the suffix), atomically. Raises OSError / ValueError."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"{target.name}: choose a .png or .svg file name")
    tmp = temp_beside(target)
    try:
        if suffix == ".png":
            if not widget.grab().save(str(tmp), "PNG"):
                raise OSError(f"could not write {target}")
        else:
            # Qt's SVG painter, not pyqtgraph's SVGExporter: the latter fails on some of our
            # items (its coordinate fix-up breaks on decimated polylines, pyqtgraph 0.14).
            _render_svg(widget, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _render_svg(widget: QWidget, path: Path) -> None:
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(widget.rect())
    generator.setTitle(widget.objectName() or "Descent Lab view")
    painter = QPainter(generator)
    try:
        widget.render(painter)
    finally:
        painter.end()


def window_plots(window) -> dict[str, QWidget]:
    """The pictures the window can export, by name: its plots as they are on screen."""
    lab = window.document.lab
    if not lab.is_network or window.network_view is None:
        return {"Landscape": window.landscape, "Loss curves": window.loss_plot,
                "Learning rates": window.lr_plot}
    view = window.network_view
    plots: dict[str, QWidget] = {"Network view (current tab)": view}
    for plot in view.findChildren(pg.PlotWidget):
        title = plot.getPlotItem().titleLabel.text or plot.objectName() or "plot"
        name = " ".join(title.replace("<", " <").split("<")[0].split()) or plot.objectName()
        if plot.isVisible() and name not in plots:
            plots[name] = plot
    return plots
