"""The built-in data sets drawn from a seeded generator: (cleaned spec, rng) → (raw samples, targets).

The 2-D toy sets and the regression sets are drawn with the ``numpy.random.Generator`` made from
the data seed; the 8×8 handwritten digits come from scikit-learn, which ships them inside its wheel
(``sklearn.datasets.load_digits`` reads a local file). Samples are float64 and in label order:
classification labels are ``0, 1, …, k-1, 0, 1, …`` so every class has ``n // k`` or
``n // k + 1`` samples (`core.problems.datasets.build` shuffles and splits them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import numpy as np

from core.problems.datasets.matrices import MATRIX_GENERATORS
from core.problems.datasets.sequences import SEQUENCE_GENERATORS

# Known plane coefficients, so a lesson can compare them with the trained weights.
LINEAR_SLOPE, LINEAR_INTERCEPT = 2.0, 1.0
PLANE_COEFFICIENTS = (1.5, -2.0)
BLOB_RADIUS = 2.5
SPIRAL_TURNS = 1.5


def _balanced_labels(n: int, k: int) -> np.ndarray:
    return np.arange(n) % k


def _moons(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    labels = _balanced_labels(n, 2)
    angle = rng.uniform(0.0, np.pi, n)
    upper = np.column_stack([np.cos(angle), np.sin(angle)])
    lower = np.column_stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)])
    points = np.where(labels[:, None] == 0, upper, lower)
    return points + spec["noise"] * rng.standard_normal((n, 2)), labels


def _circles(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    labels = _balanced_labels(n, 2)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    radius = np.where(labels == 0, 1.0, 0.5)
    points = radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return points + spec["noise"] * rng.standard_normal((n, 2)), labels


def _blobs(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, k = spec["n"], spec["classes"]
    labels = _balanced_labels(n, k)
    # Fixed centres (not random ones) so every seed shows the same, well separated picture.
    centre_angle = np.pi / 2 + 2.0 * np.pi * np.arange(k) / k
    centres = BLOB_RADIUS * np.column_stack([np.cos(centre_angle), np.sin(centre_angle)])
    return centres[labels] + spec["noise"] * rng.standard_normal((n, 2)), labels


def _xor(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    points = rng.uniform(-1.0, 1.0, (n, 2))
    # The label comes from the clean point, so noise makes the classes overlap near the axes.
    labels = (points[:, 0] * points[:, 1] < 0).astype(np.int64)
    return points + spec["noise"] * rng.standard_normal((n, 2)), labels


def _spirals(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, k = spec["n"], spec["classes"]
    labels = _balanced_labels(n, k)
    t = rng.uniform(0.0, 1.0, n)  # position along the arm: 0 at the centre, 1 at the rim
    angle = 2.0 * np.pi * labels / k + 2.0 * np.pi * SPIRAL_TURNS * t
    points = t[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])
    return points + spec["noise"] * rng.standard_normal((n, 2)), labels


def _gaussian(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    labels = _balanced_labels(n, 2)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0]])
    return centres[labels] + spec["noise"] * rng.standard_normal((n, 2)), labels


def _linear(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    x = rng.uniform(-1.0, 1.0, (n, 1))
    y = LINEAR_SLOPE * x + LINEAR_INTERCEPT + spec["noise"] * rng.standard_normal((n, 1))
    return x, y


def _sine(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    x = rng.uniform(-np.pi, np.pi, (n, 1))
    return x, np.sin(x) + spec["noise"] * rng.standard_normal((n, 1))


def _plane(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = spec["n"]
    points = rng.uniform(-1.0, 1.0, (n, 2))
    a, b = PLANE_COEFFICIENTS
    y = a * points[:, :1] + b * points[:, 1:] + spec["noise"] * rng.standard_normal((n, 1))
    return points, y


@functools.lru_cache(maxsize=1)
def _digits_pixels() -> tuple[np.ndarray, np.ndarray]:
    # Imported here: scikit-learn takes a second to import and only this set needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / 16.0  # pixel counts 0..16 → [0, 1]
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)  # shared by every call through the cache
    labels.setflags(write=False)
    return images, labels


def _digits(spec: Mapping, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _digits_pixels()
    n = spec["n"]
    chosen = np.sort(rng.permutation(len(labels))[:n])  # all of them when n is 1797
    pixels = images[chosen][:, None, :, :]  # (n, 1, 8, 8): one grey channel
    noisy = np.clip(pixels + spec["noise"] * rng.standard_normal(pixels.shape), 0.0, 1.0)
    return noisy, labels[chosen].copy()


GENERATORS: dict[str, Callable[[Mapping, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "moons": _moons,
    "circles": _circles,
    "blobs": _blobs,
    "xor": _xor,
    "spirals": _spirals,
    "gaussian": _gaussian,
    "linear": _linear,
    "sine": _sine,
    "plane": _plane,
    "digits": _digits,
    **SEQUENCE_GENERATORS,  # (n, length, features) sequences: core/problems/datasets/sequences.py
    **MATRIX_GENERATORS,  # A, B = A W* (+ noise): core/problems/datasets/matrices.py
}
