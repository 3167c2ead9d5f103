"""Data sets for network problems: seeded, generated with numpy or shipped inside a package.

Nothing is downloaded at run time. The 2-D toy sets and the regression sets are drawn here with a
``numpy.random.Generator`` made from the data seed; the 8×8 handwritten digits come from
scikit-learn, which ships them inside its wheel (``sklearn.datasets.load_digits`` reads a local
file); a CSV file is read from disk next to the lab file.

A lab file describes a data set in ``problem.dataset``::

    {"name": "moons", "n": 512, "noise": 0.2, "val_fraction": 0.2,
     "features": ["x", "y", "xy"], "standardize": true}

Keys
----
``name``          required; one of :data:`DATASETS`.
``n``             number of samples, a whole number in [8, 100000] (default 512). ``digits`` has at
                  most 1797 and uses all of them by default; a smaller ``n`` takes a seeded subset.
``noise``         in [0, 5]; what it means and its default depend on the set (see each
                  `DatasetInfo`): the spread of the points for the 2-D sets, the noise added to the
                  target for regression, the noise added to each pixel for digits. The random
                  draws do not depend on the value, so with one seed, more noise moves the same
                  points further.
``val_fraction``  in [0, 0.9] (default 0.2): the share held out for validation. 0 gives an empty
                  validation set.
``seed``          optional whole number in [0, 4294967295]: the data seed. Absent (or ``null``)
                  means the lab's own ``seed``.
``features``      2-D sets only: the network's inputs built from each point (x, y), as in
                  TensorFlow Playground: any of ``x, y, x2, y2, xy, sinx, siny`` (default
                  ``["x", "y"]``), in the order given.
``standardize``   true or false (default false, for every set, so nothing is rescaled behind the
                  user's back): subtract the mean and divide by the standard deviation of each
                  input, with both computed on the *training* split only (a column that is
                  constant in training is left unscaled rather than divided by zero).
``classes``       ``blobs``: the number of clusters; ``spirals``: the number of arms; in [2, 10].
``path``          ``csv`` only, required: the file, relative to the lab file's directory.
``label``         ``csv`` only, required: the name of the target column.
``task``          ``csv`` only: ``"classification"`` (default) or ``"regression"``.

Unknown keys are refused (a typo such as ``"noice"`` would otherwise run a different experiment
than the user wrote), as is a key that does not apply to the named set.

How a data set is built
-----------------------
1. Draw (or read) all samples, in a fixed, label-ordered layout: classification labels are
   ``0, 1, …, k-1, 0, 1, …`` so every class has ``n // k`` or ``n // k + 1`` samples.
2. Shuffle with the same generator, then the first ``n - round(n · val_fraction)`` samples are the
   training split, the rest the validation split. The draws of step 1 and the shuffle do not
   depend on ``val_fraction``, so changing it only moves the boundary between the splits.
3. For the 2-D sets, the raw points are rounded to float32 once (kept as ``points_train`` /
   ``points_val`` for plotting) and the model inputs are computed from them by
   `Dataset.features`; the same function maps a decision-boundary grid, so the grid sees exactly
   the transformation the training data saw.

Labels are int64 class indices (binary sets too: a network ends in 2 logits and uses cross
entropy, so ``n_outputs`` is 2); regression targets are float32 columns of shape (n, 1).

CSV files
---------
UTF-8 (with or without a byte-order mark), comma separated, a header row of column names, one
sample per row. Every column but the label must be numeric. Classification labels may be text or
numbers; the distinct labels, sorted (numerically when they all are numbers), become the classes
0..k-1 and their spellings `Dataset.class_names`. Empty lines are skipped; an empty cell or
``NA``, ``N/A``, ``NaN``, ``null`` is a missing value and is refused with its row and column
(rows are counted as a spreadsheet shows them: the header is row 1). A CSV with exactly two
feature columns is also a 2-D set: it gets ``points_*`` and a ``plane`` for decision boundaries.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LabError
from core.optim.hyperparams import HyperParam, show_value

__all__ = [
    "DATASETS",
    "DEFAULT_FEATURES",
    "POINT_FEATURES",
    "CsvTable",
    "Dataset",
    "DatasetInfo",
    "load_csv",
    "make_dataset",
    "validate_dataset_spec",
]

MIN_SAMPLES = 8
MAX_SAMPLES = 100_000
DEFAULT_SAMPLES = 512
MAX_NOISE = 5.0
MAX_VAL_FRACTION = 0.9
MIN_CLASSES = 2
MAX_CLASSES = 10
MAX_SEED = 2**32 - 1  # the lab's own seed has the same range
DIGITS_SAMPLES = 1797

MIN_CSV_ROWS = 4
MAX_CSV_ROWS = 100_000
MAX_CSV_COLUMNS = 1000
# More distinct labels than this is almost always a numeric target read as classification.
MAX_CSV_CLASSES = 100
# Reading is all in memory; 100k rows of 1000 short numbers stay well below this.
MAX_CSV_BYTES = 512 * 1024 * 1024
# Spellings of "no value" that spreadsheets, R and pandas write (compared lower-case).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null"})

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


# --------------------------------------------------------------------------------------------
# What a data set is
# --------------------------------------------------------------------------------------------


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
            inputs = _inputs_from_points(raw, self.point_features)
        else:
            if raw.shape[1:] != self.input_shape:
                expected = ", ".join(map(str, self.input_shape))
                raise ValueError(
                    f"features() of {self.name!r} needs (m, {expected}) samples, got {raw.shape}"
                )
            inputs = raw.astype(np.float64)
        return _apply_standardization(inputs, self.standardize)


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what the GUI shows and which spec keys the set takes.

    ``task`` is ``"classification"``, ``"regression"``, or ``"any"`` for ``csv`` (its ``task`` key
    decides). ``params`` are the numeric/boolean/choice keys with their defaults and ranges;
    ``two_d`` sets also take ``features``; ``csv`` also takes the text keys ``path`` and ``label``.
    """

    name: str
    title: str
    task: str
    params: tuple[HyperParam, ...]
    description: str
    two_d: bool = False


