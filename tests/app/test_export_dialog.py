"""Export dialog: PNG / SVG pictures, GIF / MP4 animations of the requested size and frame count,
Cancel, metrics and the script through the dialog, Ctrl+E in the File menu."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import pytest
from PySide6.QtGui import QImage

from app.export.animation_options import AnimationOptions, frame_steps
from app.export.dialog import ExportDialog
from app.export.pictures import export_picture
from core.errors import LabError
from core.lab.format import lab_from_dict

SMALL = {
    "format": "descent-lab/1", "name": "Tiny race", "seed": 0, "steps": 40,
    "problem": {"kind": "function", "function": "rosenbrock", "start": [-1.5, 2.0]},
    "runs": [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.05}},
             {"label": "Momentum", "optimizer": "sgd",
              "params": {"lr": 0.0005, "momentum": 0.9}}],
}


@pytest.fixture
def dialog(window, qtbot):
    window.document.replace(lab_from_dict(SMALL), None)
    dlg = ExportDialog(window)
    qtbot.addWidget(dlg)
    yield dlg
    dlg.cancel_animation()


def test_png_and_svg_of_a_plot(window, tmp_path):
    window.resize(1000, 700)
    window.show()
    png = export_picture(window.loss_plot, tmp_path / "loss.png")
    image = QImage(str(png))
    assert (image.width(), image.height()) == (window.loss_plot.width(), window.loss_plot.height())
    svg = export_picture(window.landscape, tmp_path / "map.svg")
    root = ElementTree.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert len(list(root.iter())) > 20  # axes, ticks, the heatmap: not an empty document
    with pytest.raises(ValueError):
        export_picture(window.loss_plot, tmp_path / "loss.bmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "map.svg"]


def _export(qtbot, dialog, options: AnimationOptions) -> Path:
    animator = dialog.start_animation(options)
    with qtbot.waitSignal(animator.finished, timeout=60_000) as blocker:
        pass
    return blocker.args[0]


def test_gif_and_mp4_have_the_requested_frames_and_size(qtbot, dialog, tmp_path):
    gif = _export(qtbot, dialog, AnimationOptions(
        tmp_path / "race.gif", fps=8, width=200, height=120, frames=5, views=("landscape", "loss")))
    frames = iio.imread(gif, index=None)
    assert frames.shape[:3] == (5, 120, 200)
    assert not (frames[0] == frames[-1]).all()  # the race moves

    mp4 = _export(qtbot, dialog, AnimationOptions(
        tmp_path / "race.mp4", fps=10, width=192, height=108, frames=6, views=("lr",)))
    count, _seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert count == 6
    reader = imageio_ffmpeg.read_frames(str(mp4))
    assert next(reader)["size"] == (192, 108)
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.gif", "race.mp4"]  # no temp


def test_cancel_writes_nothing(qtbot, dialog, tmp_path):
    animator = dialog.start_animation(AnimationOptions(
        tmp_path / "race.gif", width=160, height=96, frames=200))
    with qtbot.waitSignal(animator.canceled, timeout=10_000):
        dialog.cancel_button.click()
    assert not animator.active
    assert list(tmp_path.iterdir()) == []
    assert dialog.status.text().startswith("Canceled")


def test_bad_animation_options_are_refused_with_the_field():
    lab = lab_from_dict(SMALL)
    with pytest.raises(LabError) as info:
        AnimationOptions(Path("x.mp4"), width=201, height=100).check(lab)
    assert info.value.field == "width"
    with pytest.raises(LabError) as info:
        AnimationOptions(Path("x.gif"), views=("boundaries",)).check(lab)
    assert info.value.field == "views"
    assert frame_steps(40, 5) == [0, 10, 20, 30, 40]


def test_script_and_metrics_through_the_dialog(qtbot, window, dialog, tmp_path):
    dialog.ask_path = lambda caption, name, filter_: str(tmp_path / name)
    dialog.save_script()
    script = tmp_path / "tiny_race.py"
    assert script.exists() and "torch.optim.Adam(params, lr=0.05)" in script.read_text()
    dialog.save_metrics("csv")  # nothing played yet: refused, nothing written
    assert "play the race first" in dialog.status.text()
    assert not (tmp_path / "tiny_race.csv").exists()
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    with qtbot.waitSignal(window.race_finished, timeout=30_000):
        window.play()
    dialog.save_metrics("json")
    payload = json.loads((tmp_path / "tiny_race.json").read_text())
    assert [len(payload["runs"][label]["loss"]) for label in ("Adam", "Momentum")] == [41, 41]


def test_ctrl_e_is_in_the_file_menu(window):
    action = window.export_action
    assert action.shortcut().toString() == "Ctrl+E"
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    assert action in file_menu.actions()
    action.trigger()
    assert window.export_dialog.isVisible()
    window.export_dialog.close()


def test_network_frames_show_only_the_plots_not_the_control_row(qtbot):
    from PySide6.QtCore import QSize
    from PySide6.QtWidgets import QAbstractButton, QAbstractSlider, QComboBox

    from app.export.animation import FrameCanvas

    lab = lab_from_dict({
        "format": "descent-lab/1", "name": "Tiny net", "seed": 0, "steps": 10,
        "problem": {"kind": "network", "dataset": {"name": "moons", "n": 64},
                    "model": {"layers": [{"linear": 4}, {"act": "relu"}, {"linear": 2}]},
                    "loss": "cross_entropy", "batch_size": 16},
        "runs": [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}],
    })
    canvas = FrameCanvas(lab, ("curves",), QSize(600, 320))
    try:
        controls = [w for kind in (QAbstractButton, QAbstractSlider, QComboBox)
                    for w in canvas.findChildren(kind) if w.isVisible()]
        # (pyqtgraph's own plot buttons are QGraphicsItems, not widgets: none of these.)
        assert controls == []
        # The plots start right under the caption: no empty row where the controls were.
        view = canvas.widgets["curves"]
        top = view.loss_plot.mapTo(canvas, view.loss_plot.rect().topLeft()).y()
        assert top <= canvas.caption.geometry().bottom() + 8
    finally:
        canvas.close()
        canvas.deleteLater()


def test_network_export_frames_show_every_evaluation_s_layer_statistics(qtbot, tmp_path,
                                                                        monkeypatch):
    """Several evaluations between two frames: each frame still shows the per-layer curves
    of every evaluation up to its step, inside an x range that ends at the race's end."""
    import numpy as np

    from app.export.animation import FrameCanvas, RaceAnimator

    lab = lab_from_dict({
        "format": "descent-lab/1", "name": "Net 60", "seed": 0, "steps": 60,
        "problem": {"kind": "network", "dataset": {"name": "moons", "n": 96},
                    "model": {"layers": [{"linear": 6}, {"act": "relu"}, {"linear": 2}]},
                    "loss": "cross_entropy", "batch_size": 32, "eval_every": 10},
        "runs": [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}}],
    })
    shown = []  # per frame: its step, the L1 curve's steps, the x range
    real_frame = FrameCanvas.frame

    def frame(canvas, size):
        layers = canvas.widgets["curves"].layer_plot
        curve = layers.grad_curves[0]
        shown.append((canvas.caption.text(), [float(x) for x in curve.xData],
                      layers.grad_plot.vb.viewRange()[0]))
        return real_frame(canvas, size)

    monkeypatch.setattr(FrameCanvas, "frame", frame)
    animator = RaceAnimator(lab, AnimationOptions(path=tmp_path / "net.gif", views=("curves",),
                                                  frames=3, fps=5, width=480, height=270))
    with qtbot.waitSignal(animator.finished, timeout=60_000):
        animator.start()
    assert [caption.split("step ")[1] for caption, _, _ in shown] == [
        "0 / 60", "30 / 60", "60 / 60"]
    for (_, steps, (x0, x1)), last in zip(shown, (0, 30, 60)):
        assert steps == [float(s) for s in range(0, last + 1, 10)]  # no evaluation skipped
        assert x0 <= steps[0] and steps[-1] <= x1
    assert np.allclose(shown[-1][2], (0, 60))  # the whole race, not 0 … 96
    assert iio.improps(tmp_path / "net.gif").shape[0] == 3


