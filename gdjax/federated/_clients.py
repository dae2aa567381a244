"""Check the clients' data sets and lay them out for one compiled round.

The clients' examples are concatenated into one array per leaf (no padding in memory); client
``k`` owns rows ``offsets[k] : offsets[k] + counts[k]``. Clients of different sizes are padded
only in index space: every client walks an order of the largest client's length and the rows
past its own count are masked (:mod:`gdjax.federated._local`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np


def leaf_paths(tree: Any) -> list[str]:
    """``jax.tree_util.keystr`` of every leaf, ``""`` for a bare array."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def check_dataset(data: Any, name: str, allow_empty: bool = False) -> int:
    """Check a pytree of finite NumPy/JAX arrays sharing a leading dimension; return it."""
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{name} must be an array or a tuple/pytree of arrays; got no arrays")
    paths = leaf_paths(data)
    sizes = []
    for path, leaf in zip(paths, leaves, strict=True):
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(f"{name}{path} must be a NumPy or JAX array, got {type(leaf).__name__}")
        if leaf.ndim == 0:
            raise ValueError(f"{name}{path} is a scalar; every array needs a leading N axis")
        sizes.append(int(leaf.shape[0]))
    if len(set(sizes)) > 1:
        shapes = ", ".join(
            f"{name}{p}: {tuple(x.shape)}" for p, x in zip(paths, leaves, strict=True)
        )
        raise ValueError(f"{name}: all arrays must share the leading dimension N; got {shapes}")
    if sizes[0] == 0 and not allow_empty:
        raise ValueError(f"{name} has no data (0 examples)")
    for path, leaf in zip(paths, leaves, strict=True):
        if np.issubdtype(leaf.dtype, np.inexact):
            finite = np.isfinite(np.asarray(leaf))
            if not finite.all():
                first = int(np.argwhere(~finite)[0][0])
                raise ValueError(
                    f"{name}{path} contains {int(finite.size - finite.sum())} NaN/inf value(s) "
                    f"(first in example {first}); clean the data before training"
                )
    return sizes[0]


def check_same_layout(data: Any, like: Any, name: str, like_name: str) -> None:
    """``data`` must have ``like``'s tree structure, dtypes and per-example shapes."""
    if jax.tree.structure(data) != jax.tree.structure(like):
        raise ValueError(
            f"{name} has structure {jax.tree.structure(data)} but {like_name} has "
            f"{jax.tree.structure(like)}; every client's data must have the same layout"
        )
    for path, a, b in zip(
        leaf_paths(like), jax.tree.leaves(data), jax.tree.leaves(like), strict=True
    ):
        if np.dtype(a.dtype) != np.dtype(b.dtype):
            raise ValueError(
                f"{name}{path} has dtype {a.dtype} but {like_name}{path} has {b.dtype}"
            )
        if tuple(a.shape[1:]) != tuple(b.shape[1:]):
            raise ValueError(
                f"{name}{path} has per-example shape {tuple(a.shape[1:])} but {like_name}{path} "
                f"has {tuple(b.shape[1:])}"
            )


@dataclass(frozen=True)
class ClientSet:
    """All clients' data, concatenated, with each client's first row and size.

    Attributes:
        data: The clients' arrays concatenated along the first axis (NumPy).
        counts: Examples per client, ``(K,)`` int32.
        offsets: First row of each client in ``data``, ``(K,)`` int32.
        example: Client 0's data (the layout every client shares).
    """

    data: Any
    counts: np.ndarray
    offsets: np.ndarray
    example: Any

    @property
    def num_clients(self) -> int:
        """Number of clients ``K``."""
        return len(self.counts)

    @property
    def largest(self) -> int:
        """Size of the largest client."""
        return int(self.counts.max())

    @property
    def uniform(self) -> bool:
        """Whether every client has the same number of examples."""
        return bool((self.counts == self.counts[0]).all())


def gather_clients(clients: Any) -> ClientSet:
    """Check the clients (a list of data sets of one layout) and concatenate them."""
    if not isinstance(clients, Sequence) or isinstance(clients, str | bytes | tuple):
        raise TypeError(
            "clients must be a list of client data sets (each an array or a tuple/pytree of "
            f"arrays), got {type(clients).__name__} (a tuple reads as one data set, (x, y)); "
            "gdjax.federated.partition.split builds the list"
        )
    if len(clients) == 0:
        raise ValueError("clients is empty; pass at least one client data set")
    counts = []
    for k, client in enumerate(clients):
        counts.append(check_dataset(client, f"clients[{k}]"))
        if k:
            check_same_layout(client, clients[0], f"clients[{k}]", "clients[0]")
    if sum(counts) >= 2**31:
        raise ValueError(f"the clients hold {sum(counts)} examples in all; at most 2**31 - 1")
    data = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *clients)
    counts_arr = np.asarray(counts, np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts_arr)[:-1]]).astype(np.int32)
    return ClientSet(data=data, counts=counts_arr, offsets=offsets, example=clients[0])
