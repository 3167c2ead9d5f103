"""Building the data set a ``problem.dataset`` spec describes: draw, shuffle, split, round, rescale.

How a data set is built
-----------------------
1. Draw (or read) all samples, in a fixed, label-ordered layout: classification labels are
   ``0, 1, …, k-1, 0, 1, …`` so every class has ``n // k`` or ``n // k + 1`` samples.
2. Shuffle with the same generator, then the first ``n - round(n · val_fraction)`` samples are the
   training split, the rest the validation split. The draws of step 1 and the shuffle do not
   depend on ``val_fraction``, so changing it only moves the boundary between the splits.
   With ``imbalance`` (core/problems/datasets/imbalance.py) step 1 draws each class's own count
   and step 2 splits by class (stratified), so the minority is in both splits.
3. For the 2-D sets, the raw points are rounded to float32 once (kept as ``points_train`` /
   ``points_val`` for plotting) and the model inputs are computed from them by
   `Dataset.features`; the same function maps a decision-boundary grid, so the grid sees exactly
   the transformation the training data saw.

Labels are int64 class indices (binary sets too: a network ends in 2 logits and uses cross
entropy, so ``n_outputs`` is 2); regression targets are float32 columns of shape (n, 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from core.problems.datasets.csv_file import load_csv
from core.problems.datasets.dataset import Dataset
from core.problems.datasets.features import (
    apply_standardization,
    inputs_from_points,
    padded_domain,
    train_statistics,
)
from core.problems.datasets.generators import GENERATORS
from core.problems.datasets.imbalance import draw_imbalanced, stratified_split
from core.problems.datasets.sequences import feature_names as sequence_feature_names
from core.problems.datasets.spec import (
    DATASETS,
    DIGITS_SAMPLES,
    dataset_classes,
    validate_dataset_spec,
)


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
        if spec.get("imbalance") is not None:
            raw, target = draw_imbalanced(
                name, GENERATORS[name], spec, dataset_classes(spec), rng, field,
                whole_set=DIGITS_SAMPLES if name == "digits" else None,
            )
        else:
            raw, target = GENERATORS[name](spec, rng)
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
        elif info.sequence:
            feature_names = sequence_feature_names(spec)
        elif info.matrix:
            feature_names = tuple(f"a{j}" for j in range(spec["dims"]))
        else:
            feature_names = ("x",)

    order = rng.permutation(len(target))
    raw, target = raw[order], target[order]
    if spec.get("imbalance") is not None:
        # Stratified, so the minority is in both splits; balanced sets keep the plain cut.
        split, n_train = stratified_split(target, spec["val_fraction"])
        raw, target = raw[split], target[split]
    else:
        n_train = len(target) - _validation_size(len(target), spec["val_fraction"])

    # Round once, so the plotted points and the inputs built from them agree exactly.
    raw = raw.astype(np.float32)
    inputs = inputs_from_points(raw, point_features) if two_d else raw.astype(np.float64)
    stats = train_statistics(inputs[:n_train]) if spec["standardize"] else None
    x = apply_standardization(inputs, stats)
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
        plane=padded_domain(raw) if two_d else None,
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