def test_network_frame_keeps_the_layer_legend_inside_its_plot(qtbot):
    """A 900×420 frame has two short rows of plots: the "L1 L2 L3" legend of the per-layer
    plot stays inside that plot, on one line between its title and its data, instead of
    running over its curves or its step axis (the frame is grabbed before any event, so the
    legend's row must be laid out at once)."""
    import threading

    from PySide6.QtCore import QSize

    from app.export.animation import FrameCanvas
    from core.engine.history import NetworkHistory
    from core.engine.network_race import NetworkRace

    lab = lab_from_dict({
        "format": "descent-lab/1", "name": "Three layers", "seed": 0, "steps": 10,
        "problem": {"kind": "network", "dataset": {"name": "moons", "n": 64},
                    "model": {"layers": [{"linear": 8}, {"act": "relu"}, {"linear": 8},
                                         {"act": "relu"}, {"linear": 2}]},
                    "loss": "cross_entropy", "batch_size": 16, "eval_every": 5},
        "runs": [{"label": "Adam", "optimizer": "adam", "params": {"lr": 0.01}},
                 {"label": "SGD", "optimizer": "sgd", "params": {"lr": 0.1}}],
    })
    records = list(NetworkRace(lab).records(threading.Event()))
    size = QSize(900, 420)
    canvas = FrameCanvas(lab, ("curves",), size)
    try:
        history = NetworkHistory([r.label for r in lab.runs])
        canvas.extend(history, records)
        canvas.draw(history, records[-1])
        frame = canvas.frame(size)
        assert frame.shape == (420, 900, 3)
        layers = canvas.widgets["curves"].layer_plot
        legend, box = layers.legend, layers.grad_plot.vb
        assert [label.text for _, label in legend.items] == ["L1", "L2", "L3"]
        assert legend.isVisible() and box.height() > 0 and legend.line_count() == 1
        key, data = legend.sceneBoundingRect(), box.sceneBoundingRect()
        assert key.bottom() <= data.top() + 0.5, (key, data)
        assert layers.grad_plot.sceneBoundingRect().contains(key)
    finally:
        canvas.close()
        canvas.deleteLater()
