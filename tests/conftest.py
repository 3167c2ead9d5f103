"""Shared test setup: Qt offscreen unless a real display was asked for; small helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Recovery files of test windows go to a throwaway folder, never the user's.
import tempfile  # noqa: E402

os.environ.setdefault("DESCENT_LAB_RECOVERY_DIR", tempfile.mkdtemp(prefix="descent-lab-recovery-"))
# Likewise the user data folder (core/user_data.py): sweeps of bundled examples and the like.
os.environ.setdefault("DESCENT_LAB_DATA_DIR", tempfile.mkdtemp(prefix="descent-lab-data-"))

# Offscreen by default; OpenGL tests run the suite under xvfb-run with DESCENT_LAB_DISPLAY=1.
if not os.environ.get("DESCENT_LAB_DISPLAY"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"

# As in the app and the CLI: one intra-op thread (tiny models; more threads only contend).
from core.engine.devices import configure_threads  # noqa: E402

configure_threads()
