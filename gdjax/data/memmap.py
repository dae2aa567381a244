"""Data sets on disk as memory maps: converted once, then read a batch at a time.

A memmap directory holds one standard NumPy ``.npy`` file per array and a small JSON file
naming them::

    directory/
        gdjax-memmap.json   {"format": 1, "n": N, "kind": "tuple", "names": ["0", "1"],
                             "files": ["0.npy", "1.npy"]}
        0.npy  1.npy        the arrays, each with N rows (any NumPy tool opens them)

The JSON file is written last, so a directory whose conversion was interrupted has none and is
refused by :func:`open_memmap`. Writers append rows in chunks through the page cache, never
holding the data set in memory: :func:`write_memmap` (arrays, or anything sliceable such as
another memmap), :func:`idx_to_memmap` (MNIST-style IDX files, gzipped or not),
:func:`csv_to_memmap` (a numeric CSV file) and :class:`MemmapWriter` (rows you generate).

:func:`open_memmap` maps the files read-only and checks each against its header: a file
shorter than its declared length (an interrupted copy) raises :class:`DataFileError` naming
it. Training streams the arrays with :class:`gdjax.train.sources.MemmapSource`.
"""

from __future__ import annotations

import csv
import json
import math
import mmap
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gdjax.data._files import DataFileError, as_path, open_stream, read_up_to
from gdjax.data.idx import read_idx_header
from gdjax.data.tabular import parse_row, read_header

__all__ = [
    "LAYOUT_FILE",
    "MemmapWriter",
    "csv_to_memmap",
    "idx_to_memmap",
    "open_memmap",
    "release_pages",
    "write_memmap",
]

#: The JSON file that names the arrays of a memmap directory (written last).
LAYOUT_FILE = "gdjax-memmap.json"
FORMAT_VERSION = 1
#: Bytes written per chunk by the converters.
CHUNK_BYTES = 64 << 20


def _structure(data: Any) -> tuple[str, list[str], list[Any]]:
    """``(kind, names, arrays)`` of an array, a tuple/list of arrays or a dict of arrays."""
    if isinstance(data, Mapping):
        for k in data:
            if not isinstance(k, str) or not k.isidentifier():
                raise ValueError(f"dict keys must be identifiers (they name files), got {k!r}")
        return "dict", list(data), list(data.values())
    if isinstance(data, tuple | list):
        return "tuple", [str(i) for i in range(len(data))], list(data)
    return "array", ["0"], [data]


def _assemble(kind: str, names: list[str], arrays: list[Any]) -> Any:
    if kind == "dict":
        return dict(zip(names, arrays, strict=True))
    if kind == "tuple":
        return tuple(arrays)
    return arrays[0]


