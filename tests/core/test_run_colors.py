"""The default run colours (core.lab.format.RUN_COLORS) can be told apart by everyone: any two of
the first seven differ clearly for normal, deuteranope, protanope and tritanope eyes, and
neighbouring runs differ in lightness too (orange beside yellow, or two mid blues, did not)."""

from __future__ import annotations

import itertools

import numpy as np

from core.lab.format import RUN_COLORS

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB.
CVD = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                        [0.0193, 0.1192, 0.9505]])
D65 = np.array([0.95047, 1.0, 1.08883])
DISTINCT_SET = 7  # Tol's set: the runs a lab usually has
MIN_DELTA_E = 10.0  # CIE76 ΔE between any two of them, in every kind of vision
MIN_NEIGHBOUR_DL = 12.0  # L* between run i and run i + 1
DARK_PLOT_L = 11.0  # L* of the dark theme's plot background #1b1d21 (app/shell/theme.py)


def _lab(hex_color: str, vision: str = "normal") -> np.ndarray:
    srgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(CVD[vision] @ linear, 0.0, 1.0)
    t = SRGB_TO_XYZ @ linear / D65
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_lab_conversion_matches_known_values():
    np.testing.assert_allclose(_lab("#ffffff"), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(_lab("#ff0000"), [53.24, 80.09, 67.20], atol=0.1)
    np.testing.assert_allclose(_lab("#1b1d21")[0], DARK_PLOT_L, atol=0.5)


def test_any_two_of_the_first_runs_differ_for_every_kind_of_vision():
    close = []
    for vision in CVD:
        for a, b in itertools.combinations(RUN_COLORS[:DISTINCT_SET], 2):
            delta = float(np.linalg.norm(_lab(a, vision) - _lab(b, vision)))
            if delta < MIN_DELTA_E:
                close.append((vision, a, b, round(delta, 1)))
    assert not close


def test_neighbouring_runs_differ_in_lightness_and_stand_out_on_the_dark_plots():
    lightness = [float(_lab(c)[0]) for c in RUN_COLORS]
    gaps = [abs(a - b) for a, b in zip(lightness, lightness[1:])]
    assert min(gaps) >= MIN_NEIGHBOUR_DL, list(zip(RUN_COLORS, [round(g, 1) for g in gaps]))
    assert min(lightness) >= DARK_PLOT_L + 30
    assert len(set(RUN_COLORS)) == len(RUN_COLORS)
