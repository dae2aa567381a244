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


__all__ = ["put_replicated"]
