"""Federated rounds with the clients split over a 4-device CPU mesh and on one device.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=4 python sharded_run.py OUT_NPZ
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import gdjax

SEEN = []  # (devices, replicated?) of the clients' batches as XLA laid them out


def loss_fn(p, batch):
    def record(sharding):
        SEEN.append((len(sharding.device_set), sharding.is_fully_replicated))

    jax.debug.inspect_array_sharding(batch[0], callback=record)
    return jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)


def main(out: str) -> None:
    if jax.device_count() != 4:
        raise SystemExit(f"needs 4 devices (set XLA_FLAGS), found {jax.devices()}")
    rng = np.random.default_rng(0)
    sizes = [7, 9, 8, 6, 10, 8, 5, 9]
    clients = [
        (rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=n).astype(np.float32))
        for n in sizes
    ]
    params = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
    kw = dict(rounds=3, clients_per_round=4, local_epochs=2, batch_size=4, key=jax.random.key(0))
    opt = gdjax.sgd(0.1), gdjax.adam(0.05)
    sharded = gdjax.federated.fit(
        loss_fn, params, *opt, clients, mesh=jax.make_mesh((4,), ("c",)), **kw
    )
    seen_sharded = sorted(set(SEEN))
    SEEN.clear()
    single = gdjax.federated.fit(loss_fn, params, *opt, clients, **kw)
    np.savez(
        out,
        n_dev=len(sharded.params["w"].sharding.device_set),
        seen_sharded=np.array(seen_sharded),
        seen_single=np.array(sorted(set(SEEN))),
        **{f"s_{k}": np.asarray(v) for k, v in sharded.params.items()},
        **{f"1_{k}": np.asarray(v) for k, v in single.params.items()},
        s_clients=sharded.history["clients"],
        one_clients=single.history["clients"],
    )


if __name__ == "__main__":
    main(sys.argv[1])
