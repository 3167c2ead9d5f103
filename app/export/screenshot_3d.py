"""The 3-D arena's screenshot, ``arena-3d.png``: ``python -m app.export.screenshot_3d [OUT_DIR]``.

The 3-D tab draws with OpenGL, which Qt's offscreen platform lacks (the tab would show its
no-OpenGL message). Without a display this module runs itself again under ``xvfb-run`` on Qt's
xcb platform, where Mesa renders the surface; app/export/screenshots.py calls `take_arena_3d`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.export.play_to_end import play_to_end

ROOT = Path(__file__).resolve().parents[2]
ARENA_3D = "arena-3d.png"
LAB = ROOT / "resources" / "labs" / "banana_race.lab.json"


def take_arena_3d(out_dir: Path, size: tuple[int, int] = (1280, 800)) -> Path | None:
    """Write ``arena-3d.png`` (``arena-3d-<width>.png`` at another ``size``) into ``out_dir``;
    None (and a note on stderr) when there is no way to an OpenGL context here."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = ARENA_3D if size == (1280, 800) else f"arena-3d-{size[0]}.png"
    if os.environ.get("QT_QPA_PLATFORM", "") in ("", "offscreen") and not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            print(f"{ARENA_3D}: no display and no xvfb-run, so no OpenGL: not taken",
                  file=sys.stderr)
            return None
        env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
        screen = f"-screen 0 {max(1600, size[0])}x{max(1000, size[1])}x24"
        subprocess.run(["xvfb-run", "-a", "-s", screen, sys.executable, "-m",
                        "app.export.screenshot_3d", str(out_dir), f"{size[0]}x{size[1]}"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        return out_dir / name
    return _grab(out_dir / name, size)


def _grab(path: Path, size: tuple[int, int]) -> Path:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QWidget

    from app.shell.main_window import MainWindow
    from app.shell.theme import apply_dark_theme

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"),
                                               QSettings.Format.IniFormat))
        window._confirm_discard = lambda: True
        window.resize(*size)
        window.show()
        window.open_lab(LAB)
        window.map_tabs.setCurrentWidget(window.landscape_3d)
        play_to_end(app, window)
        for _ in range(30):  # the GL widget paints on its own frames
            app.processEvents()
            time.sleep(0.02)
        if not window.landscape_3d.available:
            raise RuntimeError(f"no OpenGL for {path.name}: {window.landscape_3d.fallback.text()}")
        for button in window.findChildren(QWidget, "plotHelpButton"):
            button.hide()  # shown where the pointer happens to be
        window.grab().save(str(path))
        window.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    width, _, height = (sys.argv[2] if len(sys.argv) > 2 else "1280x800").partition("x")
    print(take_arena_3d(target, (int(width), int(height))))
