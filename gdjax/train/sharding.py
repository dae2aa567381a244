"""Data-parallel training over a ``jax.sharding.Mesh``: batches sharded, everything else replicated.

The training state and the data are replicated on every device of the mesh; inside the compiled
epoch each batch is constrained to be split along its first axis over the mesh's data axis, and
XLA inserts the gradient all-reduce. The same code runs on many hosts after
``jax.distributed.initialize()`` when every host passes the same data.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def data_axis_of(mesh: Any, data_axis: str | None) -> str:
    """Check ``mesh`` and return the name of the axis that batches are split over."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    axis = data_axis if data_axis is not None else mesh.axis_names[0]
    if axis not in mesh.axis_names:
        raise ValueError(f"data_axis {axis!r} is not an axis of the mesh {mesh.axis_names}")
    return axis


def check_divisible(batch_size: int, mesh: Mesh, axis: str) -> None:
    """Full batches must split evenly over the devices of the data axis."""
    devices = mesh.shape[axis]
    if batch_size % devices:
        raise ValueError(
            f"batch_size={batch_size} must be a multiple of the {devices} devices on mesh axis "
            f"{axis!r}"
        )


def batch_sharding(mesh: Mesh, axis: str) -> NamedSharding:
    """The sharding of one batch: its rows split over ``axis``."""
    return NamedSharding(mesh, PartitionSpec(axis))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of an array copied to every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put every leaf of ``tree`` on all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))
