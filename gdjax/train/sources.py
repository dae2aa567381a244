"""Data sources: training data read a batch at a time, for data sets larger than memory.

A *source* is any object with random access by index arrays::

    len(source)          -> N, the number of examples
    source[indices]      -> a batch: an array, a tuple or a dict of NumPy arrays, each with
                            len(indices) rows, for a 1-D int64 array ``indices``

Passed as ``data`` to :func:`gdjax.fit` or :func:`gdjax.sweep`, a source is *streamed*: the
engine still draws each epoch's order from the key on the device (the same
:func:`~gdjax.train.shuffle.permutation` as for data in memory), and a background thread
gathers the batches of the next compiled chunk of steps on the host while the device trains on
the current one (:mod:`gdjax.train.streaming`). The same key and data give the same bits as
training with the data in memory.

Sources provided here: :class:`ArraySource` (arrays in host memory, or ``np.memmap`` arrays),
:class:`MemmapSource` (a directory written by :func:`gdjax.data.write_memmap` and the other
converters of :mod:`gdjax.data.memmap`), and :class:`GrainSource` (a ``grain.MapDataset``;
``pip install gdjax[grain]``). Any other object with ``__len__`` and ``__getitem__`` that JAX
treats as a leaf (not a tuple, list or dict of arrays) is used as a source as it is.

Every batch a source returns is checked against the first one it returned (same arrays, dtypes
and per-example shapes, the right number of rows, finite values): a source whose batches
change raises ``ValueError`` or ``TypeError`` naming it, the indices asked for and what
changed.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from gdjax import _checks


class Source:
    """Base class of gdjax's sources (any object with ``__len__`` and ``__getitem__`` works).

    Subclasses implement ``__len__`` and ``__getitem__(indices)``; ``name`` names the source in
    error messages.
    """

    name: str = "source"

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, indices: np.ndarray) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class ArraySource(Source):
    """Arrays in host memory (or ``np.memmap`` arrays), served a batch at a time.

    Args:
        data: An array, a tuple/list or a dict of arrays sharing their first axis N.
        name: How errors name the source.

    Examples:
        >>> import numpy as np
        >>> from gdjax.train.sources import ArraySource
        >>> src = ArraySource((np.arange(10.0), np.arange(10) % 2))
        >>> x, y = src[np.array([3, 1])]
        >>> len(src), x.tolist(), y.tolist()
        (10, [3.0, 1.0], [1, 1])
    """

    def __init__(self, data: Any, name: str = "ArraySource") -> None:
        data = jax.tree.map(lambda a: a if isinstance(a, np.ndarray) else np.asarray(a), data)
        self.n = _checks.data_set(name, data)
        self.data = data
        self.name = name

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, indices: np.ndarray) -> Any:
        return jax.tree.map(lambda a: a[indices], self.data)


class MemmapSource(ArraySource):
    """A memmap directory (written by :func:`gdjax.data.write_memmap`,
    :func:`~gdjax.data.idx_to_memmap` or :func:`~gdjax.data.csv_to_memmap`), read a batch at a
    time.

    Each gather reads only the rows asked for, then releases the mapped pages from the
    process's resident memory (:func:`gdjax.data.release_pages`): a data set many times the
    size of the memory allowed trains with the process staying small.

    Raises:
        FileNotFoundError: ``directory`` is not a memmap directory.
        DataFileError: A file is shorter than its declared length (the message names it).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        from gdjax.data.memmap import open_memmap

        super().__init__(open_memmap(directory), name=f"MemmapSource({os.fspath(directory)!r})")
        self.directory = directory

    def __getitem__(self, indices: np.ndarray) -> Any:
        from gdjax.data.memmap import release_pages

        rows = jax.tree.map(lambda a: a[indices], self.data)
        release_pages(self.data)
        return rows


class GrainSource(Source):
    """A ``grain.MapDataset`` (``pip install gdjax[grain]``): element ``i`` is ``dataset[i]``,
    an array or a tuple/dict of arrays; a batch stacks the elements asked for.

    Grain's own transformations (``map``, ``random_map``) run as the elements are read, on the
    engine's background thread. A dataset that filters elements out (``dataset[i]`` is
    ``None``) cannot be streamed: the engine needs every index of ``[0, len)``.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.name = f"GrainSource({type(dataset).__name__})"

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: np.ndarray) -> Any:
        elements = []
        for i in indices.tolist():
            element = self.dataset[i]
            if element is None:
                raise ValueError(
                    f"{self.name}: element {i} is None (filtered out?); a streamed source must "
                    "return every index in [0, len)"
                )
            elements.append(element)
        return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *elements)


def _is_grain(data: Any) -> bool:
    return any(c.__module__.startswith("grain.") for c in type(data).__mro__)


def as_source(data: Any) -> Source | Any | None:
    """``data`` as a source, or ``None`` when it is arrays (trained in device memory).

    gdjax sources and other objects with ``__len__`` and ``__getitem__`` that JAX treats as a
    leaf are returned as they are; a ``grain.MapDataset`` is wrapped in :class:`GrainSource`.
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, jax.Array | np.ndarray) or data is None:
        return None
    leaves = jax.tree.leaves(data)
    if len(leaves) != 1 or leaves[0] is not data:
        return None  # a tuple, list, dict or other container of arrays
    if _is_grain(data) and hasattr(data, "__getitem__"):
        return GrainSource(data)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return data
    return None


def size(name: str, data: Any) -> int:
    """The number of examples N of ``data``: arrays or a source."""
    source = as_source(data)
    return _checks.data_set(name, data) if source is None else probe(source, name).n


