"""The runners of ``bench_engine.py``, each a whole training call as its users would write it.

Every runner takes the same NumPy arrays a user holds after reading the files and returns the
call's wall time, its epochs' times and the last epoch's loss. Run as a script, it times one
runner in a fresh process (a *cold* call: compilation included) and prints a JSON line:

    python _engine_runners.py cold RUNNER HIDDEN EPOCHS [--synthetic N]

The JAX anchors are written as their best users would: the flax + optax loop jits its step at
module level with ``donate_argnums`` and does no eager work per step; the hand-written epoch is
one jitted ``lax.scan`` over data shuffled on the device. PyTorch runners never import JAX
(``_torch_runner.py``).
"""

from __future__ import annotations

import functools
import json
import sys
import time

import numpy as np

BATCH = 128


def load(synthetic_n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's training set as (60000, 784) float32 in [0, 1] and int32 labels."""
    import _torch_runner

    x, y = _torch_runner.load(synthetic_n)
    return x, y.astype(np.int32)


@functools.cache
def _mlp(hidden: int):
    """One model per size for the whole process, as a script defines it once."""
    import flax.linen as nn

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(hidden)(x))
            x = nn.relu(nn.Dense(hidden)(x))
            return nn.Dense(10)(x)

    return MLP()


@functools.cache
def _loss(hidden: int):
    """The loss, defined once per model as a script does."""
    import optax

    model = _mlp(hidden)

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    return loss_fn


def gdjax_fit(x, y, hidden, epochs, lr=1e-3, seed=0):
    """``gdjax.fit`` on the NumPy arrays (it moves them to the device itself)."""
    import jax

    import gdjax

    model, loss_fn = _mlp(hidden), _loss(hidden)
    t = time.perf_counter()
    params = model.init(jax.random.key(seed), x[:1])
    res = gdjax.fit(
        loss_fn, params, gdjax.adam(lr), (x, y), batch_size=BATCH, epochs=epochs,
        key=jax.random.key(seed),
    )  # fmt: skip
    jax.block_until_ready(res.params)
    return time.perf_counter() - t, list(res.epoch_seconds), float(res.history["loss"][-1])


@functools.cache
def _flax_step():
    import jax
    import optax

    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(state, xb, yb):
        def loss_fn(params):
            logits = state.apply_fn(params, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    return train_step


def flax_loop(x, y, hidden, epochs, lr=1e-3, seed=0, tx=None):
    """The idiomatic flax + optax loop (flax's examples): a jitted step called from Python over
    NumPy-shuffled host batches, the last partial batch dropped, one sync per epoch.

    ``tx``: an ``optax.inject_hyperparams(optax.adam)`` shared by several calls, whose
    ``learning_rate`` is set to ``lr`` (the step then compiles once for all of them);
    default: a new ``optax.adam(lr)``."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax.training import train_state

    model = _mlp(hidden)
    t = time.perf_counter()
    state = train_state.TrainState.create(
        apply_fn=model.apply,
        params=model.init(jax.random.key(seed), x[:1]),
        tx=optax.adam(lr) if tx is None else tx,
    )
    if tx is not None:
        state.opt_state.hyperparams["learning_rate"] = jnp.asarray(lr)
    step = _flax_step()
    rng = np.random.default_rng(seed)
    steps = len(x) // BATCH
    seconds, loss = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        perms = rng.permutation(len(x))[: steps * BATCH].reshape(steps, BATCH)
        total = 0.0
        for idx in perms:
            state, batch_loss = step(state, x[idx], y[idx])
            total += batch_loss
        loss = float(total) / steps
        seconds.append(time.perf_counter() - t0)
    jax.block_until_ready(state.params)
    return time.perf_counter() - t, seconds, loss


@functools.cache
def _scan_epoch(n: int):
    import jax
    import optax

    steps = n // BATCH

    @functools.partial(jax.jit, static_argnums=0, donate_argnums=(1, 2))
    def epoch(apply_fn, params, opt_state, x, y, key, lr):
        tx = optax.adam(lr)
        order = jax.random.permutation(key, n)[: steps * BATCH].reshape(steps, BATCH)

        def step(carry, idx):
            params, opt_state = carry

            def loss_fn(p):
                logits = apply_fn(p, x[idx])
                return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), order)
        return params, opt_state, losses.mean()

    return epoch


def scan_epoch(x, y, hidden, epochs, lr=1e-3, seed=0):
    """The strongest JAX anchor: one jitted ``lax.scan`` epoch over the data on the device,
    shuffled there with ``jax.random.permutation``, the last partial batch dropped, no checks."""
    import jax
    import optax

    model = _mlp(hidden)
    t = time.perf_counter()
    xd, yd = jax.device_put((x, y))
    params = model.init(jax.random.key(seed), x[:1])
    opt_state = optax.adam(lr).init(params)
    epoch = _scan_epoch(len(x))
    key = jax.random.key(seed)
    seconds, loss = [], 0.0
    for e in range(epochs):
        t0 = time.perf_counter()
        params, opt_state, loss = epoch(
            model.apply, params, opt_state, xd, yd, jax.random.fold_in(key, e), lr
        )
        loss = float(loss)
        seconds.append(time.perf_counter() - t0)
    return time.perf_counter() - t, seconds, loss


def torch_runner(threads: int, compiled: bool):
    """PyTorch in a fresh process (never with JAX in it): eager with fused Adam, or compiled."""

    def run(x, y, hidden, epochs, lr=1e-3, seed=0, synthetic_n=None):
        import multiprocessing

        import _torch_runner

        args = (hidden, epochs, lr, seed, threads, synthetic_n, compiled)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_torch_runner.timed_call, args)

    return run


def write_result(out, args, results: dict, report: str) -> None:
    """Write a benchmark's raw results as JSON, with the date, the machine and the versions."""
    import json
    import os
    import platform
    from pathlib import Path

    import jax

    import gdjax

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "versions": {"jax": jax.__version__, "gdjax": gdjax.__version__},
        "settings": vars(args) | {"out": str(args.out)},
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(meta | {"results": results, "report": report}, indent=1))


JAX_RUNNERS = {"gdjax.fit": gdjax_fit, "flax+optax loop": flax_loop, "lax.scan epoch": scan_epoch}


def _cold(runner: str, hidden: int, epochs: int, synthetic_n: int | None) -> dict:
    x, y = load(synthetic_n)
    if runner.startswith("torch"):
        import _torch_runner

        threads = int(runner.split()[0].split("-")[1])
        compiled = runner.endswith("compile")
        wall, seconds, loss = _torch_runner.timed_call(
            hidden, epochs, 1e-3, 0, threads, synthetic_n, compiled
        )
    else:
        wall, seconds, loss = JAX_RUNNERS[runner](x, y, hidden, epochs)
    return {"wall": wall, "epoch_seconds": list(map(float, seconds)), "loss": loss}


if __name__ == "__main__":
    _, mode, runner, hidden, epochs, *rest = sys.argv
    synthetic = int(rest[rest.index("--synthetic") + 1]) if "--synthetic" in rest else None
    assert mode == "cold"
    print(json.dumps(_cold(runner, int(hidden), int(epochs), synthetic)))
