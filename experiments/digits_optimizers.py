"""Compare gdjax's optimizers on scikit-learn's bundled digits (the README's quick main job).

A 64-64-10 tanh MLP is trained for a fixed number of epochs with mini-batch gradient descent
and each optimizer; every epoch is one compiled program (a ``lax.scan`` over batches gathered
once per epoch). Prints a table of final training loss, test accuracy and seconds.

Run: ``python experiments/digits_optimizers.py [--epochs N] [--batch-size B]``
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from gdjax.data import fit_standardizer, load_sklearn, train_test_split
from gdjax.models import MLP

OPTIMIZERS = {
    "sgd": lambda: gdjax.sgd(0.1),
    "momentum": lambda: gdjax.momentum(0.05, beta=0.9),
    "nesterov": lambda: gdjax.nesterov(0.05, beta=0.9),
    "adagrad": lambda: gdjax.adagrad(0.05),
    "rmsprop": lambda: gdjax.rmsprop(1e-3),
    "adam": lambda: gdjax.adam(1e-3),
    "adamw": lambda: gdjax.adamw(1e-3, weight_decay=1e-4),
    "nadam": lambda: gdjax.nadam(1e-3),
    "amsgrad": lambda: gdjax.amsgrad(1e-3),
    "adadelta": lambda: gdjax.adadelta(1.0),
    "adamax": lambda: gdjax.adamax(2e-3),
}


def train(name: str, data, epochs: int, batch_size: int, seed: int = 0) -> dict:
    (x_train, y_train), (x_test, y_test) = data
    model = MLP(features=(64, 64, 10), activation="tanh")
    opt = OPTIMIZERS[name]()
    params = model.init(jax.random.PRNGKey(seed), x_train[:1])
    n_batches = len(x_train) // batch_size

    def loss_fn(p, x, y):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, x), y)

    @jax.jit
    def epoch(params, opt_state, key):
        order = jax.random.permutation(key, len(x_train))[: n_batches * batch_size]
        xb = x_train[order].reshape(n_batches, batch_size, -1)
        yb = y_train[order].reshape(n_batches, batch_size)

        def step(carry, batch):
            p, s = carry
            loss, grads = jax.value_and_grad(loss_fn)(p, *batch)
            updates, s = opt.update(grads, s, p)
            return (gdjax.apply_updates(p, updates), s), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (xb, yb))
        return params, opt_state, losses.mean()

    opt_state = opt.init(params)
    key = jax.random.PRNGKey(seed + 1)
    start = time.perf_counter()
    for _ in range(epochs):
        key, sub = jax.random.split(key)
        params, opt_state, loss = epoch(params, opt_state, sub)
    loss = float(loss)
    seconds = time.perf_counter() - start
    accuracy = float(gdjax.metrics.accuracy(model.apply(params, x_test), y_test))
    return {"optimizer": name, "train_loss": loss, "test_accuracy": accuracy, "seconds": seconds}


def load_digits():
    x, y = load_sklearn("digits")
    (x_train, y_train), (x_test, y_test) = train_test_split(x, y, test_fraction=0.2, seed=0)
    scaler = fit_standardizer(x_train)
    as_jax = lambda a: jnp.asarray(a)  # noqa: E731
    return (as_jax(scaler(x_train)), as_jax(y_train)), (as_jax(scaler(x_test)), as_jax(y_test))


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1; got {args.epochs}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1; got {args.batch_size}")
    data = load_digits()
    rows = [train(name, data, args.epochs, args.batch_size) for name in OPTIMIZERS]
    print(
        f"\nscikit-learn digits, MLP 64-64-10 (tanh), {args.epochs} epochs, batch "
        f"{args.batch_size}, jax {jax.__version__} on {jax.devices()[0].platform}\n"
    )
    print(f"| {'optimizer':<9} | train loss | test accuracy | seconds (incl. compile) |")
    print(f"|{'-' * 11}|-----------:|--------------:|------------------------:|")
    for r in rows:
        print(
            f"| {r['optimizer']:<9} | {r['train_loss']:10.4f} | {r['test_accuracy']:13.3f} "
            f"| {r['seconds']:23.2f} |"
        )
    best = max(rows, key=lambda r: r["test_accuracy"])
    print(f"\nbest test accuracy: {best['optimizer']} ({best['test_accuracy']:.3f})")
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
