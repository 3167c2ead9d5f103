"""What a ``problem.dataset`` entry may hold: the limits, the registry of sets, and the check of a spec.

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
``imbalance``     generated classification sets (moons, circles, blobs, xor, spirals, gaussian,
                  digits) only: r in [1, 1000], or absent / ``null`` for the set's own balance.
                  The largest class (class 0) has r times as many samples as the smallest (the
                  last class): ``"imbalance": 99`` on 1,000 moons gives exactly 990 and 10. With
                  more classes the counts fall geometrically between them (n_c ∝ r^(-c/(k-1)));
                  each class needs at least 2 samples, so ``n`` must be large enough. Samples
                  are drawn with the data set's own seeded generator, and the validation split
                  is *stratified*: it holds ``val_fraction`` of each class (at least one sample
                  of each), so the minority is never missing from it
                  (core/problems/datasets/imbalance.py). ``csv`` refuses the key: a table's class
                  counts are its own (subsample the file to change them).
``length``        sequence sets (``adding``, ``memory``, ``parity``, ``sine_next``;
                  core/problems/datasets/sequences.py) only: time steps per sample, a whole
                  number in [2, 1000] (default 50); n × length × features at most 5,000,000.
``dims``          matrix sets (``matrix_regression``, ``low_rank``;
                  core/problems/datasets/matrices.py) only: inputs and outputs per sample, a
                  whole number in [2, 256] (default 16); ``n`` must be at least ``dims``.
``condition``     ``matrix_regression`` only: the condition number of the input matrix, in
                  [1, 1e6] (default 100).
``rank``          ``low_rank`` only: the rank of the target matrix, a whole number in [1, dims]
                  (default 2).
``path``          ``csv`` only, required: the file, relative to the lab file's directory.
``label``         ``csv`` only, required: the name of the target column.
``task``          ``csv`` only: ``"classification"`` (default) or ``"regression"``.

Unknown keys are refused (a typo such as ``"noice"`` would otherwise run a different experiment
than the user wrote), as is a key that does not apply to the named set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import LabError
from core.optim.hyperparams import HyperParam, show_value
from core.problems.datasets.features import DEFAULT_FEATURES, POINT_FEATURES
from core.problems.datasets.imbalance import MAX_IMBALANCE, MIN_IMBALANCE, check_imbalance
from core.problems.datasets.matrices import (
    DEFAULT_CONDITION,
    DEFAULT_DIMS,
    DEFAULT_RANK,
    MAX_CONDITION,
    MAX_DIMS,
    MIN_CONDITION,
    MIN_DIMS,
    MIN_RANK,
    check_matrix_spec,
)
from core.problems.datasets.sequences import (
    DEFAULT_LENGTH,
    MAX_LENGTH,
    MAX_SEQUENCE_VALUES,
    MIN_LENGTH,
    SEQUENCE_BASELINES,
    sequence_features,
)

MIN_SAMPLES = 8
MAX_SAMPLES = 100_000
DEFAULT_SAMPLES = 512
MAX_NOISE = 5.0
MAX_VAL_FRACTION = 0.9
MIN_CLASSES = 2
MAX_CLASSES = 10
MAX_SEED = 2**32 - 1  # the lab's own seed has the same range
DIGITS_SAMPLES = 1797


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
    # Sequence sets (core/problems/datasets/sequences.py): samples are (length, features).
    sequence: bool = False
    # Matrix sets (core/problems/datasets/matrices.py): ``dims`` inputs and outputs.
    matrix: bool = False


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
_IMBALANCE = HyperParam(
    "imbalance", None, "float", low=MIN_IMBALANCE, high=MAX_IMBALANCE, derived="balanced",
    tooltip="How many times more samples the largest class has than the smallest "
            "(99: 99 to 1); empty: the set's own balance.",
)
_POINT_NOISE = "Standard deviation of the Gaussian noise added to each point."
_COMMON = (_VAL_FRACTION, _SEED, _STANDARDIZE)


def _info(name, title, task, params, description, two_d=False) -> DatasetInfo:
    # Generated classification sets may be made imbalanced; csv (task "any") keeps its file's.
    extra = (_IMBALANCE,) if task == "classification" else ()
    return DatasetInfo(name, title, task, tuple(params) + extra + _COMMON, description, two_d)


_LENGTH = HyperParam(
    "length", DEFAULT_LENGTH, "int", low=MIN_LENGTH, high=MAX_LENGTH,
    tooltip="Time steps per sequence (T): the distance the network must carry what it saw.",
)


def _sequence(name, title, task, params, description) -> DatasetInfo:
    # Sequence sets are balanced by construction and never standardized behind the user's back.
    params = (_n_param(), _LENGTH, *params, _VAL_FRACTION, _SEED, _STANDARDIZE)
    text = f"{description} Baseline: {SEQUENCE_BASELINES[name]}."
    return DatasetInfo(name, title, task, params, text, sequence=True)


_SEQUENCE_SETS = (
    _sequence("adding", "Adding problem", "regression", (),
              "Sequences of (value, marker): the target is the sum of the two marked values, "
              "one in each half. The classic long-memory test (Hochreiter & Schmidhuber 1997)."),
    _sequence("memory", "Copy memory", "classification",
              (_classes_param(4, "Number of symbols to remember."),),
              "A symbol at the first step, blanks, then a cue at the last: answer the symbol "
              "seen length − 1 steps ago."),
    _sequence("parity", "Parity", "classification", (),
              "Random bits; class 1 when an odd number of them are 1: every bit matters."),
    _sequence("sine_next", "Sine continuation", "regression",
              (_noise_param(0.0, "Standard deviation of the noise added to each input sample."),),
              "length samples of sin(ωt + φ) with random ω in [0.1, 0.5] and φ: predict the "
              "next, clean value."),
)

_DIMS = HyperParam(
    "dims", DEFAULT_DIMS, "int", low=MIN_DIMS, high=MAX_DIMS,
    tooltip="Inputs and outputs per sample: the weight matrix is dims × dims.",
)
_MATRIX_NOISE = "Standard deviation of the noise added to each target."


def _matrix(name, title, params, description) -> DatasetInfo:
    params = (_n_param(), _DIMS, *params, _noise_param(0.0, _MATRIX_NOISE), *_COMMON)
    return DatasetInfo(name, title, "regression", params, description, matrix=True)


_MATRIX_SETS = (
    _matrix("matrix_regression", "Ill-conditioned matrix regression",
            (HyperParam("condition", DEFAULT_CONDITION, "float", low=MIN_CONDITION,
                        high=MAX_CONDITION,
                        tooltip="Condition number of the input matrix A (largest over "
                                "smallest singular value)."),),
            "Fit B = A W* with a linear layer, ‖AW − B‖², where the inputs A have a chosen "
            "condition number: plain gradient descent crawls along A's small directions, "
            "matrix optimizers (Muon, Shampoo, SOAP) treat W as a matrix."),
    _matrix("low_rank", "Low-rank matrix regression",
            (HyperParam("rank", DEFAULT_RANK, "int", low=MIN_RANK, high=MAX_DIMS,
                        tooltip="Rank of the target matrix W* (at most dims)."),),
            "Gaussian inputs, targets B = A W* with W* of low rank: a deep linear network "
            "(linear layers, no activations) must find it (matrix sensing)."),
)

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
        *_SEQUENCE_SETS,
        *_MATRIX_SETS,
    )
}


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
    if cleaned.get("imbalance") is not None:
        check_imbalance(cleaned["n"], dataset_classes(cleaned), cleaned["imbalance"], field)
    if info.sequence:
        values = cleaned["n"] * cleaned["length"] * sequence_features(cleaned)
        if values > MAX_SEQUENCE_VALUES:
            most = MAX_SEQUENCE_VALUES // (cleaned["length"] * sequence_features(cleaned))
            raise LabError(
                f"{field}.n",
                f"n × length × features = {values:,} values; at most {MAX_SEQUENCE_VALUES:,} "
                f"(with length {cleaned['length']}, n at most {most})",
            )
    if info.matrix:
        check_matrix_spec(cleaned, field)
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


def dataset_classes(cleaned: Mapping) -> int:
    """The number of classes of a cleaned generated classification spec (digits: 10)."""
    return 10 if cleaned["name"] == "digits" else cleaned.get("classes", 2)


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
