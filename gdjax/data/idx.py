"""IDX files (the MNIST format) and the MNIST / Fashion-MNIST loaders.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN`` the
number of dimensions), ``NN`` big-endian ``uint32`` sizes, then the elements in row-major
order, big-endian.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gdjax.data._files import DataFileError, as_path, find_file, open_stream, read_up_to

__all__ = ["FASHION_MNIST_DIR", "load_fashion_mnist", "load_mnist", "read_idx"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the four files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist/"

_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
#: Most dimensions an IDX header may announce (NumPy 1.x's limit; MNIST files have 1 or 3).
MAX_IDX_DIMS = 32


def read_idx_header(f: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Read and check the header of the IDX stream ``f`` (positioned at its start).

    Returns:
        The shape the header announces and the element dtype (big-endian as stored); ``f``
        is left at the first data byte.

    Raises:
        DataFileError: A bad magic number, element type or dimension count, a truncated
            header, or a shape too large to address.
    """
    magic = read_up_to(f, path, 4)
    if len(magic) < 4:
        raise DataFileError(path, f"too short for an IDX header ({len(magic)} bytes < 4)")
    if magic[0] != 0 or magic[1] != 0:
        raise DataFileError(path, f"bad IDX magic number {magic.hex()}: must start 0000")
    type_code, ndim = magic[2], magic[3]
    if type_code not in _IDX_DTYPES:
        raise DataFileError(path, f"unknown IDX element type 0x{type_code:02x}")
    if ndim == 0:
        raise DataFileError(path, "IDX header announces 0 dimensions")
    if ndim > MAX_IDX_DIMS:
        raise DataFileError(
            path, f"IDX header announces {ndim} dimensions; at most {MAX_IDX_DIMS} are read"
        )
    sizes = read_up_to(f, path, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataFileError(path, f"truncated IDX header: {4 + len(sizes)} bytes < {4 + 4 * ndim}")
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: exact, never wraps
    if expected > np.iinfo(np.intp).max:
        raise DataFileError(
            path,
            f"IDX header shape {shape} overflows: {expected} bytes is more than an array "
            "can address",
        )
    return shape, dtype


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, raw or gzipped (``.gz``), validating header and size.

    A ``.gz`` file is decompressed as it is read, and reading stops one byte past the size its
    header announces: a small file that inflates to gigabytes costs only the announced size.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        An array with the file's shape, in native byte order.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DataFileError: (a ``ValueError``) if the magic number, element type or dimension count
            (0, or more than :data:`MAX_IDX_DIMS`) is invalid, the announced shape overflows,
            the file holds fewer or more bytes than its header announces, or a ``.gz`` file is
            not valid, complete gzip.
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open_stream(path) as f:
        shape, dtype = read_idx_header(f, path)
        expected = math.prod(shape) * dtype.itemsize
        # one byte more than announced tells trailing bytes apart, without inflating the rest
        data = read_up_to(f, path, expected + 1)
    got = len(data)
    if got != expected:
        kind, has = (
            ("truncated", f"has {got}") if got < expected else ("trailing bytes", "has more")
        )
        raise DataFileError(
            path,
            f"size check failed ({kind}): header shape {shape} needs {expected} data bytes, "
            f"file {has}",
        )
    arr = np.frombuffer(data, dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def _load_idx_pair(
    directory: Path, split: str, how_to_get: str, *, flatten: bool, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    prefix = _SPLIT_PREFIX[split]
    names = {
        kind: [f"{prefix}-{kind}-idx{n}-ubyte{ext}" for ext in (".gz", "")]
        + [f"{prefix}-{kind}.idx{n}-ubyte{ext}" for ext in (".gz", "")]
        for kind, n in (("images", 3), ("labels", 1))
    }
    img_path = find_file(directory, names["images"], how_to_get)
    lbl_path = find_file(directory, names["labels"], how_to_get)
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataFileError(
            img_path, f"expected uint8 images of rank 3, got {images.dtype} of shape {images.shape}"
        )
    if images.shape[1:] != (28, 28):
        raise DataFileError(img_path, f"expected 28x28 images, got {images.shape[1:]}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFileError(
            lbl_path, f"expected uint8 labels of rank 1, got {labels.dtype} of shape {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataFileError(
            lbl_path,
            f"label count {labels.shape[0]} != image count {images.shape[0]} in {img_path}",
        )
    if labels.size and labels.max() >= num_classes:
        raise DataFileError(lbl_path, f"label {int(labels.max())} outside 0..{num_classes - 1}")
    x = images.astype(np.float32) / np.float32(255.0)
    x = x.reshape(len(x), 784) if flatten else x[..., None]
    return x, labels.astype(np.int32)


def _check_split(split: object) -> str:
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    return str(split)


def load_fashion_mnist(
    split: str = "train", data_dir: str | os.PathLike | None = None, *, flatten: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST (60,000 train / 10,000 test 28x28 grey images, 10 classes).

    Files looked for in ``data_dir`` (raw or ``.gz``): ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
    The default directory is where Debian's ``dataset-fashion-mnist`` package puts them.

    Args:
        split: ``"train"`` or ``"test"`` (the official split).
        data_dir: folder holding the files; default :data:`FASHION_MNIST_DIR`.
        flatten: return images as ``(N, 784)`` instead of ``(N, 28, 28, 1)``.

    Returns:
        ``(images, labels)``: ``float32`` in ``[0, 1]`` of shape ``(N, 28, 28, 1)`` (or
        ``(N, 784)``), and ``int32`` labels of shape ``(N,)``.

    Raises:
        FileNotFoundError: if a file is missing (the message lists the paths tried).
        DataFileError: if a file is truncated, corrupt or has the wrong shape or labels.
    """
    split = _check_split(split)
    directory = as_path("data_dir", FASHION_MNIST_DIR if data_dir is None else data_dir)
    how = (
        "Install Debian's package with `apt-get install dataset-fashion-mnist` (files go to "
        f"{FASHION_MNIST_DIR}) or pass data_dir= a folder holding the four IDX files of "
        "Fashion-MNIST (raw or .gz)."
    )
    return _load_idx_pair(directory, split, how, flatten=flatten)


def load_mnist(
    split: str = "train", data_dir: str | os.PathLike | None = None, *, flatten: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST digits from the four IDX files in ``data_dir`` (raw or ``.gz``).

    Same file names, shapes and checks as :func:`load_fashion_mnist`; MNIST has no default
    location here, so ``data_dir`` is required.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: folder with ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.
        flatten: return images as ``(N, 784)``.

    Returns:
        ``(images, labels)`` as in :func:`load_fashion_mnist`.

    Raises:
        ValueError: if ``data_dir`` is not given.
        FileNotFoundError: if a file is missing.
        DataFileError: if a file is truncated, corrupt or mislabelled.
    """
    split = _check_split(split)
    if data_dir is None:
        raise ValueError(
            "data_dir is required for MNIST: pass a folder holding the four MNIST IDX files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz), downloaded from the MNIST database's page"
        )
    directory = as_path("data_dir", data_dir)
    how = (
        "Download the four MNIST IDX files (raw or .gz) from the MNIST database's page into "
        "that folder."
    )
    return _load_idx_pair(directory, split, how, flatten=flatten)
