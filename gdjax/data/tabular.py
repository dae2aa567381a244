"""Tabular data: a CSV reader with named features, and scikit-learn's bundled data sets."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gdjax.data._files import DataFileError, as_path

__all__ = ["SKLEARN_DATASETS", "Tabular", "load_csv", "load_sklearn"]

#: Names accepted by :func:`load_sklearn`, and whether each is a classification task.
SKLEARN_DATASETS: dict[str, bool] = {
    "digits": True,
    "iris": True,
    "wine": True,
    "breast_cancer": True,
    "diabetes": False,
}

_MISSING = {"", "na", "nan", "null", "none", "?"}


class Tabular(NamedTuple):
    """Features, targets and names read by :func:`load_csv`.

    Attributes:
        x: ``float32`` features of shape ``(N, F)``.
        y: ``float32`` targets of shape ``(N,)``.
        feature_names: the ``F`` column names of ``x``, in order.
        target_name: the column name of ``y``.
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str


def read_header(
    path: Path, first_row: list[str], target: str, features: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """Check a CSV header row and the columns asked for; return the header and the features."""
    header = [h.strip() for h in first_row]
    if len(set(header)) != len(header):
        raise DataFileError(path, f"duplicate column names in header {header}")
    if target not in header:
        raise ValueError(f"target {target!r} is not a column of {path}; columns: {header}")
    if features is None:
        features = [h for h in header if h != target]
        if not features:
            raise DataFileError(path, f"no feature column: the header has only {header}")
    else:
        if isinstance(features, str):
            raise TypeError("features must be a sequence of column names, not a single str")
        features = list(features)
        if not features:
            raise ValueError(
                f"features is empty: pass column names of {path}, or None for every column "
                "but the target"
            )
        unknown = [f for f in features if f not in header]
        if unknown:
            raise ValueError(f"features {unknown} are not columns of {path}; columns: {header}")
        if target in features:
            raise ValueError(
                f"features include the target {target!r} (label leakage: the model would be "
                f"given the answer); drop it from features. File: {path}"
            )
        repeated = sorted({f for f in features if features.count(f) > 1})
        if repeated:
            raise ValueError(f"features name {repeated} more than once ({path})")
    return header, features


def parse_row(
    path: Path, line: int, row: list[str], header: list[str], cols: list[int], out: np.ndarray
) -> None:
    """Parse the cells ``cols`` of one CSV ``row`` (file line ``line``) into ``out``."""
    if len(row) != len(header):
        raise DataFileError(path, f"line {line}: {len(row)} fields, the header has {len(header)}")
    for j, c in enumerate(cols):
        cell = row[c].strip()
        if cell.lower() in _MISSING:
            raise DataFileError(path, f"line {line}, column {header[c]!r}: missing value")
        try:
            value = float(cell)
        except ValueError:
            raise DataFileError(
                path, f"line {line}, column {header[c]!r}: {cell!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise DataFileError(
                path, f"line {line}, column {header[c]!r}: {cell!r} is not a finite number"
            )
        out[j] = value


def load_csv(
    path: str | os.PathLike,
    target: str,
    features: Sequence[str] | None = None,
    *,
    delimiter: str = ",",
) -> Tabular:
    """Read a numeric CSV file with a header row, e.g. a house-prices table.

    The first row names the columns (a UTF-8 byte-order mark before it is dropped). ``target``
    names the column to predict; ``features`` names the input columns (default: every other
    column, in file order), which may not include the target. Every selected cell must parse
    as a finite number; empty, ``NA``, ``NaN`` or ``?`` cells are reported, not guessed, and so
    are ``inf`` and values too large for a float (``1e400``).

    Args:
        path: the CSV file.
        target: name of the target column (e.g. ``"price"``).
        features: names of the feature columns; ``None`` for all columns but ``target``.
        delimiter: the field separator.

    Returns:
        A :class:`Tabular` ``(x, y, feature_names, target_name)``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``target`` or a feature is not a column of the file (message lists them),
            ``features`` is empty, repeats a column or includes ``target`` (label leakage).
        DataFileError: if the file is empty or has no feature column, a row has the wrong
            number of fields, or a cell is missing, not a number or not finite (message gives
            file, line and column).

    Examples:
        >>> import pathlib, tempfile
        >>> from gdjax.data import load_csv
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
        >>> _ = path.write_text("area,rooms,price\\n50,2,150.0\\n80,3,240.5\\n")
        >>> x, y, names, _ = load_csv(path, target="price")
        >>> assert x.shape == (2, 2) and names == ["area", "rooms"]
    """
    path = as_path("path", path)
    if not isinstance(target, str):
        raise TypeError(f"target must be a column name (str); got {type(target).__name__}")
    if not path.is_file():
        raise FileNotFoundError(
            f"CSV file not found: {path}. Pass the path of a CSV file whose first row names "
            "the columns."
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: drop a byte-order mark
            rows = list(csv.reader(f, delimiter=delimiter))
    except UnicodeDecodeError as e:
        raise DataFileError(path, f"not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise DataFileError(path, f"not valid CSV ({e})") from e
    rows = [r for r in rows if r]  # blank lines
    if not rows:
        raise DataFileError(path, "empty file: expected a header row naming the columns")
    header, features = read_header(path, rows[0], target, features)
    if len(rows) < 2:
        raise DataFileError(path, "no data rows after the header")
    cols = [header.index(c) for c in [*features, target]]
    values = np.empty((len(rows) - 1, len(cols)), np.float64)
    for i, row in enumerate(rows[1:]):
        parse_row(path, i + 2, row, header, cols, values[i])
    return Tabular(
        values[:, :-1].astype(np.float32), values[:, -1].astype(np.float32), features, target
    )


def load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one of scikit-learn's bundled data sets (shipped with the package, no download).

    | name | samples | features | target |
    |---|---|---|---|
    | ``"digits"`` | 1797 | 64 (8x8 pixels, 0–16) | 10 classes |
    | ``"iris"`` | 150 | 4 | 3 classes |
    | ``"wine"`` | 178 | 13 | 3 classes |
    | ``"breast_cancer"`` | 569 | 30 | 2 classes |
    | ``"diabetes"`` | 442 | 10 (already scaled) | disease progression (regression) |

    Args:
        name: one of the names above.

    Returns:
        ``(x, y)``: ``float32`` features ``(N, F)`` and targets ``(N,)``: ``int32`` class labels
        for classification sets, ``float32`` for ``"diabetes"``.

    Raises:
        ValueError: for an unknown name.
        ImportError: if scikit-learn is not installed (``pip install scikit-learn``).
    """
    if name not in SKLEARN_DATASETS:
        raise ValueError(f"name must be one of {sorted(SKLEARN_DATASETS)}; got {name!r}")
    try:
        from sklearn import datasets
    except ImportError as e:  # pragma: no cover - scikit-learn is in the experiments extra
        raise ImportError(
            "load_sklearn needs scikit-learn: `pip install scikit-learn` "
            "(or `pip install gdjax[experiments]`)"
        ) from e
    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    y_dtype = np.int32 if SKLEARN_DATASETS[name] else np.float32
    return np.asarray(x, np.float32), np.asarray(y, y_dtype)
