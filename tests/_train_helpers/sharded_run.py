"""Train the same model on a 4-device CPU mesh and on one device; save both results.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=4 python sharded_run.py OUT_NPZ
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax

SEEN = []  # (rows, rows per shard, devices) of every batch the compiled programs see


def _record(rows):
    def callback(sharding):
        SEEN.append((rows, sharding.shard_shape((rows, 6))[0], len(sharding.device_set)))

    return callback


def loss_fn(p, batch):
    # reports, when the program is compiled, how XLA lays out the batch inside the step
    jax.debug.inspect_array_sharding(batch[0], callback=_record(batch[0].shape[0]))
    logits = batch[0] @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


def acc(p, batch):
    return jnp.mean(jnp.argmax(batch[0] @ p["w"] + p["b"], -1) == batch[1])


def main(out: str) -> None:
    if jax.device_count() != 4:
        raise SystemExit(f"needs 4 devices (set XLA_FLAGS), found {jax.devices()}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 6)).astype(np.float32)
    y = (x @ rng.normal(size=(6, 3))).argmax(-1).astype(np.int32)
    params = {
        "w": 0.1 * rng.normal(size=(6, 3)).astype(np.float32),
        "b": np.zeros(3, np.float32),
    }
    kw = dict(
        batch_size=16,
        epochs=3,
        key=jax.random.key(0),
        validation_data=(x[:30], y[:30]),
        metrics={"accuracy": acc},
        record_steps=True,
    )
    mesh = jax.make_mesh((4,), ("data",))
    sharded = gdjax.fit(loss_fn, params, optax.adam(0.05), (x, y), mesh=mesh, **kw)
    seen_explicit = sorted(set(SEEN))
    SEEN.clear()
    auto = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    sharded_auto = gdjax.fit(loss_fn, params, optax.adam(0.05), (x, y), mesh=auto, **kw)
    seen_auto = sorted(set(SEEN))
    SEEN.clear()
    single = gdjax.fit(loss_fn, params, optax.adam(0.05), (x, y), **kw)
    n_dev = len(sharded.params["w"].sharding.device_set)
    np.savez(
        out,
        n_dev=n_dev,
        seen_explicit=np.array(seen_explicit),
        seen_auto=np.array(seen_auto),
        seen_single=np.array(sorted(set(SEEN))),
        **{f"s_{k}": np.asarray(v) for k, v in sharded.params.items()},
        **{f"a_{k}": np.asarray(v) for k, v in sharded_auto.params.items()},
        **{f"1_{k}": np.asarray(v) for k, v in single.params.items()},
        **{f"sh_{k}": v for k, v in sharded.history.items()},
        **{f"1h_{k}": v for k, v in single.history.items()},
    )


if __name__ == "__main__":
    main(sys.argv[1])
