"""Run colours as the current theme draws them: the lab's colours on the dark theme, and on the
light theme variants that keep WCAG contrast >= 3:1 against the white plot background.

The lab stores one colour per run (core/lab/format.py ``RUN_COLORS``, Paul Tol's set, chosen to
stand out on the dark plots); several of them (Tol's cyan, yellow, grey, sand) fade into white.
``LIGHT_RUN_COLORS`` is the same cycle at lightnesses that alternate between L* ~58 and ~35-45
(so neighbouring runs still differ in lightness, as on the dark theme) with each colour's hue,
except Tol's sand, which would have become a twin of the darkened yellow, and is a burnt orange
instead. A colour the user chose that is too pale is darkened (same hue and saturation) until it
reaches the contrast. The lab file never changes: only what is drawn does.
"""

from __future__ import annotations

import colorsys

from core.lab.format import RUN_COLORS

LIGHT_BACKGROUND = "#ffffff"  # the light theme's plot background (app/shell/theme.py)
MIN_CONTRAST = 3.0  # WCAG 2.x for graphical objects (1.4.11 non-text contrast)

# RUN_COLORS[i] -> its light-theme variant (same order: red, cyan, green, yellow, purple, grey,
# blue, sand → orange, teal).
LIGHT_RUN_COLORS = dict(zip(RUN_COLORS, (
    "#cd172e", "#1e94cf", "#1b6d29", "#9b8c2a", "#a74397", "#8c8c8c", "#305579", "#e96113",
    "#2e7368",
)))


def _channel(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _rgb(color: str) -> tuple[float, float, float]:
    return tuple(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))


def relative_luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    r, g, b = (_channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio (1 … 21) of two ``#rrggbb`` colours."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(v * 255):02x}" for v in rgb)


def _darkened(color: str) -> str:
    """``color`` with its HLS lightness lowered just enough to reach `MIN_CONTRAST` on white."""
    h, lightness, s = colorsys.rgb_to_hls(*_rgb(color))
    lo, hi = 0.0, lightness  # lightness 0 is black: always enough contrast
    for _ in range(30):
        mid = (lo + hi) / 2
        candidate = _hex(colorsys.hls_to_rgb(h, mid, s))
        if contrast_ratio(candidate, LIGHT_BACKGROUND) >= MIN_CONTRAST + 0.05:
            lo = mid
        else:
            hi = mid
    return _hex(colorsys.hls_to_rgb(h, lo, s))


def themed_run_color(color: str, theme: str) -> str:
    """The colour a run's ``color`` (``#rrggbb``) is drawn in under ``theme``."""
    if theme != "light":
        return color
    mapped = LIGHT_RUN_COLORS.get(color.lower())
    if mapped is not None:
        return mapped
    if contrast_ratio(color, LIGHT_BACKGROUND) >= MIN_CONTRAST:
        return color
    return _darkened(color)


def current_run_colors(colors: list[str]) -> list[str]:
    """``colors`` as the application's current theme draws them."""
    from PySide6.QtWidgets import QApplication

    from app.shell.theme import current_theme

    app = QApplication.instance()
    theme = current_theme(app) if app is not None else "dark"
    return [themed_run_color(c, theme) for c in colors]
