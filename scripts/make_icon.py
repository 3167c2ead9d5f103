"""Draw the app icon: resources/icons/descent-lab.svg and its PNG sizes (16 … 256 px).

A contour map of an elongated bowl (the kind of valley the app races optimizers in) with a path
zig-zagging down to its minimum. The SVG is written as text; the PNGs are rendered from it with
QtSvg, so every size is the same drawing. Run from the repository root after changing it:

    .venv/bin/python scripts/make_icon.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
NAME = "descent-lab"
SIZES = (16, 32, 48, 64, 128, 256)

# Inner (low loss) to outer (high loss): a viridis ramp, readable on the dark tile.
CONTOUR_COLOURS = ("#fde725", "#7ad151", "#22a884", "#2a788e", "#414487")
CENTRE = (166.0, 164.0)
ANGLE = -32.0  # the valley runs from lower left to upper right
# The path of a momentum run: overshooting across the valley, settling at the minimum.
PATH = ((40.0, 58.0), (104.0, 66.0), (96.0, 118.0), (140.0, 124.0), (136.0, 150.0), CENTRE)


def svg_text() -> str:
    cx, cy = CENTRE
    ellipses = []
    for i, colour in reversed(list(enumerate(CONTOUR_COLOURS))):
        rx, ry = 26 + 34 * i, 12 + 15 * i
        ellipses.append(
            f'<ellipse cx="{cx}" cy="{cy}" rx="{rx}" ry="{ry}" fill="none" stroke="{colour}" '
            f'stroke-width="9" transform="rotate({ANGLE} {cx} {cy})"/>')
    points = " ".join(f"{x:g},{y:g}" for x, y in PATH)
    dots = "".join(f'<circle cx="{x:g}" cy="{y:g}" r="9" fill="#ff8c42"/>' for x, y in PATH[:-1])
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
<defs>
<linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
<stop offset="0" stop-color="#22324a"/><stop offset="1" stop-color="#101826"/>
</linearGradient>
<clipPath id="tile"><rect x="8" y="8" width="240" height="240" rx="48"/></clipPath>
</defs>
<rect x="8" y="8" width="240" height="240" rx="48" fill="url(#bg)"/>
<g clip-path="url(#tile)">
{chr(10).join(ellipses)}
</g>
<polyline points="{points}" fill="none" stroke="#ff8c42" stroke-width="12"
 stroke-linejoin="round" stroke-linecap="round"/>
{dots}
<circle cx="{cx:g}" cy="{cy:g}" r="17" fill="#ffffff"/>
<circle cx="{cx:g}" cy="{cy:g}" r="10" fill="#e4572e"/>
</svg>
"""


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - fonts, painter
    ICONS.mkdir(parents=True, exist_ok=True)
    text = svg_text()
    (ICONS / f"{NAME}.svg").write_text(text, encoding="utf-8")
    renderer = QSvgRenderer(QByteArray(text.encode()))
    if not renderer.isValid():
        raise SystemExit("the icon's SVG does not parse")
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(ICONS / f"{NAME}-{size}.png"))
    print(f"wrote {ICONS}/{NAME}.svg and {len(SIZES)} PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
