"""Data readers and preprocessing: every function returns NumPy arrays.

Readers validate what they read: a missing file raises ``FileNotFoundError`` saying where it
looked and how to provide the file; a truncated, corrupt or mislabelled file raises
:class:`DataFileError` (a ``ValueError``) naming the file and the check that failed.
"""

from gdjax.data._files import DataFileError, extract_archive
from gdjax.data.cifar import CIFAR10_CLASSES, load_cifar10, read_cifar10_batch
from gdjax.data.idx import FASHION_MNIST_DIR, load_fashion_mnist, load_mnist, read_idx
from gdjax.data.memmap import (
    MemmapWriter,
    csv_to_memmap,
    idx_to_memmap,
    open_memmap,
    release_pages,
    write_memmap,
)
from gdjax.data.preprocessing import (
    Normalizer,
    fit_min_max,
    fit_standardizer,
    one_hot,
    train_test_split,
    train_val_test_split,
)
from gdjax.data.tabular import SKLEARN_DATASETS, Tabular, load_csv, load_sklearn
from gdjax.data.text import (
    PAD,
    UNK,
    Vocabulary,
    build_vocabulary,
    lm_windows,
    load_imdb,
    load_text_corpus,
    pad_sequences,
    read_imdb,
    tokenize,
)
from gdjax.data.timeseries import make_windows

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_DIR",
    "PAD",
    "SKLEARN_DATASETS",
    "UNK",
    "DataFileError",
    "MemmapWriter",
    "Normalizer",
    "Tabular",
    "Vocabulary",
    "build_vocabulary",
    "csv_to_memmap",
    "extract_archive",
    "fit_min_max",
    "fit_standardizer",
    "idx_to_memmap",
    "lm_windows",
    "load_cifar10",
    "load_csv",
    "load_fashion_mnist",
    "load_imdb",
    "load_mnist",
    "load_sklearn",
    "load_text_corpus",
    "make_windows",
    "one_hot",
    "open_memmap",
    "pad_sequences",
    "read_cifar10_batch",
    "read_idx",
    "read_imdb",
    "release_pages",
    "tokenize",
    "train_test_split",
    "train_val_test_split",
    "write_memmap",
]
