"""Play the window's open lab to its end at full speed: what every screenshot of a finished race
does first (app/export/screenshots.py, app/export/screenshot_3d.py)."""

from __future__ import annotations

import time


def play_to_end(app, window, timeout_s: float = 300) -> None:
    """Set the fastest speed, play, and process events until the race finishes (or
    ``timeout_s`` passes), then draw every pending view."""
    window.speed_combo.setCurrentIndex(window.speed_combo.count() - 1)
    done: list[bool] = []
    window.race_finished.connect(done.append)
    window.play()
    deadline = time.monotonic() + timeout_s
    while not done and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    window.flush_redraw()
