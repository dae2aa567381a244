"""Rounds per second of FedAvg: gdjax.federated.fit (one program per round) vs a Python loop over
clients of the flax + optax jitted step, MLP 784-32-32-10 on Fashion-MNIST shards.

McMahan et al.'s setting: 100 IID clients of 600 images, 10 clients per round, 5 local epochs
of SGD on mini-batches of 10 (300 steps per client per round), the server averaging the
clients' parameters by example counts. Each runner trains in a fresh process of its own:
"cold" is the first round, compilation included (imports and data loading excluded); "warm"
is the median of the following rounds. The runners alternate, ``--repeats`` times each.

    python experiments/benchmarks/bench_federated.py --rounds 6 --repeats 3

``--synthetic N`` replaces the data with N random examples (a smoke run); ``--out`` is where the
JSON goes (default ``docs/benchmarks/federated.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNERS = ("gdjax.federated.fit", "flax+optax loop")


def _settings(args: argparse.Namespace) -> dict:
    return {
        "clients": args.clients,
        "clients_per_round": args.per_round,
        "local_epochs": args.epochs,
        "batch_size": args.batch,
        "hidden": args.hidden,
        "learning_rate": args.lr,
        "rounds": args.rounds,
        "synthetic": args.synthetic,
    }


def _shards(args: argparse.Namespace):
    import _common as c

    import gdjax

    x, y = c.load_data(args.synthetic)
    parts = gdjax.federated.partition.iid(len(x), args.clients, seed=0)
    return x, y, parts


def run_gdjax(args: argparse.Namespace) -> tuple[list[float], float]:
    """Seconds of each round of gdjax.federated.fit (the first compiles)."""
    import _common as c

    import gdjax

    x, y, parts = _shards(args)
    clients = gdjax.federated.partition.split((x, y), parts)
    model = c.MLP(args.hidden)
    params = model.init(jax.random.key(0), x[:1])

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    res = gdjax.federated.fit(
        loss_fn,
        params,
        optax.sgd(args.lr),
        optax.sgd(1.0),
        clients,
        rounds=args.rounds,
        clients_per_round=args.per_round,
        local_epochs=args.epochs,
        batch_size=args.batch,
        key=jax.random.key(0),
    )
    return res.round_seconds.tolist(), float(res.history["loss"][-1])


@functools.partial(jax.jit, donate_argnums=(0, 1))
def train_step(state, loss_sum, x, y, order, i):
    """One SGD step of the flax TrainState on the client's batch ``order[i]`` (its data live
    on the device; the state and the running loss are donated)."""
    rows = order[i]

    def loss_fn(params):
        logits = state.apply_fn(params, x[rows])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[rows]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss_sum + loss


@jax.jit
def fresh_copy(params):
    """The global parameters copied for a client (its state is donated step after step)."""
    return jax.tree.map(jnp.copy, params)


@jax.jit
def weighted_average(client_params, weights):
    """FedAvg's new model: the clients' parameters averaged with weights n_k / n."""
    return jax.tree.map(lambda *ps: sum(weights[i] * p for i, p in enumerate(ps)), *client_params)


def run_flax(args: argparse.Namespace) -> tuple[list[float], float]:
    """Seconds of each round of the idiomatic loop: clients and steps in Python, one jitted,
    donating step per mini-batch, every client's data on the device once, a jitted average."""
    import _common as c
    from flax.training import train_state

    x, y, parts = _shards(args)
    data = [(jax.device_put(x[p]), jax.device_put(y[p])) for p in parts]
    model = c.MLP(args.hidden)
    tx = optax.sgd(args.lr)
    params = model.init(jax.random.key(0), x[:1])
    rng = np.random.default_rng(0)
    seconds, last = [], float("nan")
    for _ in range(args.rounds):
        t = time.perf_counter()
        chosen = np.sort(rng.choice(len(parts), args.per_round, replace=False))
        trained, total, steps = [], 0.0, 0
        for k in chosen:
            xk, yk = data[k]
            n = len(parts[k])
            state = train_state.TrainState.create(
                apply_fn=model.apply, params=fresh_copy(params), tx=tx
            )
            loss_sum = jnp.zeros(())
            nb = n // args.batch  # the last partial batch is dropped, as in flax's examples
            for _ in range(args.epochs):
                order = jax.device_put(rng.permutation(n)[: nb * args.batch].reshape(nb, -1))
                for i in range(nb):
                    state, loss_sum = train_step(state, loss_sum, xk, yk, order, i)
            trained.append(state.params)
            total, steps = total + loss_sum, steps + nb * args.epochs
        n = np.asarray([len(parts[k]) for k in chosen], np.float32)
        params = weighted_average(trained, jnp.asarray(n / n.sum()))
        last = float(total) / steps  # one sync per round
        seconds.append(time.perf_counter() - t)
    return seconds, last


