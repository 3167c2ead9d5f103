"""The internals overlay and panel in the real window, fed by a real race on the ravine."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.arena.internals_overlay import nice_scale
from app.arena.internals_panel import rule_to_html

RAVINE = "resources/labs/ravine.lab.json"
MOMENTUM, ADAM = 1, 3  # rows of the ravine lab's runs


def _race_to(qtbot, window, step: int) -> None:
    window.step()  # steps 0 and 1
    window.controller.step(step - 1)
    qtbot.waitUntil(lambda: window.history.last_step == step, timeout=20_000)
    window.flush_redraw()


def _has_point(item, point) -> bool:
    x, y = item.getData()
    return bool(np.any(np.isclose(x, point[0], atol=1e-12) & np.isclose(y, point[1], atol=1e-12)))


@pytest.fixture
def ravine(qtbot, window):
    assert window.open_lab(RAVINE)
    window.internals_action.trigger()  # Race ▸ Optimizer internals (Ctrl+I)
    assert not window.internals_dock.isHidden()
    panel = window.internals_panel
    panel.set_shown(ADAM, "effective", True)
    panel.set_shown(ADAM, "accumulator", True)
    _race_to(qtbot, window, 12)
    return window


def test_arrows_are_drawn_at_the_records_numbers(ravine):
    window = ravine
    overlay = window.landscape.internals
    found = window.history.internals_at(12)
    for run, parts in ((MOMENTUM, ("gradient", "velocity", "step")),
                       (ADAM, ("gradient", "velocity", "step", "effective"))):
        info, scale = found[run], overlay.scales[run]
        vectors = info.vectors()
        for part in parts:
            start, end = overlay.segments[(run, part)]
            np.testing.assert_array_equal(start, info.origin)
            drawn = scale * vectors[part]
            if np.hypot(*drawn) > overlay.clip_length:  # cut to the clip length, same direction
                drawn *= overlay.clip_length / np.hypot(*drawn)
                assert overlay.clipped
            np.testing.assert_allclose(end, info.origin + drawn, atol=1e-12)
            assert _has_point(overlay.items[part], start) and _has_point(overlay.items[part], end)
    # SGD+momentum: the velocity arrow is −γ·b, b torch's own momentum buffer.
    np.testing.assert_allclose(found[MOMENTUM].velocity_step,
                               -0.012 * found[MOMENTUM].velocity, atol=1e-15)
    # Adam's box: half-sides γ·√v̂ (times the run's scale), around the previous point.
    centre, half = overlay.boxes[ADAM]
    np.testing.assert_allclose(half, overlay.scales[ADAM] * 0.1 * found[ADAM].accumulator_rms)
    # Drawn: the box, its sides beyond the view clamped to the view's edge (dashed).
    low, high = overlay.drawn_boxes[ADAM]
    np.testing.assert_array_less(centre - half - 1e-12, low)
    np.testing.assert_array_less(high, centre + half + 1e-12)
    assert _has_point(overlay.items["accumulator"], high) or _has_point(overlay.box_clamped, high)
    # Scales are 1-2-5 numbers, at least 1, and the legend says them.
    legend = " ".join(label.text for _sample, label in overlay.legend.items)
    for run, label in ((MOMENTUM, "Momentum 0.9"), (ADAM, "Adam")):
        assert overlay.scales[run] >= 1 and overlay.scales[run] == nice_scale(overlay.scales[run])
        assert f"×{overlay.scales[run]:g} {label}" in legend


def test_toggles_remove_and_restore_arrows(ravine):
    window = ravine
    overlay, panel = window.landscape.internals, window.internals_panel
    start, end = overlay.segments[(MOMENTUM, "velocity")]
    panel.set_shown(MOMENTUM, "velocity", False)
    assert (MOMENTUM, "velocity") not in overlay.segments
    assert not _has_point(overlay.items["velocity"], end)
    assert (MOMENTUM, "step") in overlay.segments  # the other parts stay
    panel.set_shown(MOMENTUM, "velocity", True)
    np.testing.assert_allclose(overlay.segments[(MOMENTUM, "velocity")][1], end)
    # SGD without momentum has no velocity to tick.
    item = panel.table.item(0, 1)
    assert not item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    window.internals_action.trigger()  # hide the dock: nothing drawn
    assert overlay.segments == {} and len(overlay.items["step"].getData()[0] or []) == 0


def test_readout_and_equation_follow_the_selected_run(ravine):
    window = ravine
    panel = window.internals_panel
    found = window.history.internals_at(12)
    panel.select_run(ADAM)
    assert panel.readout.text().replace("\u00a0", " ") == found[ADAM].text
    assert panel.readout.text().startswith("step 12: g = (")
    title = panel.equation_title.text()
    assert "Adam" in title and "torch.optim.Adam" in title
    assert "<i>m̂</i>" in panel.equation.text() and "<sup><i>t</i></sup>" in panel.equation.text()
    panel.select_run(MOMENTUM)
    assert panel.readout.text().startswith("step 12: g = (") and ", b = (" in panel.readout.text()
    title = panel.equation_title.text()
    assert "<b>SGD</b>" in title and "momentum = 0.9" in title
    assert "nesterov" in panel.equation.text()


def test_update_rules_are_typeset():
    html = rule_to_html(
        "v̂ ← v / (1 − β₂ᵗ)          (amsgrad: v̂ ← max(v̂_max, v̂))\nθ ← θ − γ·m̂ / (√v̂ + ε)"
    )
    assert "<i>β</i><sub>2</sub><sup><i>t</i></sup>" in html
    assert "<i>v̂</i><sub>max</sub>" in html  # v̂_max
    assert "√<span style='text-decoration: overline'><i>v̂</i></span>" in html
    assert "color:#9aa3b5" in html  # the remark is set apart
    assert "max(" in html and "<i>max</i>" not in html  # words stay upright
    plain = rule_to_html("g ← ∇f(θ)         (decoupled_weight_decay: θ ← θ − γ·λ·θ instead)")
    assert "decoupled_weight_decay" in plain  # a name, not a subscript


def test_selecting_a_run_in_the_runs_table_shows_its_internals(ravine):
    window = ravine
    window.runs_panel.select_run(ADAM)  # the ravine lab's runs are all enabled: same index
    assert window.internals_panel.selected_run() == ADAM
    assert "torch.optim.Adam" in window.internals_panel.equation_title.text()
    window.runs_panel.select_run(MOMENTUM)
    assert window.internals_panel.selected_run() == MOMENTUM
    assert "momentum = 0.9" in window.internals_panel.equation_title.text()


def test_an_off_scale_box_is_clamped_to_the_view_and_its_numbers_stay_exact(qtbot, ravine):
    window = ravine
    window.controller.step(28)  # step 40: Adam's γ·√v̂ in y is several times the view
    qtbot.waitUntil(lambda: window.history.last_step == 40, timeout=20_000)
    window.flush_redraw()
    overlay = window.landscape.internals
    (x0, x1), (y0, y1) = overlay.vb.viewRange()
    info = window.history.internals_at(40)[ADAM]
    centre, half = overlay.boxes[ADAM]
    # The true box is far taller than the view ... (γ·√v̂ alone is 3.5 views; the run's scale is
    # at least 1 and sticky, so 1 or 2 depending on how the view moved while the race ran)
    np.testing.assert_allclose(half, overlay.scales[ADAM] * 0.1 * info.accumulator_rms)
    assert overlay.scales[ADAM] >= 1
    assert half[1] > 3 * (y1 - y0)
    # ... yet everything drawn for boxes and arrows stays inside the view: no lines across the
    # whole landscape, and the clamped sides (dashed) say the box goes on beyond them.
    for item in [overlay.box_clamped, *overlay.items.values()]:
        xs, ys = item.getData()
        if xs is None or len(xs) == 0:
            continue
        finite = np.isfinite(xs) & np.isfinite(ys)
        assert np.all((xs[finite] >= x0) & (xs[finite] <= x1)), item
        assert np.all((ys[finite] >= y0) & (ys[finite] <= y1)), item
    assert ADAM in overlay.off_scale
    assert len(overlay.box_clamped.getData()[0]) > 0
    legend = " ".join(label.text for _sample, label in overlay.legend.items)
    assert "box off-scale" in legend
    # The readout keeps the exact numbers.
    window.internals_panel.select_run(ADAM)
    assert window.internals_panel.readout.text().replace("\u00a0", " ") == info.text
    # Box unticked: no dashed sides, and the legend no longer speaks of one.
    window.internals_panel.set_shown(ADAM, "accumulator", False)
    assert not overlay.off_scale and len(overlay.box_clamped.getData()[0] or []) == 0
    legend = " ".join(label.text for _sample, label in overlay.legend.items)
    assert "off-scale" not in legend


def test_at_1280x800_with_the_dock_open_the_legends_fit_their_plots(qtbot, ravine):
    """The dock narrows the landscape and the loss plot: the internals legend takes its compact
    form inside the view (every part still named); the loss legend stays, a row above the
    curves that names every run; the full internals legend comes back when there is room."""
    from PySide6.QtWidgets import QApplication

    window = ravine
    window.resize(1280, 800)
    window.show()
    window.controller.step(28)  # step 40: the longest legend (clipped arrows, off-scale box)
    qtbot.waitUntil(lambda: window.history.last_step == 40, timeout=20_000)
    window.flush_redraw()
    QApplication.processEvents()
    overlay = window.landscape.internals
    loss_legend = window.loss_plot.legend

    def legend_fits() -> bool:
        return (overlay.legend.isVisible()
                and overlay.vb.sceneBoundingRect().contains(overlay.legend.sceneBoundingRect()))

    assert legend_fits() and overlay.legend_form == "compact"
    labels = [label.text for _sample, label in overlay.legend.items]
    assert all(f"{name}" in labels[0] for name in ("SGD", "Momentum 0.9", "Adam"))
    assert "clipped" in labels[0]
    shown = [p for p in overlay.items if any(s.item is overlay.items[p]
                                             for s, _ in overlay.legend.items)]
    assert {"gradient", "velocity", "step", "effective", "accumulator"} <= set(shown)
    assert any("off-scale" in text for text in labels)
    assert loss_legend.isVisible()
    assert loss_legend.sceneBoundingRect().bottom() <= (
        window.loss_plot.plotItem.vb.sceneBoundingRect().top() + 0.5)
    assert [label.text for _, label in loss_legend.items] == [
        run.label for run in window.document.lab.runs]
    # A wide window: the full legend, and the loss plot's legend again.
    window.resize(2400, 1000)
    qtbot.waitUntil(lambda: overlay.legend_form == "full" and loss_legend.isVisible(),
                    timeout=5_000)
    assert legend_fits()
    assert overlay.legend.items[0][1].text.startswith("<b>arrows ×")
