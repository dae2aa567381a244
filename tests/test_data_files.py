"""File readers: small valid and broken files of every format, built in tmp_path."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile

import numpy as np
import pytest

from gdjax import data
from gdjax.data import DataFileError

# --- IDX / MNIST / Fashion-MNIST ------------------------------------------------------------


def idx_bytes(arr: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, payload: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_mnist_dir(root, n=(5, 3), gz=True, labels=None):
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    out = {}
    for split, prefix, count in (("train", "train", n[0]), ("test", "t10k", n[1])):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, count, dtype=np.uint8) if labels is None else labels
        write(root / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(images), gz)
        write(root / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(lab), gz)
        out[split] = (images, lab)
    return out


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("loader", [data.load_mnist, data.load_fashion_mnist])
def test_idx_loaders_read_valid_files(tmp_path, gz, loader):
    truth = make_mnist_dir(tmp_path, gz=gz)
    for split in ("train", "test"):
        x, y = loader(split, tmp_path)
        images, labels = truth[split]
        assert x.shape == (len(images), 28, 28, 1) and x.dtype == np.float32
        assert y.dtype == np.int32
        np.testing.assert_allclose(x[..., 0] * 255, images, atol=1e-4)
        np.testing.assert_array_equal(y, labels)
    x, _ = loader("train", tmp_path, flatten=True)
    assert x.shape == (5, 784) and x.min() >= 0 and x.max() <= 1


def test_fashion_mnist_defaults_to_debian_install_path(tmp_path, monkeypatch):
    # data_dir=None reads FASHION_MNIST_DIR (Debian's dataset-fashion-mnist install path)
    truth = make_mnist_dir(tmp_path, gz=True)
    monkeypatch.setattr("gdjax.data.idx.FASHION_MNIST_DIR", str(tmp_path))
    x, y = data.load_fashion_mnist("test")
    np.testing.assert_array_equal(y, truth["test"][1])
    assert x.shape == (3, 28, 28, 1)
    monkeypatch.setattr("gdjax.data.idx.FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent"):
        data.load_fashion_mnist("test")


@pytest.mark.parametrize(
    ("dtype", "code"),
    [
        (np.uint8, 0x08),
        (np.int8, 0x09),
        (np.int16, 0x0B),
        (np.int32, 0x0C),
        (np.float32, 0x0D),
        (np.float64, 0x0E),
    ],
)
def test_read_idx_all_element_types(tmp_path, dtype, code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr, code))
    out = data.read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(out, arr)
    assert out.dtype.isnative


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "element type"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
        (idx_bytes(np.zeros((3, 4), np.uint8))[:-1], "truncated"),
        (idx_bytes(np.zeros((3, 4), np.uint8)) + b"\x00", "trailing bytes"),
    ],
)
def test_read_idx_rejects_broken_files(tmp_path, payload, match):
    path = tmp_path / "broken-idx"
    path.write_bytes(payload)
    with pytest.raises(DataFileError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((50, 4), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFileError, match="gzip") as info:
        data.read_idx(tmp_path / "cut.gz")
    assert "cut.gz" in str(info.value)
    (tmp_path / "junk.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match="gzip"):
        data.read_idx(tmp_path / "junk.gz")


def test_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist("train", tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg and "dataset-fashion-mnist" in msg
    with pytest.raises(FileNotFoundError, match="MNIST"):
        data.load_mnist("test", tmp_path)
    with pytest.raises(ValueError, match="data_dir is required"):
        data.load_mnist("train")
    with pytest.raises(FileNotFoundError, match="IDX file not found"):
        data.read_idx(tmp_path / "nope")


def test_mislabelled_and_mismatched_mnist_files(tmp_path):
    make_mnist_dir(tmp_path, labels=np.array([0, 1, 12, 3, 4], np.uint8), n=(5, 5))
    with pytest.raises(DataFileError, match=r"label 12 outside 0\.\.9") as info:
        data.load_mnist("train", tmp_path)
    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    # labels and images disagree in count
    write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(4, np.uint8)), True)
    with pytest.raises(DataFileError, match="label count 4 != image count 5"):
        data.load_mnist("test", tmp_path)
    # images and labels swapped
    labels = (tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(labels)
    with pytest.raises(DataFileError, match="rank 3"):
        data.load_mnist("test", tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 27, 28), np.uint8)), True)
    with pytest.raises(DataFileError, match="28x28"):
        data.load_mnist("test", tmp_path)


def test_idx_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation", tmp_path)
    with pytest.raises(TypeError, match="data_dir"):
        data.load_fashion_mnist("train", 3)


# --- CIFAR-10 binary ------------------------------------------------------------------------


def cifar_bytes(labels, rng):
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    recs = np.concatenate(
        [np.asarray(labels, np.uint8)[:, None], images.reshape(len(labels), -1)], axis=1
    )
    return recs.tobytes(), images


def make_cifar_dir(folder):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in range(1, 6):
        raw, images = cifar_bytes([i, 9, 0], rng)
        (folder / f"data_batch_{i}.bin").write_bytes(raw)
        truth[f"data_batch_{i}"] = images
    raw, images = cifar_bytes([3, 4], rng)
    (folder / "test_batch.bin").write_bytes(raw)
    truth["test_batch"] = images
    return truth


def test_cifar10_reads_binary_batches(tmp_path):
    truth = make_cifar_dir(tmp_path / "cifar-10-batches-bin")
    x, y = data.load_cifar10("train", tmp_path)  # parent folder works too
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y[:6], [1, 9, 0, 2, 9, 0])
    # channel planes become the last axis: pixel (r, c) of record 0 is (R, G, B)[r, c]
    np.testing.assert_allclose(x[0] * 255, truth["data_batch_1"][0].transpose(1, 2, 0), atol=1e-3)
    x, y = data.load_cifar10("test", tmp_path / "cifar-10-batches-bin")
    assert x.shape == (2, 32, 32, 3) and y.tolist() == [3, 4]
    assert data.CIFAR10_CLASSES[y[0]] == "cat"


def test_cifar10_broken_and_missing_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    make_cifar_dir(folder)
    raw = (folder / "test_batch.bin").read_bytes()
    (folder / "test_batch.bin").write_bytes(raw[:-100])
    with pytest.raises(DataFileError, match="multiple of the 3073-byte") as info:
        data.load_cifar10("test", folder)
    assert "test_batch.bin" in str(info.value)
    bad = bytearray(raw)
    bad[3073] = 10
    (folder / "test_batch.bin").write_bytes(bytes(bad))
    with pytest.raises(DataFileError, match=r"record 1: label 10"):
        data.read_cifar10_batch(folder / "test_batch.bin")
    (folder / "test_batch.bin").write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        data.read_cifar10_batch(folder / "test_batch.bin")
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3\.bin") as info:
        data.load_cifar10("train", folder)
    assert "binary version" in str(info.value)
    with pytest.raises(ValueError, match="data_dir is required"):
        data.load_cifar10("train")
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10("val", folder)


# --- archives ---------------------------------------------------------------------------------


def make_tar(path, members: dict[str, bytes], links=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_extract_archive_safe(tmp_path):
    make_tar(tmp_path / "a.tar.gz", {"aclImdb/train/pos/0_9.txt": b"good"})
    out = data.extract_archive(tmp_path / "a.tar.gz", tmp_path / "target")
    assert (out / "aclImdb/train/pos/0_9.txt").read_text() == "good"


@pytest.mark.parametrize(
    ("members", "links", "match"),
    [
        ({"../evil.txt": b"x"}, (), "unsafe path"),
        ({"/tmp/evil.txt": b"x"}, (), "unsafe path"),
        ({"a/../../evil.txt": b"x"}, (), "unsafe path"),
        ({}, [("link", "/etc/passwd")], "link"),
    ],
)
def test_extract_archive_refuses_members_outside_target(tmp_path, members, links, match):
    make_tar(tmp_path / "evil.tar.gz", members, links)
    target = tmp_path / "sub" / "target"
    with pytest.raises(DataFileError, match=match):
        data.extract_archive(tmp_path / "evil.tar.gz", target)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "sub" / "evil.txt").exists()
    assert not target.exists()  # nothing written


def test_extract_archive_corrupt_and_missing(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"garbage" * 10)
    with pytest.raises(DataFileError, match="tar archive"):
        data.extract_archive(tmp_path / "bad.tar.gz", tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="archive not found"):
        data.extract_archive(tmp_path / "none.tar.gz", tmp_path / "t")