def child(args: argparse.Namespace) -> None:
    """Run one runner in this (fresh) process and print its timings as JSON."""
    run = run_gdjax if args.child == RUNNERS[0] else run_flax
    seconds, loss = run(args)
    print(json.dumps({"seconds": seconds, "last_loss": loss}))


def _spawn(runner: str, argv: list[str]) -> dict:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), *argv, "--child", runner],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{runner} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    import flax

    sys.path.insert(0, str(ROOT))
    from experiments._io import machine_info

    info = machine_info()
    info.update(flax=flax.__version__, optax=optax.__version__, numpy=np.__version__)
    info["platform"] = platform.platform()
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=6, help="rounds per run (the first is cold)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per runner")
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random examples")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "federated.json")
    ap.add_argument("--child", choices=RUNNERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return

    argv = sys.argv[1:] if argv is None else list(argv)
    if "--out" in argv:
        i = argv.index("--out")
        argv = argv[:i] + argv[i + 2 :]
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {r: [] for r in RUNNERS}
    for _ in range(args.repeats):  # alternate, so that load from other users hits both
        for runner in RUNNERS:
            runs[runner].append(_spawn(runner, argv))
    load_after = os.getloadavg()

    summary = {}
    for runner, results in runs.items():
        cold = [r["seconds"][0] for r in results]
        warm = [s for r in results for s in r["seconds"][1:]]
        summary[runner] = {
            "cold_first_round_seconds": float(np.median(cold)),
            "warm_round_seconds": float(np.median(warm)) if warm else None,
            "warm_rounds_per_second": 1 / float(np.median(warm)) if warm else None,
            "last_loss": [r["last_loss"] for r in results],
            "round_seconds": [r["seconds"] for r in results],
        }
    g, f = (summary[r] for r in RUNNERS)
    ratios = {"cold": f["cold_first_round_seconds"] / g["cold_first_round_seconds"]}
    if g["warm_round_seconds"] and f["warm_round_seconds"]:
        ratios["warm"] = f["warm_round_seconds"] / g["warm_round_seconds"]
    print(
        f"FedAvg, {args.clients} clients, {args.per_round} per round, {args.epochs} local epochs "
        f"of batch {args.batch}, MLP 784-{args.hidden}-{args.hidden}-10"
    )
    print(f"{'runner':<22} {'cold round (s)':>14} {'warm round (s)':>14} {'rounds/s':>9}")
    for runner in RUNNERS:
        s = summary[runner]
        warm = s["warm_round_seconds"]
        print(
            f"{runner:<22} {s['cold_first_round_seconds']:>14.3f} "
            f"{warm if warm is not None else float('nan'):>14.4f} "
            f"{1 / warm if warm else float('nan'):>9.2f}"
        )
    print(
        "speed-up of gdjax.federated.fit: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
        + " (target >= 5x)"
    )
    payload = {
        "benchmark": "bench_federated.py",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python experiments/benchmarks/bench_federated.py " + " ".join(argv),
        "machine": _machine(),
        "load_average_before_after": [list(load_before), list(load_after)],
        "settings": _settings(args),
        "results": summary,
        "speedup": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
