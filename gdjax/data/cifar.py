"""CIFAR-10 in its binary format (``cifar-10-batches-bin``), read without pickle."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gdjax.data._files import DataFileError, as_path

__all__ = ["CIFAR10_CLASSES", "load_cifar10", "read_cifar10_batch"]

#: Class names in label order.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_RECORD = 1 + 32 * 32 * 3  # label byte + 1024 red, 1024 green, 1024 blue bytes
_HOW = (
    "Download the CIFAR-10 *binary version* (cifar-10-binary.tar.gz) from the CIFAR-10 page, "
    "then unpack it with gdjax.data.extract_archive(archive, folder) (or tar xzf) and pass "
    "data_dir= the folder holding data_batch_1.bin ... data_batch_5.bin and test_batch.bin "
    "(or its parent containing cifar-10-batches-bin/)."
)


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch file: records of 3073 bytes (label, then RGB planes).

    Args:
        path: e.g. ``data_batch_1.bin`` or ``test_batch.bin``.

    Returns:
        ``(images, labels)``: ``uint8`` ``(N, 32, 32, 3)`` and ``int32`` ``(N,)``.

    Raises:
        FileNotFoundError: if the file does not exist.
        DataFileError: if the file is empty, its size is not a multiple of 3073 bytes
            (truncated), or a label is outside ``0..9``.
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch not found: {path}. {_HOW}")
    data = np.fromfile(path, np.uint8)
    if data.size == 0:
        raise DataFileError(path, "empty file")
    if data.size % _RECORD:
        raise DataFileError(
            path,
            f"size check failed: {data.size} bytes is not a multiple of the {_RECORD}-byte "
            "record (truncated or not the binary version)",
        )
    records = data.reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataFileError(path, f"record {bad}: label {labels[bad]} outside 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar10(
    split: str = "train", data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, 10 classes).

    Expected files (the binary version's ``cifar-10-batches-bin/``): ``data_batch_1.bin`` ..
    ``data_batch_5.bin`` for ``"train"``, ``test_batch.bin`` for ``"test"``.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding the ``.bin`` files, or its parent holding
            ``cifar-10-batches-bin/``.

    Returns:
        ``(images, labels)``: ``float32`` in ``[0, 1]`` of shape ``(N, 32, 32, 3)`` and ``int32``
        labels ``(N,)``.

    Raises:
        ValueError: for a bad ``split`` or a missing ``data_dir``.
        FileNotFoundError: if a batch file is missing (message lists the paths and how to get
            them).
        DataFileError: if a batch is truncated or has a bad label.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if data_dir is None:
        raise ValueError(f"data_dir is required for CIFAR-10. {_HOW}")
    directory = as_path("data_dir", data_dir)
    if (
        not (directory / "test_batch.bin").is_file()
        and (directory / "cifar-10-batches-bin").is_dir()
    ):
        directory = directory / "cifar-10-batches-bin"
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    paths = [Path(directory) / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 files missing: {', '.join(missing)}. {_HOW}")
    parts = [read_cifar10_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts]).astype(np.float32) / np.float32(255.0)
    return images, np.concatenate([p[1] for p in parts])
