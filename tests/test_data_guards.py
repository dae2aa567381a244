"""Files that try to cost too much or to mislead: gzip bombs, absurd headers, archives that are
too large or truncated, symbolic links out of a folder, CSV cells that are not finite numbers."""

from __future__ import annotations

import gzip
import os
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from gdjax import data
from gdjax.data import DataFileError
from tests.test_data_files import idx_bytes, make_tar
from tests.test_data_text import make_imdb

# --- IDX -------------------------------------------------------------------------------------


def _gzip_bomb(head: bytes, zeros_mib: int) -> bytes:
    """``head`` followed by ``zeros_mib`` MiB of zeros, gzipped (about 1 KB per MiB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    block = bytes(1 << 20)
    parts = [z.compress(head), *(z.compress(block) for _ in range(zeros_mib)), z.flush()]
    return b"".join(parts)


def test_read_idx_gzip_bomb_costs_only_the_announced_size(tmp_path):
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(_gzip_bomb(idx_bytes(np.arange(10, dtype=np.uint8)), zeros_mib=64))
    assert path.stat().st_size < 100_000  # a small file that inflates to 64 MiB
    tracemalloc.start()
    try:
        with pytest.raises(DataFileError, match=r"trailing bytes.*needs 10 data bytes") as info:
            data.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert peak < 4 << 20, f"reading used {peak / 2**20:.0f} MiB"
    # the same header followed by exactly its data reads fine, streamed
    (tmp_path / "ok.gz").write_bytes(gzip.compress(idx_bytes(np.arange(10, dtype=np.uint8))))
    assert data.read_idx(tmp_path / "ok.gz").tolist() == list(range(10))


@pytest.mark.parametrize(
    ("header", "match"),
    [
        # 65536**4 = 2**64 wraps to 0 in int64: today's reader took it for an empty array
        (bytes([0, 0, 8, 4]) + struct.pack(">4I", *[65536] * 4), r"shape \(65536, .*\) overflows"),
        (bytes([0, 0, 8, 4]) + struct.pack(">4I", *[2**32 - 1] * 4), "overflows"),
        (bytes([0, 0, 8, 40]) + struct.pack(">40I", *[1] * 40) + b"\x07", "announces 40 dim"),
        (bytes([0, 0, 8, 255]) + struct.pack(">255I", *[1] * 255), "announces 255 dim"),
    ],
    ids=["2**64 bytes", "2**128 bytes", "40 dims", "255 dims"],
)
def test_read_idx_absurd_headers(tmp_path, header, match):
    path = tmp_path / "absurd.idx"
    path.write_bytes(header)
    with pytest.raises(DataFileError, match=match) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


# --- archives --------------------------------------------------------------------------------


def test_extract_archive_limits_members_and_bytes(tmp_path):
    make_tar(tmp_path / "many.tar.gz", {f"f{i}.txt": b"x" for i in range(5)})
    with pytest.raises(DataFileError, match="more than max_members=4 members") as info:
        data.extract_archive(tmp_path / "many.tar.gz", tmp_path / "t", max_members=4)
    assert "many.tar.gz" in str(info.value)
    assert not (tmp_path / "t").exists()
    assert len(os.listdir(data.extract_archive(tmp_path / "many.tar.gz", tmp_path / "t"))) == 5
    # a 1 MB file of zeros packs into about 1 KB: the limit counts what would be written
    make_tar(tmp_path / "bomb.tar.gz", {"a.bin": bytes(600_000), "b.bin": bytes(600_000)})
    assert (tmp_path / "bomb.tar.gz").stat().st_size < 5_000
    with pytest.raises(
        DataFileError, match=r"more than max_bytes=1000000 bytes \(1200000 up to member 'b.bin'\)"
    ):
        data.extract_archive(tmp_path / "bomb.tar.gz", tmp_path / "u", max_bytes=1_000_000)
    assert not (tmp_path / "u").exists()
    with pytest.raises(ValueError, match="max_bytes must be an int >= 1; got 0"):
        data.extract_archive(tmp_path / "bomb.tar.gz", tmp_path / "u", max_bytes=0)


def test_extract_archive_truncated_or_damaged_gzip_fails_before_writing(tmp_path):
    rng = np.random.default_rng(0)
    make_tar(tmp_path / "a.tar.gz", {"a.bin": rng.bytes(50_000), "b.bin": rng.bytes(50_000)})
    raw = (tmp_path / "a.tar.gz").read_bytes()
    flipped = bytearray(raw)
    flipped[-6] ^= 0xFF  # the CRC-32 of the uncompressed data
    # cutting 8 bytes drops the gzip trailer (CRC, length); 20 also the end of the tar padding
    for name, payload in [("cut8", raw[:-8]), ("cut20", raw[:-20]), ("crc", bytes(flipped))]:
        (tmp_path / f"{name}.tar.gz").write_bytes(payload)
        with pytest.raises(DataFileError, match="not a valid or complete tar archive") as info:
            data.extract_archive(tmp_path / f"{name}.tar.gz", tmp_path / name)
        assert f"{name}.tar.gz" in str(info.value)
        assert not (tmp_path / name).exists()


# --- IMDB ------------------------------------------------------------------------------------


def test_read_imdb_refuses_links_out_of_its_folder(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("a system file, not a review")
    root = make_imdb(tmp_path / "data") / "aclImdb"
    inside = root / "train" / "pos" / "5_8.txt"
    inside.symlink_to(root / "test" / "pos" / "0_10.txt")  # a link within the folder is fine
    texts, _ = data.read_imdb("train", root)
    assert "great great" in texts
    (root / "train" / "neg" / "7_1.txt").symlink_to(secret)
    with pytest.raises(
        DataFileError, match=r"7_1\.txt: leads to .*secret\.txt, outside the IMDB folder"
    ):
        data.read_imdb("train", root)
    (root / "train" / "neg" / "7_1.txt").unlink()
    os.mkfifo(root / "train" / "neg" / "8_2.txt")  # reading it would wait forever
    with pytest.raises(DataFileError, match=r"8_2\.txt: not a regular file"):
        data.read_imdb("train", root)
    outside = tmp_path / "elsewhere"
    (root / "test" / "pos").rename(outside)
    (root / "test" / "pos").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataFileError, match=r"pos: leads to .*elsewhere, outside the IMDB folder"):
        data.read_imdb("test", root)


# --- CSV -------------------------------------------------------------------------------------


def test_load_csv_strips_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfarea,price\n50,150\n80,240\n")
    t = data.load_csv(path, target="price")
    assert t.feature_names == ["area"]
    assert data.load_csv(path, target="area").target_name == "area"


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e400", "-1e309"])
def test_load_csv_refuses_values_that_are_not_finite(tmp_path, cell):
    path = tmp_path / "big.csv"
    path.write_text(f"area,rooms,price\n50,2,150\n80,{cell},240\n")
    with pytest.raises(
        DataFileError, match=f"line 3, column 'rooms': '{cell}' is not a finite number"
    ) as info:
        data.load_csv(path, target="price")
    assert str(path) in str(info.value)


def test_load_csv_refuses_leakage_and_empty_feature_lists(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text("area,rooms,price\n50,2,150\n80,3,240\n")
    with pytest.raises(ValueError, match=r"features include the target 'price' \(label leakage"):
        data.load_csv(path, target="price", features=["area", "price"])
    with pytest.raises(ValueError, match="features is empty"):
        data.load_csv(path, target="price", features=[])
    with pytest.raises(ValueError, match=r"features name \['area'\] more than once"):
        data.load_csv(path, target="price", features=["area", "rooms", "area"])
    (tmp_path / "only.csv").write_text("price\n150\n240\n")
    with pytest.raises(DataFileError, match=r"no feature column: the header has only \['price'\]"):
        data.load_csv(tmp_path / "only.csv", target="price")
