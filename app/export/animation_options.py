"""What an animation export is asked for: `AnimationOptions` (file, frame rate, size, frames,
views), their limits and the views a lab offers, and `frame_steps` (which steps become frames).

The rendering itself is app/export/animation.py; the dialog's Animation page (app/export/pages.py)
offers these options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import LabError
from core.lab.format import Lab

FUNCTION_VIEWS = {"landscape": "Landscape", "loss": "Loss curves", "lr": "Learning rates"}
NETWORK_VIEWS = {"curves": "Training curves", "boundaries": "Decision boundaries / fits"}
MAX_FRAMES = 2000
MAX_SIDE = 3840


@dataclass(frozen=True)
class AnimationOptions:
    path: Path
    fps: int = 15
    width: int = 960
    height: int = 540
    frames: int = 60
    views: tuple[str, ...] = ("landscape", "loss")

    @property
    def format(self) -> str:
        return "mp4" if self.path.suffix.lower() == ".mp4" else "gif"

    def check(self, lab: Lab) -> None:
        """Refuse impossible options with the field and the allowed range (LabError)."""
        if self.path.suffix.lower() not in (".gif", ".mp4"):
            raise LabError("file", f"{self.path.name}: choose a .gif or .mp4 file name")
        if not 1 <= self.fps <= 60:
            raise LabError("frame rate", f"must be 1 … 60 frames per second, got {self.fps}")
        if not 2 <= self.frames <= MAX_FRAMES:
            raise LabError("frames", f"must be 2 … {MAX_FRAMES}, got {self.frames}")
        for name, value in (("width", self.width), ("height", self.height)):
            if not 64 <= value <= MAX_SIDE:
                raise LabError(name, f"must be 64 … {MAX_SIDE} pixels, got {value}")
            if self.format == "mp4" and value % 2:
                raise LabError(name, f"must be even for MP4 (H.264 needs it), got {value}")
        allowed = NETWORK_VIEWS if lab.is_network else FUNCTION_VIEWS
        if not self.views or any(v not in allowed for v in self.views):
            raise LabError("views", f"choose one or more of: {', '.join(allowed)}")
        if not lab.enabled_runs():
            raise LabError("runs", "no enabled runs: enable at least one run to animate")


def frame_steps(last_step: int, frames: int) -> list[int]:
    """``frames`` steps evenly spaced over 0 … last_step (repeats when there are fewer steps)."""
    return [int(s) for s in np.rint(np.linspace(0, max(0, last_step), frames))]
