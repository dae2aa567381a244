"""A small run shared by tests/test_stream.py: the same data, loss and options in memory and
streamed. As a script it trains streamed from a memmap directory with step checkpoints and saves
the result (tests/test_stream.py SIGKILLs it mid-run and resumes the run in its own process).

Usage: python stream_run.py MEMMAP_DIR CHECKPOINT_DIR OUT_NPZ
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from gdjax.train.sources import MemmapSource

_rng = np.random.default_rng(0)
X = _rng.normal(size=(203, 6)).astype(np.float32)  # 12 batches of 16 and a remainder of 11
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int32)
PARAMS = {
    "w1": (0.5 * _rng.normal(size=(6, 8))).astype(np.float32),
    "w2": (0.5 * _rng.normal(size=(8, 2))).astype(np.float32),
}


def loss_fn(p, batch, key):
    h = jax.nn.relu(batch[0] @ p["w1"])
    h = jnp.where(jax.random.bernoulli(key, 0.8, h.shape), h / 0.8, 0.0)  # dropout
    return optax.softmax_cross_entropy_with_integer_labels(h @ p["w2"], batch[1]).mean()


OPTIONS = dict(
    batch_size=16,
    key=jax.random.key(7, impl="rbg"),  # rbg keys compile far faster than threefry on XLA:CPU
    takes_key=True,
    validation_data=(X[:40], Y[:40]),
    record_steps=True,
    stream_chunk_steps=5,
)


EPOCHS = 3


def train(data, epochs=EPOCHS, **extra):
    options = {**OPTIONS, **extra}
    return gdjax.fit(loss_fn, PARAMS, gdjax.adam(1e-2), data, epochs=epochs, **options)


def flat(res) -> dict:
    """Parameters, optimizer state and history as one dict of arrays."""
    out = {f"p{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(res.params))}
    out |= {f"o{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(res.opt_state))}
    return out | {f"h_{k}": v for k, v in res.history.items()}


def train_checkpointed(memmap_dir, ckpt_dir, **extra):
    """The run the script trains: :func:`train` streamed from a memmap directory, checkpointed."""
    return train(
        MemmapSource(memmap_dir),
        checkpoint_dir=ckpt_dir,
        checkpoint_every_steps=2,
        keep_checkpoints=2,
        **extra,
    )


def main(memmap_dir: str, ckpt_dir: str, out: str) -> None:
    np.savez(out, **flat(train_checkpointed(memmap_dir, ckpt_dir)))


if __name__ == "__main__":
    # this file under the name the test imports it by: a checkpoint names the loss's module,
    # and the test resumes this run's checkpoints
    import stream_run

    stream_run.main(*sys.argv[1:4])
