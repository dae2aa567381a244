"""Streamed training: compiled chunks of k steps, fed from a data source by a background thread.

When ``data`` is a source (:mod:`gdjax.train.sources`), the data set stays on the host (in
memory, or on disk) and the device sees one *chunk* at a time: the batches of up to ``k``
consecutive steps, stacked into arrays of shape ``(k, batch_size, ...)``. The programs are the
in-memory ones with the gather replaced by indexing the chunk (:func:`steps_program`,
:func:`end_program`); one program serves every chunk length.

The order is the one the in-memory engine draws on the device, from the same key:
``permutation(fold_in(fold_in(key, epoch), 0), N)`` (:func:`gdjax.train.shuffle.permutation`),
computed once per epoch by a small compiled program and copied to the host. Step ``j`` of an
epoch uses examples ``order[j*B : (j+1)*B]`` in both cases, and the loss sees the same values,
so a streamed run gives the same bits as the same run with the data in memory (tested); a run
resumed from a checkpoint continues at the same position of the same order.

Double buffering (:class:`Feed`): while the device trains on chunk ``i``, one background thread
reads chunk ``i + 1`` from the source (one ``source[indices]`` call per chunk), checks it
(:meth:`~gdjax.train.sources.Layout.check`) and copies it to the device. The driver's only
wait is for a chunk that is not ready yet — when reading is slower than training.

On a mesh, each process reads only the rows of each batch that its own devices hold (the batch
axis is split over the mesh's data axis), and the global batch is assembled from the
processes' parts: with ``P`` processes each reads ``1/P`` of the data per epoch. Validation data
is not streamed: it is loaded into device memory once (a source given as ``validation_data`` is
read whole).
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gdjax.train.driver import chunk_plan
from gdjax.train.ema import EMA
from gdjax.train.epoch import (
    constrain,
    epoch_order,
    finish_epoch,
    remainder_step,
    steps_loop,
    take_rows,
)
from gdjax.train.sources import Layout, fingerprint_rows
from gdjax.train.spec import Spec
from gdjax.train.state import TrainState

#: Target size of one chunk's batches (the default ``stream_chunk_steps`` is what fits).
CHUNK_BYTES = 32 << 20
#: Most steps in one chunk by default.
MAX_CHUNK_STEPS = 256


def chunk_steps(spec: Spec, layout: Layout, option: int | None) -> int:
    """Steps per chunk ``k``: ``option``, or as many as fill :data:`CHUNK_BYTES`; at least 1,
    at most the epoch's full batches."""
    full = max(spec.num_full, 1)
    if option is not None:
        return min(option, full)
    per_step = max(spec.batch_size * layout.row_bytes, 1)
    return max(1, min(CHUNK_BYTES // per_step, MAX_CHUNK_STEPS, full))


def _chunk_sharding(sharding: Any, lead: int) -> Any:
    """``sharding`` of one batch, moved behind ``lead`` unsplit leading axes."""
    spec = jax.sharding.PartitionSpec(*([None] * lead), *sharding.spec)
    return jax.sharding.NamedSharding(sharding.mesh, spec)


def _tail_sharding(spec: Spec) -> Any:
    """The remainder batch is split like the others when it divides evenly over the devices,
    else kept whole on each (as in memory)."""
    sharding = spec.batch_sharding
    if spec.remainder % sharding.mesh.shape[sharding.spec[0]]:
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
    return sharding


def chunk_like(spec: Spec, layout: Layout, k: int, members: int | None) -> tuple[Any, Any]:
    """Abstract inputs for one chunk and for the remainder batch (``None`` without one).

    Each is a pair ``(examples, rows)`` (see :func:`steps_program`). On one device the
    examples are the chunk's rows one batch after the other — all members' one after the
    other when each member has its own order (``members``) — and ``rows`` (one row of indices
    per member) says which of them each step takes. On a mesh the examples are ``(k, B, ...)``
    with the batch axis split over the devices, and ``rows`` is ``None``.
    """

    def like(rows: tuple[int, ...], sharding: Any) -> Any:
        leaves = [
            jax.ShapeDtypeStruct((*rows, *s), d, sharding=sharding)
            for s, d in zip(layout.shapes, layout.dtypes, strict=True)
        ]
        return jax.tree.unflatten(layout.treedef, leaves)

    bs, rem = spec.batch_size, spec.remainder
    if spec.batch_sharding is not None:
        if members is not None:
            raise ValueError("a sweep with one seed per member cannot stream over a mesh")
        chunk = (like((k, bs), _chunk_sharding(spec.batch_sharding, 1)), None)
        tail = (like((rem,), _tail_sharding(spec)), None) if rem else None
        return chunk, tail
    m = members or 1
    lead = () if members is None else (members,)

    def rows(count: int) -> Any:
        return jax.ShapeDtypeStruct((*lead, count), jnp.int32)

    chunk = (like((m * k * bs,), None), rows(k * bs))
    tail = (like((m * rem,), None), rows(rem)) if rem else None
    return chunk, tail


def steps_program(
    spec: Spec,
    guarded: bool,
    state: TrainState,
    key: jax.Array,
    hp: Any,
    chunk: tuple[Any, Any],
    order: jax.Array,
    clock: tuple[jax.Array, jax.Array],
    n: jax.Array,
) -> tuple[TrainState, jax.Array]:
    """:func:`gdjax.train.epoch.run_steps` on a chunk ``(examples, rows)`` (``order`` is
    unused: the chunk's examples already come in the epoch's order).

    On one device step ``i`` gathers the examples ``rows[i*B : (i+1)*B]`` (``rows`` is an
    input that holds ``0, 1, ...``): the same operations as the in-memory program's gather, so
    XLA compiles the step the same way and the bits agree. On a mesh the examples are
    ``(k, B, ...)``, each batch split over the devices, and step ``i`` takes ``examples[i]``:
    no device needs another's rows.
    """
    del order
    epoch_key = jax.random.fold_in(key, clock[0])
    examples, rows = chunk
    bs = spec.batch_size

    def batch_at(i: jax.Array) -> Any:
        if rows is None:
            batch = jax.tree.map(
                lambda a: jax.lax.dynamic_index_in_dim(a, i, keepdims=False), examples
            )
            return constrain(batch, spec.batch_sharding)
        idx = jax.lax.dynamic_slice(rows, (i * bs,), (bs,))
        return take_rows(examples, idx, None)

    return steps_loop(spec, guarded, state, epoch_key, hp, batch_at, n)


def end_program(
    spec: Spec,
    guarded: bool,
    state: TrainState,
    key: jax.Array,
    hp: Any,
    tail: Any,
    val_data: Any,
    order: jax.Array,
    clock: tuple[jax.Array, jax.Array],
    *,
    ema: EMA | None = None,
) -> tuple[TrainState, dict, jax.Array]:
    """:func:`gdjax.train.epoch.run_end` with the remainder batch given as ``(examples,
    rows)``."""
    del order
    epoch_key = jax.random.fold_in(key, clock[0])
    ok = jnp.asarray(True)
    if spec.remainder:
        examples, rows = tail
        batch = examples if rows is None else take_rows(examples, rows, None)
        state, ok = remainder_step(spec, guarded, state, batch, epoch_key, hp)
    state, stats = finish_epoch(spec, state, epoch_key, hp, val_data, ema)
    return state, stats, ok


@functools.lru_cache(maxsize=32)
def _order_program(spec: Spec, per_member: bool) -> Any:
    def order(key: jax.Array, epoch: jax.Array) -> jax.Array:
        return epoch_order(spec, key, epoch)

    return jax.jit(jax.vmap(order, in_axes=(0, None)) if per_member else order)


class Stream:
    """A run's data source, with what it takes to feed the run's programs from it.

    Args:
        source: The data source.
        layout: Its examples' layout (:func:`gdjax.train.sources.probe`).
        spec: The run's spec.
        k: Steps per chunk.
        key: The run key (the members' keys when each member has its own order).
        per_member: Each member of a sweep has its own order (its own key).
    """

    def __init__(
        self, source: Any, layout: Layout, spec: Spec, k: int, key: Any, per_member: bool
    ) -> None:
        self.source = source
        self.layout = layout
        self.spec = spec
        self.k = k
        self.per_member = per_member
        self.members = int(key.shape[0]) if per_member else None
        if isinstance(key, jax.Array) and not key.is_fully_addressable:
            key = key.addressable_data(0)  # the order is computed where this process runs
        self.key = key
        self._chunk_like, self._tail_like = chunk_like(spec, layout, k, self.members)
        self._rows: dict[int, Any] = {}
        self._epoch: int | None = None
        self._order: np.ndarray | None = None

    def fingerprint(self) -> list[str]:
        """Per array, a hash of its layout and of a few evenly spaced examples."""
        rows = fingerprint_rows(self.layout.n)
        leaves = self.layout.check(self.source[rows], rows)
        out = []
        for leaf in leaves:
            h = hashlib.sha256(f"stream {self.layout.n} {leaf.shape} {leaf.dtype}".encode())
            h.update(np.ascontiguousarray(leaf).tobytes())
            out.append(h.hexdigest()[:16])
        return out

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's order on the host (``(M, N)`` with one order per member)."""
        if epoch != self._epoch:
            program = _order_program(self.spec, self.per_member)
            self._order = np.asarray(program(self.key, jnp.asarray(epoch, jnp.int32)))
            self._epoch = epoch
        return self._order

    def load(self, epoch: int, pos: int, n: int) -> Any:
        """The device inputs for ``n`` steps from step ``pos`` of ``epoch`` (``n == 0``: the
        remainder batch, or ``None`` without one)."""
        spec = self.spec
        bs = spec.batch_size
        order = self.order(epoch)
        if n == 0:
            if not spec.remainder:
                return None
            idx, slots, like = order[..., spec.num_full * bs :], spec.remainder, self._tail_like
        else:
            idx, slots, like = order[..., pos * bs : (pos + n) * bs], self.k * bs, self._chunk_like
        idx = idx.astype(np.int64)
        if like[1] is None:  # a mesh: (steps, batch) with the batch split over the devices
            if n:
                idx = idx.reshape(n, bs)
            return self._put_sharded(idx, like[0], n and self.k), None
        return self._put(idx, slots), self._rows_of(slots)

    def _read(self, idx: np.ndarray) -> list[np.ndarray]:
        """The examples ``idx`` (any shape), as leaves of shape ``(*idx.shape, ...)``."""
        flat = idx.reshape(-1)
        leaves = self.layout.check(self.source[flat], flat)
        return [a.reshape(*idx.shape, *a.shape[1:]) for a in leaves]

    def _put(self, idx: np.ndarray, slots: int) -> Any:
        """Read ``idx`` (``(used,)`` or ``(M, used)``), each member's rows padded with zeros
        to ``slots``, onto the device as one run of rows."""
        leaves = self._read(idx)
        if idx.shape[-1] != slots:
            padded = []
            for a in leaves:
                full = np.zeros((*idx.shape[:-1], slots, *a.shape[idx.ndim :]), a.dtype)
                full[..., : idx.shape[-1], *([slice(None)] * (a.ndim - idx.ndim))] = a
                padded.append(full)
            leaves = padded
        flat = [a.reshape(-1, *a.shape[idx.ndim :]) for a in leaves]
        return jax.tree.unflatten(self.layout.treedef, jax.device_put(flat))

    def _rows_of(self, slots: int) -> jax.Array:
        """``rows`` for ``slots`` rows per member: member ``m`` takes its own run of rows."""
        if slots not in self._rows:
            rows = np.arange(slots, dtype=np.int32)
            if self.members is not None:
                rows = rows[None, :] + slots * np.arange(self.members, dtype=np.int32)[:, None]
            self._rows[slots] = jax.device_put(rows)
        return self._rows[slots]

    def _put_sharded(self, idx: np.ndarray, like: Any, pad_steps: int) -> Any:
        """Read the rows of ``idx`` that this process's devices hold, and assemble the global
        arrays laid out as ``like`` (steps padded with zeros to ``pad_steps``)."""
        likes = jax.tree.leaves(like)
        sharding = likes[0].sharding
        shape = likes[0].shape[: idx.ndim]
        pieces: dict[tuple, list[np.ndarray]] = {}
        parts: list[list[jax.Array]] = [[] for _ in likes]
        for device, index in sharding.addressable_devices_indices_map(likes[0].shape).items():
            lead = tuple(index[: idx.ndim])
            key = tuple(s.indices(n) for s, n in zip(lead, shape, strict=True))
            if key not in pieces:
                leaves = self._read(idx[lead])
                if pad_steps and leaves[0].shape[0] < pad_steps:
                    leaves = [
                        np.concatenate(
                            [a, np.zeros((pad_steps - a.shape[0], *a.shape[1:]), a.dtype)]
                        )
                        for a in leaves
                    ]
                pieces[key] = leaves
            for i, a in enumerate(pieces[key]):
                parts[i].append(jax.device_put(a, device))
        out = [
            jax.make_array_from_single_device_arrays(x.shape, x.sharding, p)
            for x, p in zip(likes, parts, strict=True)
        ]
        return jax.tree.unflatten(self.layout.treedef, out)

    def feed(self, epoch0: int, pos0: int, epochs: int, periods: tuple[int | None, ...]) -> Feed:
        """A :class:`Feed` for the chunks a driver call will ask for, in order."""
        return Feed(self, schedule(self.spec, self.split, epoch0, pos0, epochs, periods))

    def split(self, plan: list[int]) -> list[int]:
        """Cut a driver's chunk plan into chunks of at most ``k`` steps."""
        out = []
        for n in plan:
            while n > 0:
                out.append(min(n, self.k))
                n -= out[-1]
        return out


def schedule(
    spec: Spec, split: Any, epoch0: int, pos0: int, epochs: int, periods: tuple
) -> Iterator[tuple[int, int, int]]:
    """``(epoch, pos, n)`` of every chunk the driver runs (``n == 0``: the end of the epoch),
    in order: the driver's own plan (:func:`gdjax.train.driver.chunk_plan`), cut to ``k``."""
    for epoch in range(epoch0, epochs):
        pos = pos0 if epoch == epoch0 else 0
        for n in split(chunk_plan(spec, pos, periods)):
            yield epoch, pos, n
            pos += n
        yield epoch, pos, 0


class Feed:
    """Double buffering: the next chunk is read on a background thread while the current one
    trains. :meth:`take` returns a chunk's device arrays, re-raising the reader's errors."""

    def __init__(self, stream: Stream, plan: Iterator[tuple[int, int, int]]) -> None:
        self.stream = stream
        self.split = stream.split
        self._plan = plan
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gdjax-stream")
        self._next: tuple[tuple, concurrent.futures.Future] | None = None
        self._advance()

    def _advance(self) -> None:
        item = next(self._plan, None)
        self._next = None if item is None else (item, self._pool.submit(self.stream.load, *item))

    def take(self, epoch: int, pos: int, n: int) -> Any:
        """The chunk of ``n`` steps from step ``pos`` of ``epoch`` (``0``: the end's batch)."""
        item = (epoch, pos, n)
        if self._next is None or self._next[0] != item:  # off the plan: read it now
            return self.stream.load(*item)
        future = self._next[1]
        self._advance()  # queued behind this one: read while this chunk trains
        return future.result()

    def close(self) -> None:
        """Stop reading ahead (a chunk being read is finished and dropped)."""
        if self._next is not None:
            self._next[1].cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
