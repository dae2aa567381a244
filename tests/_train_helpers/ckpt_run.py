"""Train a small model with step checkpoints; save final params and history to an .npz.

Usage: python ckpt_run.py CHECKPOINT_DIR OUT_NPZ [EPOCHS]
Used by tests/test_checkpoint.py, which SIGKILLs it mid-run, then imports :func:`train` to
resume the run in its own process and to train it uninterrupted.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax

EPOCHS = 5


def loss_fn(p, batch, key):
    h = jax.nn.relu(batch[0] @ p["w1"] + p["b1"])
    h = jnp.where(jax.random.bernoulli(key, 0.8, h.shape), h / 0.8, 0.0)
    logits = h @ p["w2"] + p["b2"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


_rng = np.random.default_rng(0)
X = _rng.normal(size=(50, 5)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)
XV = _rng.normal(size=(11, 5)).astype(np.float32)
YV = (XV[:, 0] > 0).astype(np.int32)
PARAMS = {
    "w1": (0.5 * _rng.normal(size=(5, 16))).astype(np.float32),
    "b1": np.zeros(16, np.float32),
    "w2": (0.5 * _rng.normal(size=(16, 2))).astype(np.float32),
    "b2": np.zeros(2, np.float32),
}


class StartRecorder(gdjax.Callback):
    """Records where training starts: a resumed run starts from a checkpoint's parameters."""

    def on_train_begin(self, run):
        self.epoch = run.epoch
        self.params = {k: np.array(v, copy=True) for k, v in run.params.items()}


def train(ckpt_dir, epochs: int = EPOCHS):
    """The run's result and where it started (a :class:`StartRecorder`)."""
    start = StartRecorder()
    res = gdjax.fit(
        loss_fn,
        PARAMS,
        optax.adam(1e-2),
        (X, Y),
        batch_size=8,
        epochs=epochs,
        # rbg keys compile far faster on XLA:CPU than threefry ones; resuming restores either
        key=jax.random.key(7, impl="rbg"),
        takes_key=True,
        validation_data=(XV, YV),
        record_steps=True,
        early_stopping=gdjax.EarlyStopping(patience=100),
        checkpoint_dir=ckpt_dir,
        checkpoint_every_steps=2,
        keep_checkpoints=2,
        callbacks=[start],
    )
    return res, start


def main(ckpt_dir: str, out: str, epochs: int = EPOCHS) -> None:
    res, _ = train(ckpt_dir, epochs)
    np.savez(
        out,
        **{f"p_{k}": np.asarray(v) for k, v in res.params.items()},
        **{f"h_{k}": v for k, v in res.history.items()},
        steps=res.steps,
    )


if __name__ == "__main__":
    # this file under the name the test gives it: a checkpoint names the loss's module, and the
    # test resumes this run's checkpoints
    import ckpt_run

    ckpt_run.main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