def _n_param(default: int = DEFAULT_SAMPLES, high: int = MAX_SAMPLES) -> HyperParam:
    return HyperParam(
        "n", default, "int", low=MIN_SAMPLES, high=high,
        tooltip="Number of samples, before the split into training and validation.",
    )


def _noise_param(default: float, tooltip: str) -> HyperParam:
    return HyperParam("noise", default, "float", low=0.0, high=MAX_NOISE, tooltip=tooltip)


def _classes_param(default: int, tooltip: str) -> HyperParam:
    return HyperParam("classes", default, "int", low=MIN_CLASSES, high=MAX_CLASSES, tooltip=tooltip)


_VAL_FRACTION = HyperParam(
    "val_fraction", 0.2, "float", low=0.0, high=MAX_VAL_FRACTION,
    tooltip="Share of the samples held out for validation (0: no validation set).",
)
_SEED = HyperParam(
    "seed", None, "int", low=0, high=MAX_SEED, derived="the lab's seed",
    tooltip="Seed of the data (points, noise, shuffle); empty: the lab's seed.",
)
_STANDARDIZE = HyperParam(
    "standardize", False, "bool",
    tooltip="Rescale each input to mean 0 and standard deviation 1, using training statistics.",
)
_TASK = HyperParam(
    "task", "classification", "choice", choices=("classification", "regression"),
    tooltip="Whether the label column holds classes or a number to predict.",
)
_POINT_NOISE = "Standard deviation of the Gaussian noise added to each point."
_COMMON = (_VAL_FRACTION, _SEED, _STANDARDIZE)


