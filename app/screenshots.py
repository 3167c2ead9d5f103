"""Take the README's screenshots from the real window: ``python -m app.screenshots [OUT_DIR]``.

Runs each example race to the end in a real `MainWindow` (offscreen unless a display is set) and
saves ``widget.grab()`` as PNG, so the pictures in docs/ always show what the app really draws.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = {
    "arena.png": ROOT / "resources" / "labs" / "banana_race.lab.json",
    "ravine.png": ROOT / "resources" / "labs" / "ravine.lab.json",
    "network.png": ROOT / "resources" / "labs" / "moons_race.lab.json",
}


def take(out_dir: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.theme import apply_dark_theme

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        for name, lab in SHOTS.items():
            window = MainWindow(settings=settings)
            window._confirm_discard = lambda: True
            window.resize(1280, 800)
            window.show()
            window.open_lab(lab)
            window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
            done: list[bool] = []
            window.race_finished.connect(done.append)
            window.play()
            deadline = time.monotonic() + 120
            while not done and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.01)
            window.flush_redraw()
            for _ in range(10):
                app.processEvents()
            path = out_dir / name
            window.grab().save(str(path))
            written.append(path)
            window.close()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for p in take(target):
        print(p)
