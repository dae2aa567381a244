"""Training over several JAX processes (several hosts, or several processes of one machine).

Every process runs the same ``fit`` call after ``jax.distributed.initialize()``, with a
``mesh`` over all processes' devices. The training state is replicated on every device; each
batch is split over the mesh's data axis, so each process holds its rows of every batch. With
``data`` a source (:mod:`gdjax.train.sources`), each process *reads* only those rows
(:mod:`gdjax.train.streaming`), a ``1/P`` share of the data per epoch for ``P`` processes; with
arrays, every process passes the same arrays.

Checkpoints: every process takes part in each save (orbax's protocol), process 0 writes the
files and holds the directory's lock, and every process restores from the same directory when
the run is started again — ``checkpoint_dir`` must be a path all processes see (a shared file
system). See ``docs/multihost.md`` for launching on a cluster.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from gdjax.train import sharding as shard_lib
from gdjax.train.sources import as_source


def put_replicated(tree: Any, shardings: Any) -> Any:
    """Put host arrays, equal on every process, where ``shardings`` say.

    ``jax.device_put`` does this too, but across processes it first checks that the values
    agree with an equality that NaN fails (a checkpointed state holds NaN on purpose: the
    losses of steps not run yet); each process here builds its own shards instead.
    """

    def put(x: Any, sharding: Any) -> jax.Array:
        if sharding.is_fully_addressable:
            return jax.device_put(x, sharding)
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree, shardings)


def sweep_placement(
    mesh: Any, member_axis: str | None, data_axis: str | None, data: Any, groups: dict
) -> dict[str, Any]:
    """``start_run``'s placement arguments for a sweep over ``mesh`` (``{}`` without one):
    members split over ``member_axis``, batches over ``data_axis`` if given, the rest
    replicated. ``groups`` maps each batch size to its members' indices.

    Raises:
        ValueError: An axis not in the mesh, a group whose member count does not divide over
            ``member_axis``, a batch size that does not divide over ``data_axis``, or data
            given as a source (a sweep over a mesh trains data in memory).
    """
    if mesh is None:
        if member_axis is not None or data_axis is not None:
            raise ValueError("member_axis and data_axis need a mesh")
        return {}
    axis = shard_lib.data_axis_of(mesh, member_axis)
    # the members' gathers are laid out by XLA's propagation (explicit axes would need every
    # indexing inside the vmapped programs to name its output sharding)
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    mesh = jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)
    if as_source(data) is not None:
        raise ValueError(
            "a sweep over a mesh trains data in memory; pass arrays (a streamed sweep runs on "
            "one device)"
        )
    size = mesh.shape[axis]
    for bs, idx in groups.items():
        if len(idx) % size:
            raise ValueError(
                f"the {len(idx)} members of batch size {bs} must be a multiple of the {size} "
                f"devices on mesh axis {axis!r} (member_axis)"
            )
    batch = None
    if data_axis is not None:
        shard_lib.data_axis_of(mesh, data_axis)
        if data_axis == axis:
            raise ValueError(f"data_axis and member_axis are both {axis!r}; use two mesh axes")
        for bs in groups:
            shard_lib.check_divisible(bs, mesh, data_axis)
        batch = shard_lib.batch_sharding(mesh, data_axis)
    return {
        "place": lambda tree: shard_lib.replicate(tree, mesh),
        "placement_key": (mesh, axis, data_axis),
        "batch_sharding": batch,
        "replicated": shard_lib.replicated(mesh),
        "member_sharding": NamedSharding(mesh, PartitionSpec(axis)),
    }


__all__ = ["put_replicated", "sweep_placement"]
