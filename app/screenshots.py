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
        written.append(take_smoothing(out_dir, settings))
    return written


SMOOTHING_STEPS = 400  # a few hundred steps: the fast early fall and the noisy plateau


def take_smoothing(out_dir: Path, settings) -> Path:
    """``smoothing.png``: the network view's smoothing control and loss plot (the default
    smoothing over the faint raw mini-batch loss), after `SMOOTHING_STEPS` steps of the moons
    race in a 1280×800 window."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QPainter, QPixmap
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance()
    window = MainWindow(settings=settings)
    window._confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.open_lab(SHOTS["network.png"])
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    window.play()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
            window.history is None or window.history.last_step < SMOOTHING_STEPS):
        app.processEvents()
        time.sleep(0.01)
    window.pause()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    window.flush_redraw()
    for _ in range(10):
        app.processEvents()
    view = window.network_view
    plot = view.loss_plot
    # The control row up to the x-axis combo (the controls after it belong to other plots) over
    # the loss plot, on the window's background.
    combo = view.x_axis_combo
    top = combo.mapTo(view, combo.rect().topRight())
    controls = view.grab(QRect(0, max(0, top.y() - 6), top.x() + 6, combo.height() + 12))
    curves = plot.grab()
    picture = QPixmap(max(controls.width(), curves.width()), controls.height() + curves.height())
    picture.fill(view.palette().window().color())
    painter = QPainter(picture)
    painter.drawPixmap(0, 0, controls)
    painter.drawPixmap(0, controls.height(), curves)
    painter.end()
    path = out_dir / "smoothing.png"
    picture.save(str(path))
    window.close()
    return path


if __name__ == "__main__" and sys.argv[1:2] == ["--smoothing"]:
    # Only smoothing.png: python -m app.screenshots --smoothing [OUT_DIR]
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.theme import apply_dark_theme

    _app = QApplication.instance() or QApplication([])
    apply_dark_theme(_app)
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / "screenshots"
    with tempfile.TemporaryDirectory() as tmp:
        print(take_smoothing(target, QSettings(str(Path(tmp) / "s.ini"),
                                               QSettings.Format.IniFormat)))
elif __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    for p in take(target):
        print(p)