class MemmapWriter:
    """Write a data set of ``n`` rows into a memmap directory, a chunk of rows at a time.

    Args:
        directory: Where to write (created; must not hold a data set unless ``overwrite``).
        n: Number of rows (examples).
        like: The layout of one row: an array, a tuple of arrays or a dict of arrays, whose
            shapes and dtypes are those of one example (e.g. ``(np.zeros((28, 28), np.uint8),
            np.int32(0))``).
        overwrite: Replace a data set already in ``directory``.

    Rows are appended in order with :meth:`append`; :meth:`close` checks that all ``n`` were
    written and then writes the layout file that makes the directory readable.

    Examples:
        >>> import tempfile, numpy as np
        >>> from gdjax.data import MemmapWriter, open_memmap
        >>> folder = tempfile.mkdtemp()
        >>> with MemmapWriter(folder, 5, (np.zeros(3, np.float32), np.int32(0))) as w:
        ...     w.append((np.ones((2, 3), np.float32), np.arange(2, dtype=np.int32)))
        ...     w.append((np.zeros((3, 3), np.float32), np.arange(3, dtype=np.int32)))
        >>> x, y = open_memmap(folder)
        >>> x.shape, y.tolist()
        ((5, 3), [0, 1, 0, 1, 2])
    """

    def __init__(
        self, directory: str | os.PathLike, n: int, like: Any, *, overwrite: bool = False
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        self.directory = as_path("directory", directory)
        self.n = int(n)
        self.kind, self.names, rows = _structure(like)
        rows = [np.asarray(r) for r in rows]
        for name, r in zip(self.names, rows, strict=True):
            if r.dtype == object or r.dtype.hasobject:
                raise TypeError(f"array {name!r} has dtype object; memmaps hold numbers")
        self.shapes = [r.shape for r in rows]
        self.dtypes = [r.dtype.newbyteorder("=") for r in rows]
        if self.directory.exists() and any(self.directory.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"{self.directory} is not empty; pass overwrite=True to replace it, or "
                    "another directory"
                )
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.files = [f"{name}.npy" for name in self.names]
        self._handles = []
        for file, shape, dtype in zip(self.files, self.shapes, self.dtypes, strict=True):
            path = self.directory / file
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(self.n, *shape))
            handle = open(path, "r+b")  # noqa: SIM115 - closed in close()
            _read_header(handle)  # leaves the handle at the first data byte
            self._handles.append(handle)
        self.written = 0

    def __enter__(self) -> MemmapWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._close_files()

    def append(self, rows: Any) -> None:
        """Write the next rows: the layout of ``like`` with a leading axis of rows."""
        kind, names, arrays = _structure(rows)
        if (kind, names) != (self.kind, self.names):
            raise ValueError(
                f"rows must be laid out like the writer's rows ({self.kind} {self.names}), got "
                f"{kind} {names}"
            )
        arrays = [np.asarray(a) for a in arrays]
        count = {a.shape[0] if a.ndim else -1 for a in arrays}
        if len(count) != 1 or -1 in count:
            raise ValueError(
                f"every array of rows needs the same leading number of rows, got shapes "
                f"{[a.shape for a in arrays]}"
            )
        (m,) = count
        if self.written + m > self.n:
            raise ValueError(f"{self.written + m} rows written, more than n={self.n}")
        for name, a, shape, dtype, handle in zip(
            self.names, arrays, self.shapes, self.dtypes, self._handles, strict=True
        ):
            if a.shape[1:] != shape:
                raise ValueError(f"rows of {name!r} have shape {a.shape[1:]}, expected {shape}")
            if not np.can_cast(a.dtype, dtype, "same_kind"):
                raise TypeError(f"rows of {name!r} have dtype {a.dtype}, expected {dtype}")
            handle.write(np.ascontiguousarray(a, dtype).tobytes())
        self.written += m

    def _close_files(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []

    def close(self) -> None:
        """Check that all rows were written, then write the layout file."""
        if not self._handles:
            return
        for handle in self._handles:
            handle.flush()
            os.fsync(handle.fileno())
        self._close_files()
        if self.written != self.n:
            raise ValueError(
                f"only {self.written} of n={self.n} rows were written to {self.directory}; the "
                "directory is left unreadable"
            )
        layout = {
            "format": FORMAT_VERSION,
            "n": self.n,
            "kind": self.kind,
            "names": self.names,
            "files": self.files,
        }
        tmp = self.directory / (LAYOUT_FILE + ".tmp")
        tmp.write_text(json.dumps(layout))
        os.replace(tmp, self.directory / LAYOUT_FILE)


def _read_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of an open ``.npy`` file, left at its data."""
    version = np.lib.format.read_magic(f)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    return read(f)


def _rows_per_chunk(row_bytes: int) -> int:
    return max(1, CHUNK_BYTES // max(row_bytes, 1))


def write_memmap(directory: str | os.PathLike, data: Any, *, overwrite: bool = False) -> Path:
    """Write arrays (an array, a tuple or a dict of arrays sharing their first axis) to a
    memmap directory, a chunk at a time; returns the directory.

    ``data`` may itself live on disk (a ``np.memmap``, an ``h5py`` dataset): only one chunk is
    in memory at a time.

    Examples:
        >>> import tempfile, numpy as np
        >>> from gdjax.data import open_memmap, write_memmap
        >>> folder = write_memmap(tempfile.mkdtemp(), {"x": np.eye(3, dtype=np.float32)})
        >>> x = open_memmap(folder)["x"]
        >>> x[1].tolist()
        [0.0, 1.0, 0.0]
    """
    kind, names, arrays = _structure(data)
    sizes = {int(a.shape[0]) for a in arrays}
    if len(sizes) != 1:
        raise ValueError(
            f"arrays must share their first axis, got shapes {[a.shape for a in arrays]}"
        )
    (n,) = sizes
    like = _assemble(kind, names, [np.zeros(a.shape[1:], a.dtype) for a in arrays])
    row_bytes = sum(math.prod(a.shape[1:]) * np.dtype(a.dtype).itemsize for a in arrays)
    step = _rows_per_chunk(row_bytes)
    with MemmapWriter(directory, n, like, overwrite=overwrite) as writer:
        for start in range(0, n, step):
            writer.append(_assemble(kind, names, [a[start : start + step] for a in arrays]))
    return writer.directory


def idx_to_memmap(
    directory: str | os.PathLike,
    images: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Convert IDX files (MNIST's format, gzipped or not) to a memmap directory.

    The arrays keep the file's element type (native byte order): ``images`` as is, e.g. uint8
    ``(N, 28, 28)``, and ``labels`` as ``(N,)`` — a tuple ``(images, labels)``, or the images
    alone. The files are decompressed and copied a chunk at a time.

    Raises:
        DataFileError: A bad header, a file shorter or longer than its header announces, or
            label and image counts that differ.
    """
    paths = [as_path("images", images)] + ([as_path("labels", labels)] if labels else [])
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"IDX file not found: {p}")
    streams = [open_stream(p) for p in paths]
    try:
        headers = [read_idx_header(f, p) for f, p in zip(streams, paths, strict=True)]
        counts = [shape[0] for shape, _ in headers]
        if len(set(counts)) != 1:
            raise DataFileError(
                paths[1], f"{counts[1]} labels for {counts[0]} images in {paths[0]}"
            )
        n = counts[0]
        like = [np.zeros(shape[1:], dtype.newbyteorder("=")) for shape, dtype in headers]
        row_bytes = [math.prod(shape[1:]) * dtype.itemsize for shape, dtype in headers]
        step = _rows_per_chunk(sum(row_bytes))
        with MemmapWriter(
            directory, n, tuple(like) if labels else like[0], overwrite=overwrite
        ) as writer:
            for start in range(0, n, step):
                m = min(step, n - start)
                parts = []
                for f, p, (shape, dtype), size in zip(
                    streams, paths, headers, row_bytes, strict=True
                ):
                    raw = read_up_to(f, p, m * size)
                    if len(raw) < m * size:
                        raise DataFileError(
                            p, f"truncated: header shape {shape} needs more data bytes"
                        )
                    parts.append(np.frombuffer(raw, dtype).reshape(m, *shape[1:]))
                writer.append(tuple(parts) if labels else parts[0])
            for f, p in zip(streams, paths, strict=True):
                if read_up_to(f, p, 1):
                    raise DataFileError(p, "trailing bytes after the size its header announces")
    finally:
        for f in streams:
            f.close()
    return writer.directory