def _info(name, title, task, params, description, two_d=False) -> DatasetInfo:
    return DatasetInfo(name, title, task, tuple(params) + _COMMON, description, two_d)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _info("moons", "Two moons", "classification",
              (_n_param(), _noise_param(0.1, _POINT_NOISE)),
              "Two interleaving half circles: a line cannot separate them, a small network can.",
              two_d=True),
        _info("circles", "Circles", "classification",
              (_n_param(), _noise_param(0.05, _POINT_NOISE)),
              "A ring (class 0, radius 1) around a disc edge (class 1, radius 0.5). "
              "Try the x2 and y2 features: with them a single layer suffices.",
              two_d=True),
        _info("blobs", "Blobs", "classification",
              (_n_param(), _noise_param(0.5, "Standard deviation of each cluster."),
               _classes_param(3, "Number of clusters (one class each).")),
              "k round clusters with centres evenly spaced on a circle of radius 2.5.",
              two_d=True),
        _info("xor", "XOR", "classification",
              (_n_param(), _noise_param(0.05, "Standard deviation of the noise added to each "
                                              "point after its label is decided.")),
              "Points in the square [-1, 1]²; class 1 where x and y have opposite signs. "
              "The xy feature makes it linear.",
              two_d=True),
        _info("spirals", "Spirals", "classification",
              (_n_param(), _noise_param(0.05, _POINT_NOISE),
               _classes_param(2, "Number of spiral arms (one class each).")),
              "k interleaved arms, each 1.5 turns from the centre out to radius 1: hard for "
              "small networks, a classic test of depth and of the optimizer.",
              two_d=True),
        _info("gaussian", "Two Gaussians", "classification",
              (_n_param(), _noise_param(0.5, "Standard deviation of each cluster.")),
              "Two Gaussian clusters centred at (1, 1) (class 0) and (-1, -1) (class 1): "
              "nearly linearly separable, the easiest start.",
              two_d=True),
        _info("linear", "Line", "regression",
              (_n_param(), _noise_param(0.1, "Standard deviation of the noise added to y.")),
              "y = 2x + 1 + noise for x uniform in [-1, 1]: one input, one output; a single "
              "linear layer recovers slope 2 and intercept 1."),
        _info("sine", "Sine", "regression",
              (_n_param(), _noise_param(0.1, "Standard deviation of the noise added to y.")),
              "y = sin(x) + noise for x uniform in [-π, π]: a curve a network must bend to."),
        _info("plane", "Plane", "regression",
              (_n_param(), _noise_param(0.1, "Standard deviation of the noise added to y.")),
              "y = 1.5·x − 2·y + noise for points uniform in [-1, 1]²: two inputs, one output.",
              two_d=True),
        _info("digits", "Digits (8×8)", "classification",
              (_n_param(DIGITS_SAMPLES, DIGITS_SAMPLES),
               _noise_param(0.0, "Standard deviation of the noise added to each pixel "
                                 "(values are clipped back to [0, 1]).")),
              "1,797 handwritten digits as 8×8 grey images (pixel values in [0, 1]), 10 classes; "
              "shipped with scikit-learn (the UCI optical-digits test set)."),
        _info("csv", "CSV file", "any", (_TASK,),
              "Your own table: a header row, numeric feature columns and a label column, "
              "read from a file next to the lab file."),
    )
}

# Known plane coefficients, so a lesson can compare them with the trained weights.
LINEAR_SLOPE, LINEAR_INTERCEPT = 2.0, 1.0
PLANE_COEFFICIENTS = (1.5, -2.0)
BLOB_RADIUS = 2.5
SPIRAL_TURNS = 1.5


# --------------------------------------------------------------------------------------------
# Checking a spec
# --------------------------------------------------------------------------------------------


def validate_dataset_spec(spec: Mapping, field: str = "problem.dataset") -> dict:
    """Check a ``problem.dataset`` entry; return a cleaned copy with every default filled in.

    Raises `LabError` naming the key (``problem.dataset.noise``) and what is allowed. ``seed`` is
    ``None`` in the result when the spec leaves it to the lab.
    """
    if not isinstance(spec, Mapping):
        raise LabError(
            field, f'must be an object such as {{"name": "moons"}}, got {show_value(spec)}'
        )
    names = ", ".join(DATASETS)
    if "name" not in spec:
        raise LabError(f"{field}.name", f"is missing; one of: {names}")
    name = spec["name"]
    info = DATASETS.get(name) if isinstance(name, str) else None
    if info is None:
        raise LabError(f"{field}.name", f"must be one of: {names}; got {show_value(name)}")

    allowed = ["name", *(p.name for p in info.params)]
    if info.two_d:
        allowed.append("features")
    if name == "csv":
        allowed += ["path", "label"]
    for key in spec:
        if key not in allowed:
            raise LabError(
                f"{field}.{key}",
                f"unknown key for the {name!r} data set; "
                f"allowed keys: {', '.join(sorted(allowed))}",
            )

    cleaned: dict[str, Any] = {"name": name}
    for param in info.params:
        if param.name in spec:
            cleaned[param.name] = param.validate(spec[param.name], f"{field}.{param.name}")
        else:
            cleaned[param.name] = param.default
    if info.two_d:
        cleaned["features"] = _check_features(spec.get("features", list(DEFAULT_FEATURES)),
                                              f"{field}.features")
    if name == "csv":
        for key in ("path", "label"):
            if key not in spec:
                raise LabError(
                    f"{field}.{key}", "is missing (csv needs a file path and a label column)"
                )
            value = spec[key]
            if not isinstance(value, str) or not value.strip():
                raise LabError(
                    f"{field}.{key}", f"must be a non-empty text, got {show_value(value)}"
                )
            cleaned[key] = value
    if "classes" in cleaned:
        # Fewer than two samples of a class cannot even fill both splits.
        needed = 2 * cleaned["classes"]
        if cleaned["n"] < needed:
            raise LabError(
                f"{field}.n",
                f"must be at least {needed} for {cleaned['classes']} classes (2 per class), "
                f"got {cleaned['n']}",
            )
    return cleaned