def name_of(source: Any) -> str:
    """How errors name ``source``."""
    return getattr(source, "name", None) or type(source).__name__


@dataclass(frozen=True)
class Layout:
    """The layout of a source's examples: its batches' tree structure, dtypes and shapes."""

    name: str
    n: int
    treedef: Any
    paths: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # per example
    dtypes: tuple[np.dtype, ...]

    @property
    def row_bytes(self) -> int:
        """Bytes of one example (all arrays)."""
        return sum(math.prod(s) * d.itemsize for s, d in zip(self.shapes, self.dtypes, strict=True))

    def stand_in(self) -> Any:
        """Arrays of the data set's shapes and dtypes that use no memory (zeros, broadcast):
        what the engine checks and traces in place of the data."""
        leaves = [
            np.broadcast_to(np.zeros((), d), (self.n, *s))
            for s, d in zip(self.shapes, self.dtypes, strict=True)
        ]
        return jax.tree.unflatten(self.treedef, leaves)

    def describe(self) -> str:
        return ", ".join(
            f"batch{p}: {s} {d}"
            for p, s, d in zip(self.paths, self.shapes, self.dtypes, strict=True)
        )

    def check(self, batch: Any, indices: np.ndarray) -> list[np.ndarray]:
        """The leaves of ``batch`` (what the source returned for ``indices``), checked.

        Raises:
            TypeError: A leaf is not an array of numbers, or has another dtype.
            ValueError: Another structure, shape or number of rows, or NaN/inf values.
        """
        where = f"data source {self.name} returned for indices {_show(indices)}"
        try:
            leaves = self.treedef.flatten_up_to(batch)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{where} a batch of structure {jax.tree.structure(batch)}; its first batch had "
                f"{self.treedef} ({err})"
            ) from None
        out = []
        for path, leaf, shape, dtype in zip(
            self.paths, leaves, self.shapes, self.dtypes, strict=True
        ):
            if not isinstance(leaf, np.ndarray):
                leaf = np.asarray(leaf)
            if leaf.dtype != dtype:
                raise TypeError(
                    f"{where} batch{path} of dtype {leaf.dtype}; its first batch had {dtype} "
                    "(every batch must have the dtypes of the first)"
                )
            if leaf.shape != (len(indices), *shape):
                raise ValueError(
                    f"{where} batch{path} of shape {leaf.shape}; expected "
                    f"{(len(indices), *shape)} (len(indices) rows of the first batch's shape)"
                )
            if leaf.dtype.kind in "fc" and leaf.size and not _finite(leaf):
                bad = np.argwhere(~np.isfinite(leaf))[0][0]
                raise ValueError(
                    f"{where} NaN/inf values in batch{path} (example {int(indices[bad])}); "
                    "clean or impute the data before training"
                )
            out.append(leaf)
        return out


def _finite(a: np.ndarray) -> bool:
    # one reduction: a NaN or an infinity makes the sum non-finite; a non-finite sum of finite
    # values (an overflow) is told apart by the exact check
    return bool(np.isfinite(a.sum())) or bool(np.isfinite(a).all())


def _show(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:4])
    return f"[{shown}{', ...' if len(indices) > 4 else ''}] ({len(indices)} indices)"


def probe(source: Any, label: str = "data") -> Layout:
    """Check ``len(source)`` and read its first examples to learn their layout.

    Raises:
        TypeError: ``len`` is not an int, or the source returns something other than arrays.
        ValueError: The source is empty, or its first batch has the wrong number of rows.
    """
    name = name_of(source)
    try:
        n = len(source)
    except TypeError as err:
        raise TypeError(f"{label}: len() of data source {name} failed: {err}") from err
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"{label}: len(data source {name}) must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"{label}: data source {name} is empty (len 0)")
    indices = np.arange(min(int(n), 2), dtype=np.int64)
    batch = source[indices]
    leaves, treedef = jax.tree.flatten(batch)
    if not leaves:
        raise TypeError(f"{label}: data source {name} returned no arrays for indices [0, 1]")
    arrays = []
    for path, leaf in zip(_checks.leaf_paths(batch), leaves, strict=True):
        a = np.asarray(leaf)
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise TypeError(
                f"{label}: data source {name} returned batch{path} of dtype {a.dtype}; sources "
                "must return arrays of numbers"
            )
        if a.ndim == 0 or a.shape[0] != len(indices):
            raise ValueError(
                f"{label}: data source {name} returned batch{path} of shape {a.shape} for "
                f"{len(indices)} indices; every array needs one row per index"
            )
        arrays.append(a)
    layout = Layout(
        name=name,
        n=int(n),
        treedef=treedef,
        paths=tuple(_checks.leaf_paths(batch)),
        shapes=tuple(a.shape[1:] for a in arrays),
        dtypes=tuple(a.dtype for a in arrays),
    )
    layout.check(batch, indices)
    return layout


def load_all(source: Any, label: str) -> Any:
    """All of a source's examples as arrays in memory (for validation data)."""
    layout = probe(source, label)
    indices = np.arange(layout.n, dtype=np.int64)
    return jax.tree.unflatten(layout.treedef, layout.check(source[indices], indices))


def fingerprint_rows(n: int, count: int = 16) -> np.ndarray:
    """Evenly spaced rows of ``[0, n)``, read to fingerprint a source's values."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))


__all__ = [
    "ArraySource",
    "GrainSource",
    "Layout",
    "MemmapSource",
    "Source",
    "as_source",
    "load_all",
    "probe",
    "size",
]
