"""The network screen's Overview tab (app/network/overview_tab.py): data → network → output in view
together at 1280×800, each neuron painted with its own values over the plane (from core), and
the selected run's epoch and losses in large type."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QAbstractScrollArea, QScrollArea

from app.network.overview_tab import neuron_rgba
from app.network.views import TAB_OVERVIEW
from core.lab.format import load_lab, save_lab

ROOT = Path(__file__).resolve().parents[2]
MOONS = ROOT / "resources" / "labs" / "moons_race.lab.json"


def _race(qtbot, window, tmp_path, steps=60):
    lab = load_lab(MOONS)
    path = tmp_path / "moons.lab.json"
    save_lab(replace(lab, steps=steps, runs=lab.runs[2:]), path)  # RMSprop and Adam
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    assert window.open_lab(path)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    window.flush_redraw()
    return window.network_view


def _image_rgba(image) -> np.ndarray:
    bits = image.constBits()
    return np.frombuffer(bits, dtype=np.uint8).reshape(image.height(), image.width(), 4).copy()


def test_data_network_and_output_are_in_view_together_at_1280x800(qtbot, window, tmp_path):
    view = _race(qtbot, window, tmp_path)
    overview = view.overview
    assert view.tabs.currentIndex() == TAB_OVERVIEW  # a new lab opens on it
    assert window.width() <= 1280 and window.height() <= 800
    for part in (overview.data_plot, overview.diagram, overview.output_plot):
        assert part.isVisible()
        top_left = part.mapTo(window, part.rect().topLeft())
        bottom_right = part.mapTo(window, part.rect().bottomRight())
        assert window.rect().contains(top_left) and window.rect().contains(bottom_right), part
        assert part.width() >= 150 and part.height() >= 150, (part, part.size())
        # Not inside a scroll area: nothing to scroll to see it.
        parent = part.parentWidget()
        while parent is not None and parent is not window:
            assert not isinstance(parent, QScrollArea), part
            assert not (isinstance(parent, QAbstractScrollArea) and parent is not part)
            parent = parent.parentWidget()
    # Left to right: data, network, output.
    xs = [p.mapTo(window, p.rect().topLeft()).x()
          for p in (overview.data_plot, overview.diagram, overview.output_plot)]
    assert xs == sorted(xs)
    assert overview.output_image.image is not None  # the selected run's prediction is drawn


def test_the_big_numbers_are_the_selected_runs_epoch_and_losses(qtbot, window, tmp_path):
    view = _race(qtbot, window, tmp_path)
    history, overview = window.history, view.overview
    for run in (0, 1):
        view.select_run(run)
        evals, steps = history.evals[run], history.steps[run]
        shown = overview.numbers_shown()
        assert shown["train"] == f"{evals.last('train_loss'):.4f}"
        assert shown["val"] == f"{evals.last('val_loss'):.4f}"
        assert shown["score"] == f"{evals.last('val_accuracy'):.1%}"
        assert shown["epoch"] == f"{steps.last('epoch'):.1f}"
        assert overview.run_combo.currentIndex() == run
    assert overview.numbers["train"].font().pointSize() >= 18  # large, not the 9 pt of the UI
    # The two runs' numbers differ (the labels follow the selection, not the first run).
    view.select_run(0)
    first = overview.numbers_shown()
    view.select_run(1)
    assert overview.numbers_shown()["train"] != first["train"]


def test_each_neuron_is_painted_with_its_own_values_over_the_plane(qtbot, window, tmp_path):
    view = _race(qtbot, window, tmp_path)
    overview = view.overview
    diagram = overview.diagram
    for run in (1, 0):
        view.select_run(run)
        columns = window.history.last_evaluation.neurons[run]
        assert [len(c) for c in columns] == [2, 16, 16, 2]  # x, y → 16 → 16 → 2
        assert len(diagram.images) == sum(len(c) for c in columns)  # every drawn neuron
        for (column, unit), image in diagram.images.items():
            values = columns[column][unit]
            drawn = _image_rgba(image)
            np.testing.assert_array_equal(drawn, neuron_rgba(values))
        # What the colours say: blue where a hidden unit is clearly positive, orange where
        # clearly negative (rows flipped: the image's top row is the plane's largest y).
        values = columns[1][int(np.argmax([np.ptp(m) for m in columns[1]]))]
        rgb = neuron_rgba(values)[::-1, :, :3].astype(int)
        scale = np.abs(values).max()
        positive, negative = values > 0.5 * scale, values < -0.5 * scale
        assert positive.any()
        assert (rgb[positive][:, 2] > rgb[positive][:, 0]).all()  # blue > red
        if negative.any():  # a ReLU unit has none
            assert (rgb[negative][:, 0] > rgb[negative][:, 2]).all()
        # The inputs are the plane's x and y: x grows to the right, y upwards.
        x_map, y_map = columns[0]
        assert (np.diff(x_map, axis=1) > 0).all() and (np.diff(y_map, axis=0) > 0).all()
