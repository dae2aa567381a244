"""CSV reader, scikit-learn sets, splits, normalization, one-hot and time-series windows."""

from __future__ import annotations

import numpy as np
import pytest

from gdjax import data
from gdjax.data import DataFileError

HOUSES = "area,rooms,age,price\n50,2,10,150.5\n80,3,5,240\n120,4,30,310\n65, 2 ,1,199\n"


def test_load_csv_named_features(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text(HOUSES)
    t = data.load_csv(path, target="price")
    assert t.feature_names == ["area", "rooms", "age"] and t.target_name == "price"
    assert t.x.dtype == np.float32 and t.x.shape == (4, 3)
    np.testing.assert_allclose(t.y, [150.5, 240, 310, 199])
    np.testing.assert_allclose(t.x[3], [65, 2, 1])
    x, _, names, _ = data.load_csv(path, target="price", features=["age", "area"])
    assert names == ["age", "area"]
    np.testing.assert_allclose(x[:, 0], [10, 5, 30, 1])
    (tmp_path / "semi.csv").write_text(HOUSES.replace(",", ";"))
    assert data.load_csv(tmp_path / "semi.csv", "price", delimiter=";").x.shape == (4, 3)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("a,b,price\n", "no data rows"),
        ("a,a,price\n1,2,3\n", "duplicate column"),
        ("area,price\n1,2\n3\n", "line 3: 1 fields"),
        ("area,price\n1,2\n3,NA\n", "line 3, column 'price': missing value"),
        ("area,price\n1,2\nx1,4\n", "line 3, column 'area': 'x1' is not a number"),
    ],
)
def test_load_csv_broken_files(tmp_path, text, match):
    path = tmp_path / "broken.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match=match) as info:
        data.load_csv(path, target="price")
    assert str(path) in str(info.value)


def test_load_csv_bad_arguments_and_missing(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text(HOUSES)
    with pytest.raises(ValueError, match="target 'cost' is not a column"):
        data.load_csv(path, target="cost")
    with pytest.raises(ValueError, match=r"features \['garden'\]"):
        data.load_csv(path, target="price", features=["garden"])
    with pytest.raises(TypeError, match="features"):
        data.load_csv(path, target="price", features="area")
    with pytest.raises(TypeError, match="target"):
        data.load_csv(path, target=3)
    with pytest.raises(FileNotFoundError, match="CSV file not found"):
        data.load_csv(tmp_path / "none.csv", target="price")
    (tmp_path / "latin.csv").write_bytes("prix\n\xe9\n".encode("latin-1"))
    with pytest.raises(DataFileError, match="UTF-8"):
        data.load_csv(tmp_path / "latin.csv", target="prix")


@pytest.mark.parametrize(
    ("name", "shape", "classes"),
    [
        ("digits", (1797, 64), 10),
        ("iris", (150, 4), 3),
        ("wine", (178, 13), 3),
        ("breast_cancer", (569, 30), 2),
        ("diabetes", (442, 10), None),
    ],
)
def test_load_sklearn(name, shape, classes):
    x, y = data.load_sklearn(name)
    assert x.shape == shape and x.dtype == np.float32 and y.shape == (shape[0],)
    if classes is None:
        assert y.dtype == np.float32
    else:
        assert y.dtype == np.int32 and set(np.unique(y)) == set(range(classes))


def test_load_sklearn_unknown():
    with pytest.raises(ValueError, match="name must be one of"):
        data.load_sklearn("boston")


def test_train_val_test_split():
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20)
    (xtr, ytr), (xva, yva), (xte, yte) = data.train_val_test_split(
        x, y, val_fraction=0.2, test_fraction=0.25, seed=3
    )
    assert (len(xtr), len(xva), len(xte)) == (11, 4, 5)
    together = np.sort(np.concatenate([ytr, yva, yte]))
    np.testing.assert_array_equal(together, y)  # a partition
    np.testing.assert_array_equal(xtr[:, 0], 2 * ytr)  # rows stay aligned
    again = data.train_val_test_split(x, y, val_fraction=0.2, test_fraction=0.25, seed=3)
    np.testing.assert_array_equal(again[0][1], ytr)
    (_, ytr), (_, yva), (_, yte) = data.train_val_test_split(x, y, shuffle=False)
    assert ytr.tolist() == list(range(16)) and yva.tolist() == [16, 17] and yte.tolist() == [18, 19]
    (a,), (b,) = data.train_test_split(y, test_fraction=0.5, shuffle=False)
    assert a.tolist() == list(range(10)) and b.tolist() == list(range(10, 20))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"val_fraction": 1.2}, ValueError, "val_fraction"),
        ({"test_fraction": -0.1}, ValueError, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, "sum|< 1"),
        ({"val_fraction": "0.1"}, TypeError, "val_fraction"),
    ],
)
def test_split_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.train_val_test_split(np.arange(10), **kwargs)


