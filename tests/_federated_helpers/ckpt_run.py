"""Federated training with a checkpoint every round; writes the result when it finishes.

Usage: python ckpt_run.py CKPT_DIR OUT_NPZ

The test SIGKILLs it mid-run, then imports :func:`run` to resume it in-process and to train
the same run uninterrupted.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import gdjax

ROUNDS = 20


def run(checkpoint_dir=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x @ rng.normal(size=5) > 0).astype(np.float32)
    clients = gdjax.federated.partition.split((x, y), gdjax.federated.partition.iid(60, 6))

    def loss(p, batch, key):
        keep = jax.random.bernoulli(key, 0.9, batch[0].shape)
        z = (batch[0] * keep) @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - batch[1] * z)

    return gdjax.federated.fit(
        loss,
        {"w": np.zeros(5, np.float32), "b": np.zeros((), np.float32)},
        gdjax.sgd(0.1),
        gdjax.adam(0.05),
        clients,
        rounds=ROUNDS,
        clients_per_round=3,
        local_epochs=2,
        batch_size=4,
        takes_key=True,
        key=jax.random.key(4, impl="rbg"),  # compiles far faster than threefry on XLA:CPU
        validation_data=(x[:20], y[:20]),
        checkpoint_dir=checkpoint_dir,
        keep_checkpoints=2,
    )


if __name__ == "__main__":
    # this file under the name the test imports it by: a checkpoint names the loss's module,
    # and the test resumes this run's checkpoints
    import ckpt_run

    res = ckpt_run.run(sys.argv[1])
    np.savez(
        sys.argv[2],
        **{f"p_{k}": np.asarray(v) for k, v in res.params.items()},
        **{f"h_{k}": v for k, v in res.history.items()},
    )