def _check_features(value: Any, field: str) -> list[str]:
    allowed = ", ".join(POINT_FEATURES)
    if not isinstance(value, (list, tuple)) or not value:
        raise LabError(field, f"must be a non-empty list of: {allowed}; got {show_value(value)}")
    seen: list[str] = []
    for i, key in enumerate(value):
        if not isinstance(key, str) or key not in POINT_FEATURES:
            raise LabError(f"{field}[{i}]", f"must be one of: {allowed}; got {show_value(key)}")
        if key in seen:
            raise LabError(f"{field}[{i}]", f"{key!r} is listed twice")
        seen.append(key)
    return seen


# --------------------------------------------------------------------------------------------
# Building a data set
# --------------------------------------------------------------------------------------------


def make_dataset(
    spec: Mapping, seed: int, field: str = "problem.dataset", base_dir: Path | None = None
) -> Dataset:
    """Build the data set a ``problem.dataset`` spec describes.

    ``seed`` is the lab's seed, used when the spec has no ``seed`` of its own. ``base_dir`` is the
    lab file's directory, against which a CSV ``path`` is resolved (the working directory when
    None). Same spec and seed → identical arrays. Raises `LabError` for a wrong spec or CSV.
    """
    spec = validate_dataset_spec(spec, field)
    data_seed = spec["seed"] if spec["seed"] is not None else seed
    rng = np.random.default_rng(data_seed)
    name = spec["name"]

    point_features: tuple[str, ...] = ()
    if name == "csv":
        table = load_csv(_resolve(spec["path"], base_dir), spec["label"], spec["task"], field)
        task, raw, target = table.task, table.x, table.y
        n_classes, class_names = len(table.class_names), table.class_names
        two_d = raw.shape[1] == 2
        feature_names = table.feature_names
    else:
        info = DATASETS[name]
        raw, target = _GENERATORS[name](spec, rng)
        task, two_d = info.task, info.two_d
        if task == "classification":
            n_classes = 10 if name == "digits" else spec.get("classes", 2)
            class_names = tuple(str(k) for k in range(n_classes))
        else:
            n_classes, class_names = 0, ()
        if two_d:
            point_features = tuple(spec["features"])
            feature_names = point_features
        elif name == "digits":
            feature_names = tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8))
        else:
            feature_names = ("x",)

    order = rng.permutation(len(target))
    raw, target = raw[order], target[order]
    n_train = len(target) - _validation_size(len(target), spec["val_fraction"])

    # Round once, so the plotted points and the inputs built from them agree exactly.
    raw = raw.astype(np.float32)
    inputs = _inputs_from_points(raw, point_features) if two_d else raw.astype(np.float64)
    stats = _train_statistics(inputs[:n_train]) if spec["standardize"] else None
    x = _apply_standardization(inputs, stats)
    if task == "classification":
        y = target.astype(np.int64)
    else:
        y = target.astype(np.float32).reshape(len(target), -1)

    return Dataset(
        name=name,
        task=task,
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train:],
        y_val=y[n_train:],
        n_classes=n_classes,
        input_shape=tuple(int(s) for s in x.shape[1:]),
        feature_names=tuple(feature_names),
        points_train=raw[:n_train] if two_d else None,
        points_val=raw[n_train:] if two_d else None,
        plane=_padded_domain(raw) if two_d else None,
        standardize=stats,
        class_names=class_names,
        point_features=point_features,
    )


def _resolve(path: str, base_dir: Path | None) -> Path:
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    return (Path(base_dir) if base_dir is not None else Path.cwd()) / candidate


