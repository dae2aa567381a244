"""Memmap directories: IDX, CSV and arrays written once and read back equal to the readers'
own results; an interrupted or truncated directory is refused naming the file; reads leave the
process's resident memory small."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from gdjax.data import (
    DataFileError,
    MemmapWriter,
    csv_to_memmap,
    idx_to_memmap,
    load_csv,
    open_memmap,
    read_idx,
    release_pages,
    write_memmap,
)
from gdjax.data.memmap import LAYOUT_FILE

FASHION = "/usr/share/datasets/fashion-mnist/"


def test_idx_files_convert_to_the_arrays_read_idx_reads(tmp_path):
    images = FASHION + "t10k-images-idx3-ubyte.gz"
    labels = FASHION + "t10k-labels-idx1-ubyte.gz"
    x, y = open_memmap(idx_to_memmap(tmp_path / "mm", images, labels))
    np.testing.assert_array_equal(x, read_idx(images))
    np.testing.assert_array_equal(y, read_idx(labels))
    assert x.dtype == np.uint8 and x.shape == (10000, 28, 28)


def test_idx_of_other_types_and_errors(tmp_path):
    # a big-endian float32 IDX file (type 0x0D), written by hand
    values = np.arange(12, dtype=">f4").reshape(3, 4)
    path = tmp_path / "f.idx"
    path.write_bytes(bytes([0, 0, 0x0D, 2]) + np.array([3, 4], ">u4").tobytes() + values.tobytes())
    out = open_memmap(idx_to_memmap(tmp_path / "a", path))
    assert out.dtype == np.float32 and out.tolist() == values.astype(np.float32).tolist()
    short = tmp_path / "short.idx.gz"
    with gzip.open(short, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + np.array([10], ">u4").tobytes() + bytes(7))
    with pytest.raises(DataFileError, match=r"short\.idx\.gz: truncated"):
        idx_to_memmap(tmp_path / "b", short)
    assert not (tmp_path / "b" / LAYOUT_FILE).exists()  # left unreadable, not half-written


def test_csv_converts_to_what_load_csv_reads(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(size=(57, 3))
    lines = ["a,b,price,c"] + [f"{r[0]},{r[1]},{i},{r[2]}" for i, r in enumerate(table)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    want = load_csv(path, target="price")
    x, y = open_memmap(csv_to_memmap(tmp_path / "mm", path, "price"))
    np.testing.assert_array_equal(x, want.x)
    np.testing.assert_array_equal(y, want.y)
    path.write_text("a,price\n1,2\n3,NA\n")
    with pytest.raises(DataFileError, match="line 3, column 'price': missing value"):
        csv_to_memmap(tmp_path / "bad", path, "price")


def test_arrays_round_trip_and_directory_checks(tmp_path):
    data = {"x": np.arange(30, dtype=np.float32).reshape(10, 3), "y": np.arange(10) % 3}
    folder = write_memmap(tmp_path / "mm", data)
    back = open_memmap(folder)
    assert sorted(back) == ["x", "y"]
    for k in data:
        np.testing.assert_array_equal(back[k], data[k])
        assert not back[k].flags.writeable
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_memmap(folder, data)
    write_memmap(folder, {"x": data["x"][:4]}, overwrite=True)
    assert open_memmap(folder)["x"].shape == (4, 3)
    # a writer closed before all rows arrived leaves no layout file: refused when opened
    part = MemmapWriter(tmp_path / "part", 5, np.zeros(3, np.float32))
    part.append(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="only 2 of n=5 rows"):
        part.close()
    with pytest.raises(FileNotFoundError, match="its conversion was interrupted"):
        open_memmap(tmp_path / "part")
    writer = MemmapWriter(tmp_path / "kind", 2, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="expected float32"):
        writer.append(np.ones((2, 3), np.complex64))


def test_pages_read_are_released_from_resident_memory(tmp_path):
    rows = 4096  # 64 MiB of float32 rows of 16 KiB
    folder = tmp_path / "mm"
    with MemmapWriter(folder, rows, np.zeros(4096, np.float32)) as w:
        for start in range(0, rows, 512):
            w.append(np.full((512, 4096), start, np.float32))
    x = open_memmap(folder)

    def resident_mib():
        text = Path("/proc/self/status").read_text()
        status = dict(line.split(":", 1) for line in text.splitlines())
        return int(status["RssFile"].split()[0]) / 1024

    before = resident_mib()
    total = float(x.sum(dtype=np.float64))  # touches every page
    touched = resident_mib()
    release_pages(x)
    released = resident_mib()
    assert total == 4096.0 * sum(range(0, rows, 512)) * 512
    assert touched - before > 48 and released - before < 8, (before, touched, released)
