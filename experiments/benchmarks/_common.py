"""Shared pieces of the training benchmarks: data, the MLP, the anchor loops, the roofline."""

from __future__ import annotations

import time

import _torch_runner
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

import gdjax


def load_data(synthetic_n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST training set, flattened to (60000, 784) float32 in [0, 1]; or, with
    ``synthetic_n``, that many random examples (smoke runs where the data set is absent)."""
    if synthetic_n:
        x, y = _torch_runner.synthetic(synthetic_n)
        return x, y.astype(np.int32)
    return gdjax.data.load_fashion_mnist("train", flatten=True)


class MLP(nn.Module):
    """784-H-H-10 with ReLU."""

    hidden: int

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(10)(x)


def flops_per_epoch(hidden: int, n: int) -> float:
    """Matmul FLOPs of one epoch: 2 per multiply-add forward, twice that backward, except that
    the first layer needs no gradient with respect to its input (the data)."""
    return n * (4.0 * 784 * hidden + 6.0 * (hidden * hidden + hidden * 10))


def matmul_gflops(size: int = 1024, reps: int = 10) -> dict[str, float]:
    """Best-of-``reps`` float32 ``size x size`` matmul throughput of XLA and of PyTorch."""
    out = {}
    a = jnp.asarray(np.random.default_rng(0).normal(size=(size, size)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(reps))
    out["xla"] = 2 * size**3 / best / 1e9
    try:
        import torch

        t = torch.randn(size, size)
        torch.mm(t, t)
        best = min(_timed(lambda: torch.mm(t, t)) for _ in range(reps))
        out["torch"] = 2 * size**3 / best / 1e9
    except ImportError:
        pass
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def gdjax_fit(x, y, hidden, epochs, lr=1e-3, seed=0, model=None):
    """Per-epoch seconds of gdjax.fit (the first epoch includes compilation); the model is
    ``MLP(hidden)`` unless one is given."""
    model = model or MLP(hidden)
    params = model.init(jax.random.key(seed), x[:1])

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    res = gdjax.fit(
        loss_fn,
        params,
        optax.adam(lr),
        (x, y),
        batch_size=128,
        epochs=epochs,
        key=jax.random.key(seed),
    )
    return res.epoch_seconds, res.history["loss"]


def flax_loop(x, y, hidden, epochs, lr=1e-3, seed=0, model=None):
    """The idiomatic flax + optax loop of flax's examples: a jitted step called from Python
    over numpy-shuffled host batches (the last partial batch dropped, as there); the model is
    ``MLP(hidden)`` unless one is given."""
    model = model or MLP(hidden)
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=model.init(jax.random.key(seed), x[:1]), tx=optax.adam(lr)
    )

    @jax.jit
    def train_step(state, xb, yb):
        def loss_fn(params):
            logits = state.apply_fn(params, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    rng = np.random.default_rng(seed)
    steps = len(x) // 128
    seconds, losses = [], []
    for _ in range(epochs):
        t = time.perf_counter()
        perms = rng.permutation(len(x))[: steps * 128].reshape(steps, 128)
        total = 0.0
        for perm in perms:
            state, loss = train_step(state, x[perm], y[perm])
            total += loss
        losses.append(float(total) / steps)  # one sync per epoch
        seconds.append(time.perf_counter() - t)
    return np.asarray(seconds), np.asarray(losses)


def torch_loop(x, y, hidden, epochs, lr=1e-3, seed=0, threads=1, synthetic_n=None):
    """PyTorch eager (``torch.optim.Adam``), in a fresh process that does not import JAX: in one
    process PyTorch's OpenMP threads and XLA's thread pool fight over the cores (measured: some
    epochs 10-100x slower). ``x`` and ``y`` are reloaded there from the same files."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_torch_runner.run, (hidden, epochs, lr, seed, threads, synthetic_n))


def steady(seconds: np.ndarray) -> float:
    """Median seconds per epoch, leaving out the first (compilation, warm-up)."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
