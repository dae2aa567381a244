"""Train a small model with step checkpoints; save final params and history to an .npz.

Usage: python ckpt_run.py CHECKPOINT_DIR OUT_NPZ [EPOCHS]
Used by tests/test_checkpoint.py, which SIGKILLs it mid-run and starts it again.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax


def loss_fn(p, batch, key):
    h = jax.nn.relu(batch[0] @ p["w1"] + p["b1"])
    h = jnp.where(jax.random.bernoulli(key, 0.8, h.shape), h / 0.8, 0.0)
    logits = h @ p["w2"] + p["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


def main(ckpt_dir: str, out: str, epochs: int = 8) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    xv = rng.normal(size=(11, 5)).astype(np.float32)
    yv = (xv[:, 0] > 0).astype(np.int32)
    k1, k2 = jax.random.split(jax.random.key(1))
    params = {
        "w1": 0.5 * jax.random.normal(k1, (5, 16)),
        "b1": jnp.zeros(16),
        "w2": 0.5 * jax.random.normal(k2, (16, 2)),
        "b2": jnp.zeros(2),
    }
    res = gdjax.fit(
        loss_fn,
        params,
        optax.adam(1e-2),
        (x, y),
        batch_size=8,
        epochs=epochs,
        key=jax.random.key(7),
        takes_key=True,
        validation_data=(xv, yv),
        record_steps=True,
        early_stopping=gdjax.EarlyStopping(patience=100),
        checkpoint_dir=ckpt_dir,
        checkpoint_every_steps=2,
        keep_checkpoints=2,
    )
    np.savez(
        out,
        **{f"p_{k}": np.asarray(v) for k, v in res.params.items()},
        **{f"h_{k}": v for k, v in res.history.items()},
        steps=res.steps,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
