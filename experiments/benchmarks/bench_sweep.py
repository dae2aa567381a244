"""Throughput of a 16-learning-rate sweep in one gdjax.sweep program vs 16 sequential runs of the
flax + optax loop (MLP 784-32-32-10, Adam, batch 128, Fashion-MNIST).

Throughput is member-epochs per second of wall time, compilation included on both sides, and
also in steady state (first epoch of each run left out).

    python experiments/benchmarks/bench_sweep.py --epochs 3
"""

from __future__ import annotations

import argparse
import time

import _common as c
import jax
import numpy as np
import optax

import gdjax


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument(
        "--synthetic", type=int, metavar="N", help="N random examples instead of Fashion-MNIST"
    )
    args = ap.parse_args()
    x, y = c.load_data(args.synthetic)
    lrs = np.logspace(-4, -1.5, args.members).astype(np.float32)
    model = c.MLP(args.hidden)

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    t = time.perf_counter()
    res = gdjax.sweep(
        loss_fn,
        lambda k: model.init(k, x[:1]),
        lambda hp: optax.adam(hp["learning_rate"]),
        (x, y),
        hparams={"learning_rate": lrs},
        seeds=0,
        batch_size=128,
        epochs=args.epochs,
    )
    sweep_total = time.perf_counter() - t
    sweep_steady = float(np.median(res.epoch_seconds[128][1:]))

    t = time.perf_counter()
    seq_steady = []
    for i, lr in enumerate(lrs):
        seconds, _ = c.flax_loop(x, y, args.hidden, args.epochs, lr=float(lr), seed=i)
        seq_steady.extend(seconds[1:])
    seq_total = time.perf_counter() - t
    seq_epoch = float(np.median(seq_steady))

    m, e = args.members, args.epochs
    print(
        f"{m} learning rates, H={args.hidden}, {e} epochs each, batch 128, {jax.device_count()} "
        "device(s)"
    )
    print(
        f"gdjax.sweep (one program): total {sweep_total:7.2f} s -> {m * e / sweep_total:6.2f} "
        f"member-epochs/s; steady {sweep_steady:.3f} s per epoch of all {m} -> "
        f"{m / sweep_steady:6.2f} member-epochs/s"
    )
    print(
        f"{m} sequential flax loops:   total {seq_total:7.2f} s -> {m * e / seq_total:6.2f} "
        f"member-epochs/s; steady {seq_epoch:.3f} s per member-epoch -> "
        f"{1 / seq_epoch:6.2f} member-epochs/s"
    )
    print(
        f"throughput ratio: total {seq_total / sweep_total:.2f}x, steady "
        f"{seq_epoch * m / sweep_steady:.2f}x (target >= 4x)"
    )
    best = int(np.nanargmin(res.history["loss"][:, -1]))
    print(
        f"best learning rate {lrs[best]:.2e}: final training loss {res.history['loss'][best, -1]:.4f}"
    )


if __name__ == "__main__":
    main()
