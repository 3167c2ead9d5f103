"""The `Dataset` type: a data set split into training and validation arrays, ready to become tensors.

Built by `core.problems.datasets.build.make_dataset`; its `Dataset.features` maps new samples (a
decision-boundary grid) to model inputs exactly as the training data was built
(`core.problems.datasets.features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.problems.datasets.features import PlotDomain, apply_standardization, inputs_from_points


# eq=False: comparing two data sets field by field would compare arrays, whose truth value numpy
# refuses; identity is the only equality that makes sense for a bag of arrays.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split into training and validation arrays, ready to become tensors.

    ``x_*`` are float32 of shape (n, *input_shape). ``y_*`` are int64 class indices (n,) for
    classification and float32 (n, 1) for regression. For 2-D sets (the generated ones, ``plane``
    regression and two-column CSVs) ``points_*`` are the raw points (float32, (n, 2)) before
    extra features and standardization, and ``plane`` is a padded plot domain
    ``((xmin, xmax), (ymin, ymax))`` around all of them; otherwise the three are ``None``.
    """

    name: str
    task: str  # "classification" | "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int  # 0 for regression
    input_shape: tuple[int, ...]  # (d,) for tabular and point sets, (1, 8, 8) for digits
    feature_names: tuple[str, ...]
    points_train: np.ndarray | None
    points_val: np.ndarray | None
    plane: PlotDomain | None
    # (mean, std), float64 arrays of shape input_shape, computed on the training split; or None.
    standardize: tuple[np.ndarray, np.ndarray] | None
    # One name per class, index = class (empty for regression): "0".."9" for digits, the label
    # spellings of a CSV, the class numbers as text for the generated sets.
    class_names: tuple[str, ...] = ()
    # The POINT_FEATURES keys that turn a raw point into the inputs; () when the inputs are the
    # points themselves (a two-column CSV) or the set is not 2-D.
    point_features: tuple[str, ...] = ()

    @property
    def n_outputs(self) -> int:
        """Width of the network's last layer: one logit per class, or the target's dimension."""
        if self.task == "classification":
            return self.n_classes
        return int(self.y_train.shape[1])

    @property
    def is_2d(self) -> bool:
        """Whether samples are points of a plane (decision boundaries can be drawn)."""
        return self.points_train is not None

    def features(self, points: np.ndarray) -> np.ndarray:
        """Map raw samples to model inputs exactly as the training data was built.

        For a 2-D set ``points`` is (m, 2) plane points (a decision-boundary grid): the extra
        features are computed, then the standardization is applied. For other sets ``points`` has
        shape (m, *input_shape) and only the standardization applies. Returns float32 (m, …);
        ``features(points_train)`` equals ``x_train`` bit for bit.
        """
        raw = np.asarray(points, dtype=np.float32)
        if self.is_2d:
            if raw.ndim != 2 or raw.shape[1] != 2:
                raise ValueError(
                    f"features() of {self.name!r} needs (m, 2) points, got {raw.shape}"
                )
            inputs = inputs_from_points(raw, self.point_features)
        else:
            if raw.shape[1:] != self.input_shape:
                expected = ", ".join(map(str, self.input_shape))
                raise ValueError(
                    f"features() of {self.name!r} needs (m, {expected}) samples, got {raw.shape}"
                )
            inputs = raw.astype(np.float64)
        return apply_standardization(inputs, self.standardize)
