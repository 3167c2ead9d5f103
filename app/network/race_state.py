"""`ShownRace`: what every tab of the network view reads, held once by `NetworkView`.

The runs (labels, colours), the data set, the lab's step count, the `NetworkHistory` being shown
and the run selected for the one-run views (per-layer statistics, confusion matrix); and what
follows from them (the score metric, whether the boundaries tab fits curves, a run's last own
step). The numbers themselves live in the history (core/engine/history.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.engine.history import NetworkHistory
from core.problems.datasets.dataset import Dataset


@dataclass
class ShownRace:
    labels: list[str] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    dataset: Dataset | None = None
    total_steps: int | None = None  # the lab's ``steps``: "finished" once the history gets there
    history: NetworkHistory | None = None
    selected_run: int = 0

    @property
    def regression(self) -> bool:
        return self.dataset is not None and self.dataset.task == "regression"

    @property
    def classification(self) -> bool:
        return self.dataset is not None and self.dataset.task == "classification"

    @property
    def metric(self) -> str:
        """The score next to the loss: "r2" (regression) or "accuracy"."""
        return "r2" if self.regression else "accuracy"

    @property
    def fits_curves(self) -> bool:
        """1-D regression: fitted curves instead of decision boundaries."""
        data = self.dataset
        return self.regression and data.plane is None and data.input_shape == (1,)

    def last_valid_step(self, run: int) -> float:
        """The last step at which run's numbers are its own: before divergence, at an early stop."""
        history = self.history
        if history is None:
            return math.inf
        # The evaluation at the divergence step still shows the run's own (exploded) model; a
        # non-finite snapshot is skipped where it is drawn.
        if run in history.divergences:
            return history.divergences[run].step
        if run in history.stops:
            return history.stops[run].step
        return math.inf
