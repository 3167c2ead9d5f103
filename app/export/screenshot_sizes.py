"""The window at a desktop's and a small laptop's size:
``python -m app.export.screenshot_sizes [OUT_DIR] [--sizes 1920x1080 1366x768]``.

app/export/screenshots.py takes the README's pictures at 1280×800; this module takes the same
screens at other sizes — the arena (with its legend, drawn 1:1), the network screen and presenter
mode — as ``<screen>-<width>.png`` (``arena-1920.png``, ``network-1366.png``, …), so docs/ shows
what a newcomer sees on a big monitor and that nothing is cut off on a 1366×768 laptop.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from app.export.screenshots import ROOT, SHOTS, race_and_grab

SIZES = ((1920, 1080), (1366, 768))
# screen name → (lab, presenter mode on)
SCREENS = {
    "arena": (SHOTS["arena.png"], False),
    "network": (SHOTS["network.png"], False),
    "presenter": (SHOTS["arena.png"], True),
}


def take_sizes(out_dir: Path, sizes=SIZES, screens=tuple(SCREENS)) -> list[Path]:
    """Write ``<screen>-<width>.png`` for every screen and size into ``out_dir``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        for width, height in sizes:
            for screen in screens:
                lab, presenting = SCREENS[screen]
                window = MainWindow(settings=settings)
                window._confirm_discard = lambda: True
                window.resize(width, height)
                window.show()
                window.open_lab(lab)
                if presenting:
                    window.presenter.presenter_action.setChecked(True)
                    # Presenter mode goes full screen; the offscreen platform's screen is
                    # 800×800, so show it as it would fill a screen of this size.
                    window.showNormal()
                    window.resize(width, height)
                path = out_dir / f"{screen}-{width}.png"
                written.append(race_and_grab(app, window, path))
    return written


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m app.export.screenshot_sizes",
                                     description=__doc__)
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--sizes", nargs="+", type=_size, default=list(SIZES),
                        metavar="WxH", help="window sizes (default: 1920x1080 1366x768)")
    parser.add_argument("--screens", nargs="+", choices=list(SCREENS), default=list(SCREENS))
    args = parser.parse_args(argv)
    for path in take_sizes(args.out_dir, args.sizes, args.screens):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
