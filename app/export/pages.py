"""The export dialog's pages (app/export/dialog.py): Picture, Animation, Data.

Each builder returns its page and the controls the dialog reads; what a button does is the
dialog's (the ``save`` / ``cancel`` callables given here). Pictures: which view, PNG or SVG.
Animation: frame rate, frames, size and views (checked by
app/export/animation_options.py), GIF or MP4, and the progress bar with Cancel. Data: the metrics
as CSV or JSON and the lab as a PyTorch script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.export.animation_options import FUNCTION_VIEWS, MAX_FRAMES, MAX_SIDE, NETWORK_VIEWS
from app.widgets.layouts import hbox


def save_buttons(formats: tuple[tuple[str, str], ...], save: Callable[[str], None]) -> QHBoxLayout:
    """One "Save FMT…" button per (format, tooltip); a click calls ``save("fmt")``."""
    row = QHBoxLayout()
    for fmt, tip in formats:
        button = QPushButton(f"Save {fmt}…")
        button.setToolTip(tip)
        button.clicked.connect(lambda _=False, f=fmt.lower(): save(f))
        row.addWidget(button)
    return row


def spin(low: int, high: int, value: int, suffix: str, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    return box


def picture_page(plot_names: Iterable[str],
                 save: Callable[[str], None]) -> tuple[QWidget, QComboBox]:
    """The Picture page and its combo of the window's views (``plot_names``)."""
    page = QWidget()
    form = QFormLayout(page)
    combo = QComboBox(objectName="exportPlotCombo")
    combo.setToolTip("Which view of the window to save, as it is on screen now")
    for name in plot_names:
        combo.addItem(name)
    form.addRow("View", combo)
    form.addRow(save_buttons(
        (("PNG", "A bitmap picture of the view, at its size on screen"),
         ("SVG", "A vector picture of the view, sharp at any size")), save))
    return page, combo


@dataclass
class AnimationControls:
    """The Animation page and the controls the dialog reads and shows."""

    page: QWidget
    fps: QSpinBox
    frames: QSpinBox
    width: QSpinBox
    height: QSpinBox
    view_boxes: dict[str, QCheckBox]
    progress_bar: QProgressBar
    cancel_button: QPushButton


def animation_page(is_network: bool, save: Callable[[str], None],
                   cancel: Callable[[], None]) -> AnimationControls:
    page = QWidget()
    form = QFormLayout(page)
    fps = spin(1, 60, 15, " fps", "Frames per second of the animation")
    frames = spin(2, MAX_FRAMES, 60, "", "How many frames, at evenly spaced steps of the race")
    width = spin(64, MAX_SIDE, 960, " px", "Width of the animation (even for MP4)")
    height = spin(64, MAX_SIDE, 540, " px", "Height of the animation (even for MP4)")
    for box in (width, height):
        box.setSingleStep(2)
    form.addRow("Frame rate", fps)
    form.addRow("Frames", frames)
    form.addRow("Size", hbox(width, "×", height))
    view_boxes: dict[str, QCheckBox] = {}
    views = QHBoxLayout()
    for key, title in (NETWORK_VIEWS if is_network else FUNCTION_VIEWS).items():
        box = QCheckBox(title)
        box.setChecked(key in ("landscape", "loss", "curves"))
        box.setToolTip(f"Show the {title.lower()} in the animation")
        view_boxes[key] = box
        views.addWidget(box)
    form.addRow("Views", views)
    form.addRow(save_buttons(
        (("GIF", "An animated GIF: plays anywhere, larger files"),
         ("MP4", "An H.264 video: small files, for slides and players")), save))
    progress_bar = QProgressBar()
    progress_bar.setToolTip("Progress of the animation export")
    progress_bar.setVisible(False)
    cancel_button = QPushButton("Cancel")
    cancel_button.setToolTip("Stop the export; nothing is written")
    cancel_button.setVisible(False)
    cancel_button.clicked.connect(cancel)
    form.addRow(hbox((progress_bar, 1), cancel_button))
    return AnimationControls(page, fps, frames, width, height, view_boxes, progress_bar,
                             cancel_button)


def data_page(save_metrics: Callable[[str], None], save_script: Callable[[], None]) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    for text, tip, slot in (
        ("Metrics as CSV…", "Every step of the race shown in the window: run, step, loss, "
         "lr, grad_norm (and validation metrics)", lambda: save_metrics("csv")),
        ("Metrics as JSON…", "The same metrics as JSON: one list per run and column",
         lambda: save_metrics("json")),
        ("Lab as PyTorch script…", "A standalone Python script (torch + numpy) that trains "
         "this lab and reproduces its numbers", save_script),
    ):
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        layout.addWidget(button)
    layout.addStretch(1)
    return page