def _validation_size(n: int, val_fraction: float) -> int:
    # At most n - 1, so training always has a sample (n >= 8 and val_fraction <= 0.9 ensure it
    # anyway; this guards a table that is shorter than the limits assume).
    return min(int(round(n * val_fraction)), n - 1)


def _inputs_from_points(points: np.ndarray, keys: tuple[str, ...]) -> np.ndarray:
    """(m, 2) float32 points → float64 inputs: one column per feature key, or the points as they
    are when there are no keys (a two-column CSV)."""
    if not keys:
        return points.astype(np.float64)
    x = points[:, 0].astype(np.float64)
    y = points[:, 1].astype(np.float64)
    return np.column_stack([POINT_FEATURES[key](x, y) for key in keys])


def _train_statistics(train_inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train_inputs.mean(axis=0)
    std = train_inputs.std(axis=0)
    # A constant column has nothing to rescale; dividing by 0 would turn it into NaN.
    std = np.where(std > 1e-12, std, 1.0)
    return mean, std


def _apply_standardization(
    inputs: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    if stats is not None:
        mean, std = stats
        inputs = (inputs - mean) / std
    return np.ascontiguousarray(inputs, dtype=np.float32)


def _padded_domain(points: np.ndarray, pad_fraction: float = 0.1) -> PlotDomain:
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


# --------------------------------------------------------------------------------------------
# Generators: (cleaned spec, rng) → (raw samples float64, targets), in label order
# --------------------------------------------------------------------------------------------


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


_GENERATORS: dict[str, Callable[[Mapping, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
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
}


# --------------------------------------------------------------------------------------------
# CSV import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A checked CSV file: float64 features (n, d), targets, and the names that go with them.

    ``y`` is int64 class indices for classification (``class_names[i]`` is the spelling of class
    ``i``) and float64 (n,) for regression (``class_names`` empty). Rows are in file order.
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    task: str


def load_csv(path: Path | str, label: str, task: str = "classification",
             field: str = "problem.dataset") -> CsvTable:
    """Read and check a CSV data file (format in the module docstring), or raise `LabError`.

    Problems with the file and its cells are reported on ``<field>.path``, with the file name,
    the row (the header is row 1) and the column; problems with the label column on
    ``<field>.label``.
    """
    path = Path(path)
    path_field, label_field = f"{field}.path", f"{field}.label"
    if task not in ("classification", "regression"):
        raise LabError(f"{field}.task", f"must be 'classification' or 'regression', got {task!r}")
    text = _read_utf8(path, path_field)
    reader = csv.reader(io.StringIO(text, newline=""))
    records = _numbered_records(reader, path, path_field)

    header_row, header = next(records, (0, None))
    if header is None:
        raise LabError(path_field, f"{path.name} is empty; it needs a header row of column names")
    columns = _check_header(header, header_row, path, path_field)
    if label not in columns:
        hint = _separator_hint(columns)
        raise LabError(
            label_field,
            f"{path.name} has no column {label!r}; its columns are: "
            f"{', '.join(repr(c) for c in columns)}{hint}",
        )
    label_index = columns.index(label)
    feature_indices = [j for j in range(len(columns)) if j != label_index]
    if not feature_indices:
        raise LabError(
            path_field, f"{path.name} has only the label column; it needs feature columns"
        )

    rows: list[list[float]] = []
    labels: list[str] = []  # classification: the spellings
    targets: list[float] = []  # regression: the numbers
    for row_number, record in records:
        if len(rows) == MAX_CSV_ROWS:
            raise LabError(path_field, f"{path.name} has more than {MAX_CSV_ROWS} data rows")
        if len(record) != len(columns):
            raise LabError(
                path_field,
                f"{path.name}: row {row_number} has {len(record)} cells but the header has "
                f"{len(columns)} columns",
            )
        rows.append([
            _number(record[j], row_number, columns[j], path, path_field) for j in feature_indices
        ])
        cell = record[label_index]
        if task == "regression":
            targets.append(_number(cell, row_number, label, path, path_field))
            continue
        if cell.strip().lower() in MISSING_MARKERS:
            raise LabError(
                path_field, f"{path.name}: row {row_number}, column {label!r}: missing label"
            )
        labels.append(cell.strip())
    if len(rows) < MIN_CSV_ROWS:
        raise LabError(
            path_field, f"{path.name} has {len(rows)} data rows; at least {MIN_CSV_ROWS} are needed"
        )

    x = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(feature_indices))
    feature_names = tuple(columns[j] for j in feature_indices)
    if task == "regression":
        return CsvTable(x, np.asarray(targets, dtype=np.float64), feature_names, (), task)
    class_names = _sorted_classes(set(labels))
    if len(class_names) < 2:
        raise LabError(
            label_field,
            f"{path.name}: column {label!r} has only one class ({class_names[0]!r}); "
            "classification needs at least 2",
        )
    if len(class_names) > MAX_CSV_CLASSES:
        raise LabError(
            label_field,
            f"{path.name}: column {label!r} has {len(class_names)} distinct labels; classification "
            f"allows at most {MAX_CSV_CLASSES} (for a numeric target use \"task\": \"regression\")",
        )
    index = {name: i for i, name in enumerate(class_names)}
    y = np.fromiter((index[cell] for cell in labels), dtype=np.int64, count=len(labels))
    return CsvTable(x, y, feature_names, class_names, task)


def _read_utf8(path: Path, path_field: str) -> str:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise LabError(path_field, f"{path}: {what}")
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            megabytes = f"{size // 2**20} MB; at most {MAX_CSV_BYTES // 2**20} MB"
            raise LabError(path_field, f"{path.name} is {megabytes}")
        data = path.read_bytes()
    except OSError as error:
        raise LabError(path_field, f"{path}: cannot read ({error.strerror or error})") from None
    try:
        # utf-8-sig reads plain UTF-8 too and drops the byte-order mark Excel writes.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LabError(
            path_field,
            f"{path.name} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8')",
        ) from None


def _numbered_records(reader, path: Path, path_field: str):
    """Yield (row number, cells) for each non-blank record; the header is row 1."""
    row_number = 0
    try:
        for record in reader:
            row_number += 1  # blank lines count, as a spreadsheet shows them
            if not _is_blank(record):
                yield row_number, record
    except csv.Error as error:
        raise LabError(
            path_field, f"{path.name}: row {row_number + 1} is not valid CSV ({error})"
        ) from None


def _is_blank(record: list[str]) -> bool:
    # An empty line, or one of spaces. A line of commas (",,,") is a row of missing values and
    # is reported as such.
    return not record or (len(record) == 1 and not record[0].strip())


def _check_header(header: list[str], row: int, path: Path, path_field: str) -> list[str]:
    columns = [cell.strip() for cell in header]
    if len(columns) > MAX_CSV_COLUMNS:
        raise LabError(
            path_field, f"{path.name} has {len(columns)} columns; at most {MAX_CSV_COLUMNS}"
        )
    if all(_is_number(c) for c in columns):
        raise LabError(
            path_field,
            f"{path.name}: row {row} must be a header of column names, got numbers only "
            f"({', '.join(columns[:5])}{', …' if len(columns) > 5 else ''})",
        )
    for j, name in enumerate(columns):
        if not name:
            raise LabError(path_field, f"{path.name}: column {j + 1} of the header has no name")
        if name in columns[:j]:
            raise LabError(path_field, f"{path.name}: the header names column {name!r} twice")
    return columns


def _separator_hint(columns: list[str]) -> str:
    if len(columns) == 1:
        for separator, word in ((";", "semicolons"), ("\t", "tabs")):
            if separator in columns[0]:
                return f" (the file seems separated by {word}; columns must be separated by commas)"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(cell: str, row: int, column: str, path: Path, path_field: str) -> float:
    text = cell.strip()
    if text.lower() in MISSING_MARKERS:
        raise LabError(path_field, f"{path.name}: row {row}, column {column!r}: missing value")
    try:
        value = float(text)
    except ValueError:
        raise LabError(
            path_field,
            f"{path.name}: row {row}, column {column!r}: expected a number, got {_clip(text)!r}",
        ) from None
    if not math.isfinite(value):
        raise LabError(
            path_field, f"{path.name}: row {row}, column {column!r}: must be finite, got {text!r}"
        )
    return value


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sorted_classes(labels: set[str]) -> tuple[str, ...]:
    """Class spellings in order: numerically when all are numbers (so "10" follows "9")."""
    if all(_is_number(label) for label in labels):
        return tuple(sorted(labels, key=lambda label: (float(label), label)))
    return tuple(sorted(labels))
