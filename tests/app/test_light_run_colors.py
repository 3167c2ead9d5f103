"""The light theme draws every run in a colour with WCAG contrast >= 3:1 on its white plots
(app/shell/run_palette.py), neighbouring runs still differ in lightness, and switching the theme
recolours a finished race's plots without resetting it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from app.shell.run_palette import themed_run_color
from app.shell.theme import _PLOT_COLORS, apply_theme
from core.lab.format import RUN_COLORS

MIN_NEIGHBOUR_DL = 12.0  # as tests/core/test_run_colors.py asks of the dark-theme cycle


def _wcag_contrast(a: str, b: str) -> float:
    """WCAG 2.x: (L1 + 0.05) / (L2 + 0.05) over sRGB relative luminance (written out here,
    independently of the app's helper)."""
    def luminance(color: str) -> float:
        c = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
        lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(lin @ [0.2126, 0.7152, 0.0722])

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _lightness(color: str) -> float:
    """CIE L* of ``#rrggbb``."""
    c = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    y = float(np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4) @ [0.2126, 0.7152, 0.0722])
    return 116 * np.cbrt(y) - 16 if y > (6 / 29) ** 3 else 903.3 * y


def test_the_formula_matches_known_wcag_values():
    assert _wcag_contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert _wcag_contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_every_default_run_colour_has_3_to_1_contrast_on_the_light_plots():
    background = _PLOT_COLORS["light"][0]
    light = [themed_run_color(c, "light") for c in RUN_COLORS]
    low = {c: round(_wcag_contrast(c, background), 2) for c in light
           if _wcag_contrast(c, background) < 3.0}
    assert not low
    assert len({c.lower() for c in light}) == len(light)  # no two runs share a colour
    lightness = [_lightness(c) for c in light]
    gaps = [abs(a - b) for a, b in zip(lightness, lightness[1:])]
    assert min(gaps) >= MIN_NEIGHBOUR_DL, [round(g, 1) for g in gaps]
    # The dark theme keeps the lab's own colours.
    assert [themed_run_color(c, "dark") for c in RUN_COLORS] == list(RUN_COLORS)


@pytest.mark.parametrize("chosen", ["#ffff00", "#eeeeee", "#88ccee"])
def test_a_pale_colour_the_user_chose_is_darkened_to_the_contrast_keeping_its_hue(chosen):
    drawn = themed_run_color(chosen, "light")
    assert _wcag_contrast(drawn, "#ffffff") >= 3.0
    if QColor(chosen).hsvSaturation() > 0:
        assert abs(QColor(drawn).hslHue() - QColor(chosen).hslHue()) <= 3


def test_the_light_theme_draws_a_finished_race_in_the_light_colours(qtbot, window, tmp_path):
    from dataclasses import replace

    from core.lab.format import load_lab

    root = Path(__file__).resolve().parents[2]
    lab = replace(load_lab(root / "resources" / "labs" / "ravine.lab.json"), steps=40)
    window.document.replace(lab, None)
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)  # Max
    with qtbot.waitSignal(window.race_finished, timeout=60_000):
        window.play()
    app = QApplication.instance()
    before = app.palette()
    try:
        window.theme_menu.actions["light"].trigger()
        assert window.history.last_step == lab.steps  # recoloured, not reset
        pens = [curve.opts["pen"].color().name() for curve in window.loss_plot.curves]
        assert len(pens) == len(lab.enabled_runs()) >= 3
        for pen in pens:
            assert _wcag_contrast(pen, "#ffffff") >= 3.0, pen
        x, _y = window.loss_plot.curves[0].getData()
        assert x is not None and len(x) == lab.steps + 1  # the race is still drawn
        window.resize(1280, 800)
        window.arena_view.grab().save(str(tmp_path / "arena-light.png"))
        window.theme_menu.actions["dark"].trigger()
        assert [c.opts["pen"].color().name() for c in window.loss_plot.curves] == \
            [lab.run_color(i) for i in window._race_indices]
    finally:
        apply_theme(app, "dark")
        app.setPalette(before)