def test_split_mismatched_lengths():
    with pytest.raises(ValueError, match="first dimension"):
        data.train_val_test_split(np.arange(10), np.arange(9))
    with pytest.raises(ValueError, match="at least one array"):
        data.train_val_test_split()


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (200, 3)).astype(np.float32)
    train[:, 2] = 7.0  # constant feature
    test = rng.normal(10.0, 1.0, (50, 3)).astype(np.float32)
    norm = data.fit_standardizer(train)
    z = norm(train)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_allclose(z[:, 2], 0)  # no division by zero
    np.testing.assert_allclose(
        norm(test), (test - train.mean(0)) / np.where(train.std(0) > 0, train.std(0), 1), rtol=1e-5
    )
    np.testing.assert_allclose(norm.inverse(norm(test)), test, rtol=1e-5)
    assert norm(test).dtype == np.float32
    # images: one mean/std over all pixels
    imgs = rng.random((10, 4, 4, 1)).astype(np.float32)
    g = data.fit_standardizer(imgs, axis=(0, 1, 2, 3))
    assert np.isclose(g(imgs).mean(), 0, atol=1e-6)


def test_min_max():
    train = np.array([[0.0, 5.0], [10.0, 5.0], [5.0, 5.0]])
    norm = data.fit_min_max(train)
    np.testing.assert_allclose(norm(train), [[0, 0], [1, 0], [0.5, 0]])
    np.testing.assert_allclose(norm(np.array([[20.0, 6.0]])), [[2, 1]])  # train range only
    sym = data.fit_min_max(train, feature_range=(-1, 1))
    np.testing.assert_allclose(sym(train)[:, 0], [-1, 1, 0])
    with pytest.raises(ValueError, match="feature_range"):
        data.fit_min_max(train, feature_range=(1, 0))
    with pytest.raises(ValueError, match="x_train"):
        data.fit_min_max(np.zeros((0, 2)))
    with pytest.raises(TypeError, match="x_train"):
        data.fit_standardizer(np.array([["a"]]))


def test_one_hot():
    out = data.one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 1], [0, 0, 1])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        data.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="labels must be integers"):
        data.one_hot(np.array([0.5]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        data.one_hot(np.array([0]), 0)


def test_make_windows():
    series = np.arange(20.0).reshape(10, 2)  # two features
    x, y = data.make_windows(series, window=3, horizon=2, stride=2)
    assert x.shape == (3, 3, 2) and y.shape == (3, 2, 2)
    np.testing.assert_array_equal(x[1, :, 0], [4, 6, 8])
    np.testing.assert_array_equal(y[1, :, 0], [10, 12])
    _, y1 = data.make_windows(series, window=3, target_columns=1)
    assert y1.shape == (7, 1) and y1[0, 0] == 7
    x, y = data.make_windows(np.arange(5.0), window=4)
    assert x.shape == (1, 4, 1) and y.tolist() == [[4.0]]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.arange(5.0), 0), {}, ValueError, "window"),
        ((np.arange(5.0), 3), {"horizon": 3}, ValueError, "shorter"),
        ((np.arange(5.0), 2), {"stride": 1.5}, TypeError, "stride"),
        ((np.zeros((2, 2, 2)), 1), {}, ValueError, "series"),
        ((np.zeros((6, 2)), 2), {"target_columns": [2]}, ValueError, "target_columns"),
    ],
)
def test_make_windows_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.make_windows(*args, **kwargs)
