"""Data readers and preprocessing: every function returns NumPy arrays.

Readers validate what they read: a missing file raises ``FileNotFoundError`` saying where it
looked and how to provide the file; a truncated, corrupt or mislabelled file raises
:class:`DataFileError` (a ``ValueError``) naming the file and the check that failed.
"""

from gdjax.data._files import DataFileError, extract_archive
from gdjax.data.idx import FASHION_MNIST_DIR, load_fashion_mnist, load_mnist, read_idx
from gdjax.data.preprocessing import (
    Normalizer,
    fit_min_max,
    fit_standardizer,
    one_hot,
    train_test_split,
    train_val_test_split,
)
from gdjax.data.tabular import SKLEARN_DATASETS, Tabular, load_csv, load_sklearn

__all__ = [
    "FASHION_MNIST_DIR",
    "SKLEARN_DATASETS",
    "DataFileError",
    "Normalizer",
    "Tabular",
    "extract_archive",
    "fit_min_max",
    "fit_standardizer",
    "load_csv",
    "load_fashion_mnist",
    "load_mnist",
    "load_sklearn",
    "one_hot",
    "read_idx",
    "train_test_split",
    "train_val_test_split",
]
