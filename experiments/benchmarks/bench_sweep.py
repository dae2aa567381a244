"""A 16-learning-rate sweep: one ``gdjax.sweep`` program against the strongest ways to write it
by hand (MLP 784-H-H-10, Adam, batch 128, Fashion-MNIST's 60,000 training images, NumPy arrays
as a user holds them).

Runners, in one process, each given the 16 rates:

- ``gdjax.sweep``: the rates as vmapped data, one program.
- ``sequential flax loops``: the idiomatic flax + optax loop (jitted step, ``donate_argnums``)
  run once per rate; the rate is an argument of the step (``optax.inject_hyperparams``), so the
  step compiles once for all 16 runs, not 16 times.
- ``vmapped lax.scan epoch``: a hand-written jitted ``lax.scan`` epoch ``jax.vmap``-ed over the
  rates, data on the device — what an expert writes without a library.

Each runner's first call compiles (reported as *first call*, compile included); then ``--rounds``
interleaved rounds of a fresh call each give the *steady* figure: seconds per member-epoch,
the median over the epochs after each call's first.

    python experiments/benchmarks/bench_sweep.py --rounds 3 --out docs/benchmarks/sweep.json
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

import _engine_runners as r
import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax

BATCH = r.BATCH


def gdjax_sweep(x, y, hidden, lrs, epochs):
    model, loss_fn = r._mlp(hidden), r._loss(hidden)
    t = time.perf_counter()
    res = gdjax.sweep(
        loss_fn,
        lambda k: model.init(k, x[:1]),
        lambda hp: gdjax.adam(hp["learning_rate"]),
        (x, y),
        hparams={"learning_rate": lrs},
        seeds=0,
        batch_size=BATCH,
        epochs=epochs,
    )
    jax.block_until_ready(res.params)
    wall = time.perf_counter() - t
    return wall, list(res.epoch_seconds[BATCH]), res.history["loss"][:, -1]


@functools.cache
def _adam_with_rate_argument():
    """One optimizer for every run and call: the step compiles once for all of them."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


def sequential_flax(x, y, hidden, lrs, epochs):
    tx = _adam_with_rate_argument()  # one step program for all
    t = time.perf_counter()
    per_epoch, finals = [], []
    for i, lr in enumerate(lrs):
        _, seconds, final = r.flax_loop(x, y, hidden, epochs, lr=float(lr), seed=i, tx=tx)
        per_epoch.extend(seconds[1:])
        finals.append(final)
    return time.perf_counter() - t, per_epoch, np.asarray(finals)


@functools.cache
def _vmapped_epoch(n: int, hidden: int):
    model = r._mlp(hidden)
    steps = n // BATCH

    def one_member(params, opt_state, lr, x, y, order):
        tx = optax.adam(lr)

        def step(carry, idx):
            params, opt_state = carry

            def loss_fn(p):
                logits = model.apply(p, x[idx])
                return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), order)
        return params, opt_state, losses.mean()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def epoch(params, opt_state, lrs, x, y, key):
        order = jax.random.permutation(key, n)[: steps * BATCH].reshape(steps, BATCH)
        return jax.vmap(one_member, in_axes=(0, 0, 0, None, None, None))(
            params, opt_state, lrs, x, y, order
        )

    return epoch


def vmapped_scan(x, y, hidden, lrs, epochs):
    model = r._mlp(hidden)
    t = time.perf_counter()
    xd, yd, lr_d = jax.device_put((x, y, lrs))
    m = len(lrs)
    one = model.init(jax.random.key(0), x[:1])
    params = jax.tree.map(lambda a: jnp.broadcast_to(a, (m, *a.shape)), one)
    opt_state = jax.vmap(lambda p: optax.adam(1e-3).init(p))(params)
    epoch = _vmapped_epoch(len(x), hidden)
    per_epoch, losses = [], None
    for e in range(epochs):
        t0 = time.perf_counter()
        params, opt_state, losses = epoch(
            params, opt_state, lr_d, xd, yd, jax.random.fold_in(jax.random.key(0), e)
        )
        losses = np.asarray(losses)
        if e:
            per_epoch.append(time.perf_counter() - t0)
    return time.perf_counter() - t, per_epoch, losses


RUNNERS = {
    "gdjax.sweep": gdjax_sweep,
    "sequential flax loops": sequential_flax,
    "vmapped lax.scan epoch": vmapped_scan,
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random examples instead")
    ap.add_argument("--out", type=Path, help="write the raw results here (JSON)")
    args = ap.parse_args(argv)
    x, y = r.load(args.synthetic)
    lrs = np.logspace(-4, -1.5, args.members).astype(np.float32)
    m, e = args.members, args.epochs

    first, steady, finals = {}, {}, {}
    for name, run in RUNNERS.items():  # each runner's first call compiles
        wall, _, _ = run(x, y, args.hidden, lrs, e)
        first[name] = wall
    for _ in range(args.rounds):
        for name, run in RUNNERS.items():
            _, per_epoch, final = run(x, y, args.hidden, lrs, e)
            if name == "gdjax.sweep":
                per_epoch = per_epoch[1:]
            if name != "sequential flax loops":  # one epoch of all members at once
                per_epoch = [s / m for s in per_epoch]
            steady.setdefault(name, []).extend(per_epoch)
            finals[name] = np.asarray(final).tolist()

    seq = "sequential flax loops"
    lines = [
        f"{m} learning rates, H={args.hidden}, {e} epochs per call, batch {BATCH}, "
        f"{jax.device_count()} device(s), {os.cpu_count()} cores, {args.rounds} rounds",
        f"{'runner':<26} {'first call s':>12} {'steady s/member-epoch':>22} {'vs sequential':>14}",
    ]
    med = {k: float(np.median(v)) for k, v in steady.items()}
    for name in RUNNERS:
        v = steady[name]
        lines.append(
            f"{name:<26} {first[name]:12.2f} {med[name]:10.4f} [{min(v):.4f}-{max(v):.4f}] "
            f"{med[seq] / med[name]:13.2f}x"
        )
    lines.append(
        f"gdjax.sweep steady throughput: {med[seq] / med['gdjax.sweep']:.2f}x the sequential "
        f"loops (target >= 3x), {med['vmapped lax.scan epoch'] / med['gdjax.sweep']:.2f}x the "
        "hand-written vmapped epoch"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        results = {"first_call": first, "steady_per_member_epoch": steady, "final_loss": finals}
        r.write_result(args.out, args, results, text)


if __name__ == "__main__":
    main()
