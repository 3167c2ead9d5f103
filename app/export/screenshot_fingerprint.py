"""``fingerprint.png``: the Fingerprint window (Tools ▸ Optimizer fingerprint…) at 1280×800 after
fingerprinting heavy-ball SGD (lr 0.01, momentum 0.9) on λ = 10, from the real window:
``python -m app.export.screenshot_fingerprint [OUT_DIR]`` (default docs/screenshots; README and
docs/scorecard.md show it), or with the others by app/export/screenshots.py
(``--only fingerprint.png``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

FINGERPRINT = "fingerprint.png"
SIZE = (1280, 800)


def take_fingerprint(path: Path) -> Path:
    """Fingerprint heavy-ball SGD in a real `FingerprintWindow` and save its picture at ``path``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app.shell.theme import apply_dark_theme, configure_pyqtgraph

    app = QApplication.instance() or QApplication([])
    apply_dark_theme(app)
    configure_pyqtgraph()
    from app.shell.document import LabDocument
    from app.tools.fingerprint_window import FingerprintWindow
    from app.widgets.number_boxes import ScientificSpinBox
    from core.lab.format import default_lab

    window = FingerprintWindow(LabDocument(default_lab()))
    window.resize(*SIZE)
    window.show()
    window.choose("sgd")
    window.findChild(ScientificSpinBox, "fpParam_lr").setValue(0.01)
    window.findChild(ScientificSpinBox, "fpParam_momentum").setValue(0.9)
    done: list = []
    window.fingerprint_finished.connect(done.append)
    if not window.start():
        raise RuntimeError(f"the fingerprint did not start: {window.error_label.text()}")
    deadline = time.monotonic() + 300
    while not done and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
    path.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(path))
    window.shutdown()
    window.close()
    return path


def main(argv: list[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    out_dir = Path(argv[0]) if argv else root / "docs" / "screenshots"
    print(take_fingerprint(out_dir / FINGERPRINT))


if __name__ == "__main__":
    main(sys.argv[1:])