def csv_to_memmap(
    directory: str | os.PathLike,
    path: str | os.PathLike,
    target: str,
    features: Iterable[str] | None = None,
    *,
    delimiter: str = ",",
    overwrite: bool = False,
) -> Path:
    """Convert a numeric CSV file (a header row naming the columns) to a memmap directory
    holding ``(x, y)``: float32 features ``(N, F)`` and targets ``(N,)``.

    The file is read twice (once to count rows) and parsed a chunk of rows at a time, with the
    checks of :func:`gdjax.data.load_csv` (every cell a finite number, named on error).
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    features = None if features is None else list(features)

    def rows():
        with path.open(newline="", encoding="utf-8-sig") as f:
            for line, row in enumerate(csv.reader(f, delimiter=delimiter), start=1):
                if row:
                    yield line, row

    try:
        it = rows()
        first = next(it, None)
        if first is None:
            raise DataFileError(path, "empty file: expected a header row naming the columns")
        header, features = read_header(path, first[1], target, features)
        n = sum(1 for _ in it)
        if n == 0:
            raise DataFileError(path, "no data rows after the header")
        cols = [header.index(c) for c in [*features, target]]
        step = _rows_per_chunk(4 * len(cols))
        like = (np.zeros(len(features), np.float32), np.float32(0))
        with MemmapWriter(directory, n, like, overwrite=overwrite) as writer:
            it = rows()
            next(it)
            block = np.empty((step, len(cols)), np.float64)
            filled = 0
            for line, row in it:
                parse_row(path, line, row, header, cols, block[filled])
                filled += 1
                if filled == step:
                    writer.append((block[:, :-1], block[:, -1]))
                    filled = 0
            if filled:
                writer.append((block[:filled, :-1], block[:filled, -1]))
    except UnicodeDecodeError as e:
        raise DataFileError(path, f"not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise DataFileError(path, f"not valid CSV ({e})") from e
    return writer.directory


def _map_npy(path: Path, n: int) -> np.ndarray:
    """Map one ``.npy`` file read-only, checking it holds the rows its header declares."""
    if not path.is_file():
        raise DataFileError(path, "missing: the layout file names it")
    with open(path, "rb") as f:
        try:
            shape, fortran, dtype = _read_header(f)
        except ValueError as err:
            raise DataFileError(path, f"not a .npy file ({err})") from err
        offset = f.tell()
        if fortran or dtype.hasobject:
            raise DataFileError(path, "a memmap needs a C-ordered array of numbers")
        if not shape or shape[0] != n:
            raise DataFileError(path, f"holds shape {shape}, but the layout declares {n} rows")
        need = offset + math.prod(shape) * dtype.itemsize
        size = os.fstat(f.fileno()).st_size
        if size < need:
            raise DataFileError(
                path,
                f"shorter than its declared length: shape {shape} of {dtype} needs {need} "
                f"bytes, the file has {size} (an interrupted write or copy?)",
            )
        if math.prod(shape) == 0:
            return np.zeros(shape, dtype)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype, math.prod(shape), offset).reshape(shape)


def open_memmap(directory: str | os.PathLike) -> Any:
    """The arrays of a memmap directory, mapped read-only (an array, a tuple or a dict).

    Indexing them reads only the rows asked for. Each file is checked against its header and
    the layout file before it is mapped.

    Raises:
        FileNotFoundError: ``directory`` has no layout file (not a memmap directory, or its
            conversion was interrupted).
        DataFileError: A file is missing, is not a ``.npy`` file, or is shorter than its
            declared length; the message names it.
    """
    directory = as_path("directory", directory)
    layout_path = directory / LAYOUT_FILE
    if not layout_path.is_file():
        raise FileNotFoundError(
            f"{directory} holds no {LAYOUT_FILE}: not a memmap directory, or its conversion "
            "was interrupted (write it again with gdjax.data.write_memmap)"
        )
    try:
        layout = json.loads(layout_path.read_text())
        fmt, n, kind = layout["format"], int(layout["n"]), layout["kind"]
        names, files = list(layout["names"]), list(layout["files"])
    except (ValueError, KeyError, TypeError) as err:
        raise DataFileError(layout_path, f"unreadable layout ({err})") from err
    if fmt != FORMAT_VERSION:
        raise DataFileError(layout_path, f"format {fmt}; this gdjax reads {FORMAT_VERSION}")
    arrays = [_map_npy(directory / file, n) for file in files]
    return _assemble(kind, names, arrays)


def release_pages(arrays: Any) -> None:
    """Drop the pages of memory-mapped arrays from this process's resident memory.

    The pages stay in the operating system's file cache (reading them again costs no disk
    access while they are there) but no longer count in the process's resident set, so reading
    a data set many times the size of the memory allowed keeps the process small. Arrays that
    are not mapped by :func:`open_memmap` are left alone.
    """
    _, _, leaves = _structure(arrays)
    for a in leaves:
        base = getattr(a, "base", None)
        while isinstance(base, np.ndarray | memoryview):  # views of the mapped buffer
            base = base.obj if isinstance(base, memoryview) else base.base
        if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            base.madvise(mmap.MADV_DONTNEED)
