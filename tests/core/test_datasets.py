"""Data sets: shapes, dtypes, labels, seeding, splits, features(), standardization, CSV checks."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import LabError
from core.problems.datasets.build import make_dataset
from core.problems.datasets.csv_file import MAX_CSV_COLUMNS, load_csv
from core.problems.datasets.features import POINT_FEATURES
from core.problems.datasets.spec import DATASETS, DIGITS_SAMPLES, validate_dataset_spec

GENERATED = [name for name in DATASETS
             if name not in ("csv", "digits") and not DATASETS[name].sequence
             and not DATASETS[name].matrix]  # own tests: test_sequences.py, test_matrix_problems.py
CLASSIFICATION_2D = ["moons", "circles", "blobs", "xor", "spirals", "gaussian"]
REGRESSION = ["linear", "sine", "plane"]


def _all_x(ds):
    return np.concatenate([ds.x_train, ds.x_val])


def _all_y(ds):
    return np.concatenate([ds.y_train, ds.y_val])


# --------------------------------------------------------------------------------------------
# Generated sets


@pytest.mark.parametrize("name", GENERATED)
def test_shapes_and_dtypes(name):
    ds = make_dataset({"name": name, "n": 200, "val_fraction": 0.25}, seed=3)
    assert len(ds.x_train) == 150 and len(ds.x_val) == 50
    assert ds.x_train.dtype == np.float32 and ds.x_val.dtype == np.float32
    assert ds.x_train.shape[1:] == ds.input_shape and ds.x_val.shape[1:] == ds.input_shape
    assert np.isfinite(ds.x_train).all()
    assert len(ds.feature_names) == ds.input_shape[0]
    if ds.task == "classification":
        assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (150,)
        assert ds.n_outputs == ds.n_classes >= 2
        assert len(ds.class_names) == ds.n_classes
    else:
        assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (150, 1)
        assert ds.n_classes == 0 and ds.n_outputs == 1 and ds.class_names == ()


@pytest.mark.parametrize("name", CLASSIFICATION_2D)
def test_classification_labels_are_balanced_and_in_range(name):
    ds = make_dataset({"name": name, "n": 300}, seed=0)
    y = _all_y(ds)
    assert y.min() == 0 and y.max() == ds.n_classes - 1
    counts = np.bincount(y, minlength=ds.n_classes)
    if name == "xor":  # labels come from uniform points, so only roughly balanced
        assert counts.min() > 0.35 * len(y) / 2
    else:
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("name", ["blobs", "spirals"])
@pytest.mark.parametrize("k", [2, 5, 10])
def test_classes_sets_k_classes(name, k):
    ds = make_dataset({"name": name, "n": 100, "classes": k}, seed=1)
    assert ds.n_classes == k == ds.n_outputs
    assert set(np.unique(_all_y(ds))) == set(range(k))


@pytest.mark.parametrize("name", [*GENERATED, "digits"])
def test_same_seed_same_arrays_other_seed_other_arrays(name):
    spec = {"name": name, "n": 64}
    a, b, c = make_dataset(spec, 7), make_dataset(spec, 7), make_dataset(spec, 8)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)


def test_spec_seed_overrides_the_lab_seed():
    spec = {"name": "moons", "seed": 42}
    assert np.array_equal(make_dataset(spec, 0).x_train, make_dataset(spec, 1).x_train)
    lab_seeded = make_dataset({"name": "moons"}, 42)
    assert np.array_equal(make_dataset(spec, 0).x_train, lab_seeded.x_train)


@pytest.mark.parametrize("fraction, n_val", [(0.0, 0), (0.2, 20), (0.5, 50), (0.9, 90)])
def test_val_fraction_is_honoured(fraction, n_val):
    ds = make_dataset({"name": "circles", "n": 100, "val_fraction": fraction}, seed=0)
    assert len(ds.x_val) == len(ds.y_val) == len(ds.points_val) == n_val
    assert len(ds.x_train) == 100 - n_val
    if n_val == 0:
        assert ds.x_val.shape == (0, 2) and ds.y_val.dtype == np.int64


def test_val_fraction_only_moves_the_split():
    a = make_dataset({"name": "moons", "val_fraction": 0.1}, seed=5)
    b = make_dataset({"name": "moons", "val_fraction": 0.4}, seed=5)
    assert np.array_equal(_all_x(a), _all_x(b))
    assert np.array_equal(_all_y(a), _all_y(b))


def test_noise_scales_the_same_draws():
    clean = make_dataset({"name": "gaussian", "noise": 0.0}, seed=2)
    noisy = make_dataset({"name": "gaussian", "noise": 0.5}, seed=2)
    assert np.array_equal(clean.y_train, noisy.y_train)
    assert np.unique(clean.x_train, axis=0).shape[0] == 2  # the two centres
    assert noisy.x_train.std() > clean.x_train.std() * 0.5


def test_linear_least_squares_recovers_slope_and_intercept():
    ds = make_dataset({"name": "linear", "n": 512}, seed=0)
    x, y = ds.x_train[:, 0].astype(np.float64), ds.y_train[:, 0].astype(np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    assert slope == pytest.approx(2.0, abs=0.1)
    assert intercept == pytest.approx(1.0, abs=0.1)
    assert ds.feature_names == ("x",) and ds.points_train is None and ds.plane is None


def test_sine_and_plane_follow_their_formulas_without_noise():
    sine = make_dataset({"name": "sine", "noise": 0.0}, seed=0)
    assert np.allclose(sine.y_train[:, 0], np.sin(sine.x_train[:, 0]), atol=1e-6)
    plane = make_dataset({"name": "plane", "noise": 0.0}, seed=0)
    p = plane.points_train.astype(np.float64)
    assert np.allclose(plane.y_train[:, 0], 1.5 * p[:, 0] - 2.0 * p[:, 1], atol=1e-5)


def test_circles_radii():
    ds = make_dataset({"name": "circles", "noise": 0.0}, seed=0)
    radius = np.hypot(*_all_x(ds).T)
    y = _all_y(ds)
    assert np.allclose(radius[y == 0], 1.0, atol=1e-6)
    assert np.allclose(radius[y == 1], 0.5, atol=1e-6)


def test_xor_labels_are_quadrants_without_noise():
    ds = make_dataset({"name": "xor", "noise": 0.0}, seed=0)
    x = _all_x(ds)
    assert np.array_equal(_all_y(ds), (x[:, 0] * x[:, 1] < 0).astype(np.int64))


@pytest.mark.parametrize("name", [*CLASSIFICATION_2D, "plane"])
def test_plane_pads_around_all_points(name):
    ds = make_dataset({"name": name}, seed=0)
    (xmin, xmax), (ymin, ymax) = ds.plane
    points = np.concatenate([ds.points_train, ds.points_val])
    assert xmin < points[:, 0].min() and points[:, 0].max() < xmax
    assert ymin < points[:, 1].min() and points[:, 1].max() < ymax


# --------------------------------------------------------------------------------------------
# Extra features and standardization


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("features", [["x", "y"], list(POINT_FEATURES), ["xy"], ["siny", "x2"]])
def test_features_reproduce_the_training_inputs_exactly(features, standardize):
    ds = make_dataset({"name": "spirals", "features": features, "standardize": standardize}, seed=4)
    assert ds.feature_names == tuple(features) and ds.input_shape == (len(features),)
    assert np.array_equal(ds.features(ds.points_train), ds.x_train)
    assert np.array_equal(ds.features(ds.points_val), ds.x_val)
    # A float64 grid is treated as the float32 points training saw.
    assert np.array_equal(ds.features(ds.points_train.astype(np.float64)), ds.x_train)
    assert ds.features(np.zeros((5, 2))).dtype == np.float32


def test_extra_features_are_their_formulas():
    ds = make_dataset({"name": "moons", "features": list(POINT_FEATURES)}, seed=0)
    p = ds.points_train.astype(np.float64)
    x, y = p[:, 0], p[:, 1]
    expected = np.column_stack([x, y, x * x, y * y, x * y, np.sin(x), np.sin(y)]).astype(np.float32)
    assert np.array_equal(ds.x_train, expected)
    assert ds.standardize is None


def test_standardization_uses_training_statistics_only():
    ds = make_dataset(
        {"name": "gaussian", "features": ["x", "y", "xy"], "standardize": True}, seed=0
    )
    mean, std = ds.standardize
    assert mean.shape == std.shape == (3,)
    assert np.allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(ds.x_train.std(axis=0), 1.0, atol=1e-4)
    # The statistics are those of the raw training inputs, not of train + validation.
    raw_train = make_dataset({"name": "gaussian", "features": ["x", "y", "xy"]}, seed=0).x_train
    assert np.allclose(mean, raw_train.astype(np.float64).mean(axis=0), atol=1e-6)
    assert np.allclose(std, raw_train.astype(np.float64).std(axis=0), atol=1e-6)
    assert not np.allclose(ds.x_val.mean(axis=0), 0.0, atol=1e-5)


def test_standardize_defaults_to_off_and_is_explicit_in_the_spec():
    assert validate_dataset_spec({"name": "moons"})["standardize"] is False
    assert validate_dataset_spec({"name": "digits"})["standardize"] is False


def test_standardization_of_a_constant_column_does_not_divide_by_zero():
    ds = make_dataset({"name": "blobs", "noise": 0.0, "classes": 2, "standardize": True}, seed=0)
    assert np.isfinite(ds.x_train).all()
    # Two centres on the y axis: x is constant and is left unscaled.
    assert ds.standardize[1][0] == 1.0


def test_features_refuses_wrong_shapes():
    ds = make_dataset({"name": "moons"}, seed=0)
    with pytest.raises(ValueError):
        ds.features(np.zeros((4, 3)))
    linear = make_dataset({"name": "linear", "standardize": True}, seed=0)
    assert linear.features(np.zeros((4, 1))).shape == (4, 1)
    with pytest.raises(ValueError):
        linear.features(np.zeros((4, 2)))


# --------------------------------------------------------------------------------------------
# Digits


def test_digits():
    ds = make_dataset({"name": "digits"}, seed=0)
    assert len(ds.x_train) + len(ds.x_val) == DIGITS_SAMPLES == 1797
    assert ds.input_shape == (1, 8, 8) and ds.x_train.shape[1:] == (1, 8, 8)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    x = _all_x(ds)
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(_all_y(ds))) == set(range(10))
    assert ds.n_classes == ds.n_outputs == 10 and ds.class_names == tuple("0123456789")
    assert ds.points_train is None and ds.plane is None


def test_digits_subset_noise_and_standardization():
    ds = make_dataset({"name": "digits", "n": 100, "noise": 0.3, "standardize": True}, seed=0)
    assert len(ds.x_train) + len(ds.x_val) == 100
    mean, std = ds.standardize
    assert mean.shape == (1, 8, 8) and np.isfinite(ds.x_train).all()
    raw = make_dataset({"name": "digits", "n": 100, "noise": 0.3}, seed=0)
    assert 0.0 <= raw.x_train.min() and raw.x_train.max() <= 1.0
    with pytest.raises(LabError) as info:
        validate_dataset_spec({"name": "digits", "n": 2000})
    assert info.value.field == "problem.dataset.n" and "1797" in info.value.message


# --------------------------------------------------------------------------------------------
# Spec validation


def test_validation_fills_defaults():
    spec = validate_dataset_spec({"name": "blobs"})
    assert spec == {
        "name": "blobs", "n": 512, "noise": 0.5, "classes": 3, "imbalance": None,
        "val_fraction": 0.2, "seed": None, "standardize": False, "features": ["x", "y"],
    }
    assert validate_dataset_spec({"name": "linear"})["noise"] == 0.1
    assert "features" not in validate_dataset_spec({"name": "linear"})


@pytest.mark.parametrize(
    "spec, field, words",
    [
        ({}, "problem.dataset.name", "is missing"),
        ({"name": "mnist"}, "problem.dataset.name", "moons"),
        ({"name": "moons", "n": 5}, "problem.dataset.n", "[8, 100000]"),
        ({"name": "moons", "n": 100_001}, "problem.dataset.n", "[8, 100000]"),
        ({"name": "moons", "n": 10.5}, "problem.dataset.n", "whole number"),
        ({"name": "moons", "noise": -0.1}, "problem.dataset.noise", "[0, 5]"),
        ({"name": "moons", "noise": 6}, "problem.dataset.noise", "[0, 5]"),
        ({"name": "moons", "noise": "lots"}, "problem.dataset.noise", "[0, 5]"),
        ({"name": "moons", "val_fraction": 0.95}, "problem.dataset.val_fraction", "[0, 0.9]"),
        ({"name": "moons", "seed": -1}, "problem.dataset.seed", "4294967295"),
        ({"name": "moons", "standardize": 1}, "problem.dataset.standardize", "true or false"),
        ({"name": "blobs", "classes": 11}, "problem.dataset.classes", "[2, 10]"),
        ({"name": "spirals", "classes": 1}, "problem.dataset.classes", "[2, 10]"),
        ({"name": "blobs", "classes": 10, "n": 12}, "problem.dataset.n", "at least 20"),
        ({"name": "moons", "classes": 3}, "problem.dataset.classes", "allowed keys"),
        ({"name": "moons", "noice": 0.1}, "problem.dataset.noice", "allowed keys"),
        ({"name": "linear", "features": ["x"]}, "problem.dataset.features", "allowed keys"),
        ({"name": "moons", "features": []}, "problem.dataset.features", "x, y, x2"),
        ({"name": "moons", "features": ["x", "z"]}, "problem.dataset.features[1]", "sinx"),
        ({"name": "moons", "features": ["x", "x"]}, "problem.dataset.features[1]", "twice"),
        ({"name": "csv", "label": "y"}, "problem.dataset.path", "is missing"),
        ({"name": "csv", "path": "a.csv"}, "problem.dataset.label", "is missing"),
        ({"name": "csv", "path": "", "label": "y"}, "problem.dataset.path", "non-empty"),
        ({"name": "csv", "path": "a.csv", "label": "y", "task": "ranking"},
         "problem.dataset.task", "'regression'"),
        ({"name": "csv", "path": "a.csv", "label": "y", "noise": 0.1},
         "problem.dataset.noise", "allowed keys"),
    ],
)
def test_validation_names_the_field_and_the_range(spec, field, words):
    with pytest.raises(LabError) as info:
        validate_dataset_spec(spec)
    assert info.value.field == field
    assert words in info.value.message


def test_validation_field_prefix_and_non_object():
    with pytest.raises(LabError) as info:
        make_dataset({"name": "moons", "n": 1}, seed=0, field="lesson.dataset")
    assert info.value.field == "lesson.dataset.n"
    with pytest.raises(LabError) as info:
        validate_dataset_spec("moons")
    assert info.value.field == "problem.dataset"


# --------------------------------------------------------------------------------------------
# CSV


def _write(tmp_path, text, name="data.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


GOOD_CSV = "a,b,species\n" + "".join(
    f"{i * 0.5},{10 - i},{('setosa', 'virginica', 'versicolor')[i % 3]}\n" for i in range(12)
)


def test_csv_classification(tmp_path):
    _write(tmp_path, GOOD_CSV)
    ds = make_dataset(
        {"name": "csv", "path": "data.csv", "label": "species", "val_fraction": 0.25},
        seed=0, base_dir=tmp_path,
    )
    assert ds.task == "classification" and ds.n_classes == ds.n_outputs == 3
    assert ds.class_names == ("setosa", "versicolor", "virginica")
    assert ds.feature_names == ("a", "b") and ds.input_shape == (2,)
    assert len(ds.x_train) == 9 and len(ds.x_val) == 3
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # Each row keeps its label through the shuffle: a = i/2 and the class is fixed by i % 3.
    names = ("setosa", "virginica", "versicolor")
    for x, y in zip(_all_x(ds), _all_y(ds), strict=True):
        assert ds.class_names[y] == names[int(round(x[0] * 2)) % 3]
    # Two feature columns: a 2-D set whose points are the inputs.
    assert ds.points_train is not None and ds.plane is not None
    assert np.array_equal(ds.features(ds.points_train), ds.x_train)


def test_csv_regression_with_bom_and_standardization(tmp_path):
    text = "x1,x2,x3,target\n" + "".join(f"{i},{i * i},{-i},{3 * i + 0.5}\n" for i in range(10))
    _write(tmp_path, text, encoding="utf-8-sig")
    ds = make_dataset(
        {"name": "csv", "path": "data.csv", "label": "target", "task": "regression",
         "standardize": True},
        seed=1, base_dir=tmp_path,
    )
    assert ds.task == "regression" and ds.y_train.shape == (8, 1) and ds.y_train.dtype == np.float32
    assert ds.feature_names == ("x1", "x2", "x3") and ds.points_train is None
    assert np.allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    raw = load_csv(tmp_path / "data.csv", "target", "regression")
    assert np.array_equal(raw.y, 3 * np.arange(10) + 0.5)


def test_csv_numeric_labels_sort_numerically(tmp_path):
    text = "f,label\n" + "".join(f"{i},{(2, 10, 9)[i % 3]}\n" for i in range(9))
    table = load_csv(_write(tmp_path, text), "label")
    assert table.class_names == ("2", "9", "10")
    assert list(table.y[:3]) == [0, 2, 1]


def test_csv_skips_blank_lines_and_counts_them_as_rows(tmp_path):
    text = "f,label\n1,a\n\n2,b\n3,a\n4,b\n5,x y z\n"
    table = load_csv(_write(tmp_path, text), "label")
    assert len(table.y) == 5
    text = "f,label\n1,a\n\n2,b\n,a\n4,b\n"
    with pytest.raises(LabError) as info:
        load_csv(_write(tmp_path, text), "label")
    assert "row 5" in info.value.message  # line 5 of the file, as a spreadsheet numbers it


@pytest.mark.parametrize(
    "text, field, words",
    [
        ("a,b,y\n1,2,p\n3,,q\n5,6,p\n7,8,q\n", "path", ["row 3", "'b'", "missing value"]),
        ("a,b,y\n1,2,p\n3,NA,q\n5,6,p\n7,8,q\n", "path", ["row 3", "'b'", "missing value"]),
        ("a,b,y\n1,2,p\n3,4,q\n5,six,p\n7,8,q\n", "path", ["row 4", "'b'", "'six'"]),
        ("a,b,y\n1,2,p\n3,inf,q\n5,6,p\n7,8,q\n", "path", ["row 3", "'b'", "finite"]),
        ("a,b,y\n1,2,p\n3,4\n5,6,p\n7,8,q\n", "path", ["row 3", "2 cells", "3 columns"]),
        ("a,b,y\n1,2,p\n3,4,q,9\n5,6,p\n7,8,q\n", "path", ["row 3", "4 cells"]),
        ("a,b,y\n1,2,p\n3,4,p\n5,6,p\n7,8,p\n", "label", ["only one class", "'p'"]),
        ("a,b,y\n1,2,p\n3,4,q\n5,6,p\n", "path", ["3 data rows", "at least 4"]),
        ("a,b,y\n1,2,p\n3,4,\n5,6,p\n7,8,q\n", "path", ["row 3", "'y'", "missing label"]),
        ("a,b,z\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n", "label", ["no column 'y'", "'a', 'b', 'z'"]),
        ("a;b;y\n1;2;p\n3;4;q\n5;6;p\n7;8;q\n", "label", ["no column 'y'", "semicolons"]),
        ("1,2,3\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n", "path", ["row 1", "header"]),
        ("a,a,y\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n", "path", ["'a' twice"]),
        ("a,,y\n1,2,p\n3,4,q\n5,6,p\n7,8,q\n", "path", ["column 2", "no name"]),
        ("y\np\nq\np\nq\n", "path", ["only the label column"]),
        ("", "path", ["empty", "header"]),
        ("\n\n", "path", ["empty", "header"]),
    ],
)
def test_csv_errors_name_row_column_and_field(tmp_path, text, field, words):
    _write(tmp_path, text)
    with pytest.raises(LabError) as info:
        make_dataset({"name": "csv", "path": "data.csv", "label": "y"}, seed=0, base_dir=tmp_path)
    assert info.value.field == f"problem.dataset.{field}"
    assert "data.csv" in info.value.message or field == "label" and "data.csv" in str(info.value)
    for word in words:
        assert word in info.value.message


def test_csv_regression_refuses_text_target(tmp_path):
    _write(tmp_path, "a,y\n1,2\n3,4\n5,big\n7,8\n")
    with pytest.raises(LabError) as info:
        load_csv(tmp_path / "data.csv", "y", "regression")
    assert info.value.field == "problem.dataset.path"
    assert all(w in info.value.message for w in ("row 4", "'y'", "'big'"))


def test_csv_missing_file(tmp_path):
    with pytest.raises(LabError) as info:
        make_dataset({"name": "csv", "path": "nope.csv", "label": "y"}, seed=0, base_dir=tmp_path)
    assert info.value.field == "problem.dataset.path"
    assert "nope.csv" in info.value.message and "not found" in info.value.message


def test_csv_path_is_relative_to_base_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub", GOOD_CSV)
    spec = {"name": "csv", "path": "sub/data.csv", "label": "species"}
    ds = make_dataset(spec, 0, base_dir=tmp_path)
    assert len(ds.x_train) + len(ds.x_val) == 12


def test_csv_not_utf8(tmp_path):
    _write(tmp_path, "a,b,y\n1,2,p\n3,4,caf\xe9\n5,6,p\n7,8,q\n", encoding="latin-1")
    with pytest.raises(LabError) as info:
        load_csv(tmp_path / "data.csv", "y")
    assert info.value.field == "problem.dataset.path"
    assert "not UTF-8" in info.value.message and "line 3" in info.value.message


def test_csv_too_many_columns(tmp_path):
    header = ",".join(f"c{j}" for j in range(MAX_CSV_COLUMNS)) + ",y\n"
    _write(tmp_path, header + ("0," * MAX_CSV_COLUMNS + "p\n") * 4)
    with pytest.raises(LabError) as info:
        load_csv(tmp_path / "data.csv", "y")
    assert str(MAX_CSV_COLUMNS) in info.value.message and "columns" in info.value.message


def test_csv_too_many_rows(tmp_path, monkeypatch):
    # The real limit is 100k rows; a lower one keeps the test fast and checks the same code.
    import core.problems.datasets.csv_file as csv_file

    monkeypatch.setattr(csv_file, "MAX_CSV_ROWS", 10)
    _write(tmp_path, "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(11)))
    with pytest.raises(LabError) as info:
        load_csv(tmp_path / "data.csv", "y")
    assert "more than 10 data rows" in info.value.message


def test_csv_too_many_classes_suggests_regression(tmp_path):
    _write(tmp_path, "a,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(150)))
    with pytest.raises(LabError) as info:
        load_csv(tmp_path / "data.csv", "y")
    assert info.value.field == "problem.dataset.label" and "regression" in info.value.message


def test_csv_same_seed_same_split(tmp_path):
    _write(tmp_path, GOOD_CSV)
    spec = {"name": "csv", "path": "data.csv", "label": "species"}
    a, b = make_dataset(spec, 3, base_dir=tmp_path), make_dataset(spec, 3, base_dir=tmp_path)
    c = make_dataset(spec, 4, base_dir=tmp_path)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)
