"""The inputs a network sees of a 2-D point, their standardization, and a plot domain.

`POINT_FEATURES` are the TensorFlow-Playground-style inputs (x, y, x², y², xy, sin x, sin y)
computed from a raw point; `inputs_from_points` builds them, `train_statistics` and
`apply_standardization` rescale the inputs with statistics of the training split only, and
`padded_domain` is the plot area around a set's points. `core.problems.datasets.build` and
`Dataset.features` (`core.problems.datasets.dataset`) both use them, so a decision-boundary grid
sees exactly the transformation the training data saw.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PlotDomain = tuple[tuple[float, float], tuple[float, float]]

# TensorFlow-Playground-style inputs computed from a point (x, y), in their canonical order.
POINT_FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "x": lambda x, y: x,
    "y": lambda x, y: y,
    "x2": lambda x, y: x * x,
    "y2": lambda x, y: y * y,
    "xy": lambda x, y: x * y,
    "sinx": lambda x, y: np.sin(x),
    "siny": lambda x, y: np.sin(y),
}
DEFAULT_FEATURES = ("x", "y")


def inputs_from_points(points: np.ndarray, keys: tuple[str, ...]) -> np.ndarray:
    """(m, 2) float32 points → float64 inputs: one column per feature key, or the points as they
    are when there are no keys (a two-column CSV)."""
    if not keys:
        return points.astype(np.float64)
    x = points[:, 0].astype(np.float64)
    y = points[:, 1].astype(np.float64)
    return np.column_stack([POINT_FEATURES[key](x, y) for key in keys])


def train_statistics(train_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train_inputs.mean(axis=0)
    std = train_inputs.std(axis=0)
    # A constant column has nothing to rescale; dividing by 0 would turn it into NaN.
    std = np.where(std > 1e-12, std, 1.0)
    return mean, std


def apply_standardization(
    inputs: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    if stats is not None:
        mean, std = stats
        inputs = (inputs - mean) / std
    return np.ascontiguousarray(inputs, dtype=np.float32)


def padded_domain(points: np.ndarray, pad_fraction: float = 0.1) -> PlotDomain:
    """The bounding box of ``points`` grown by 10 % of its size on every side."""
    if len(points) == 0:
        return ((-1.0, 1.0), (-1.0, 1.0))
    low = points.min(axis=0).astype(np.float64)
    high = points.max(axis=0).astype(np.float64)
    span = high - low
    # A set squeezed onto a line (noise 0 on a cluster) still needs a visible plot area.
    pad = np.where(span > 0, span * pad_fraction, 1.0)
    return (
        (float(low[0] - pad[0]), float(high[0] + pad[0])),
        (float(low[1] - pad[1]), float(high[1] + pad[1])),
    )
