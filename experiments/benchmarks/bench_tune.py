"""Tuning AdamW's learning rate and weight decay for the MLP 784-32-32-10 on Fashion-MNIST:
time and compute to reach the full grid's best validation accuracy.

Five tuners, one after the other in one process, each compiling its own programs (gdjax's
program cache is cleared between them and the persistent compilation cache is off, so every
figure is cold, compilation included):

- the full 8 x 8 grid (learning rate log-uniform 1e-4..1, weight decay log-uniform 1e-6..1e-2)
  as one vmapped gdjax program (``gdjax.tune.search`` with ``tune.Grid``);
- successive halving of the same 64 configurations (rungs at 1, 3, 9 epochs, eta 3), the
  survivors repacked into smaller programs;
- population-based training of 16 Sobol configurations in one program;
- optuna's TPE (with a median pruner) asked for batches of trials trained as gdjax programs;
- successive halving once more with its programs already compiled (warm);
- the anchor: optuna's TPE (median pruner) driving sequential flax + optax runs, written as
  their best users would: one jitted step with the hyperparameters and the batch index as
  arguments, compiled once, parameters and optimizer state donated, the data on the device,
  nothing eager per step. It runs until it reaches the target or has run 64 trials, once per
  TPE seed (``--anchor-seeds``, default 5): how soon TPE draws a good configuration is luck,
  so the comparison uses the median over seeds.

The target is the grid's best validation accuracy (at the last epoch of a trial) minus 0.5
percentage points; each tuner's time and member-epochs to *reach* it are read from its
timeline (the best validation accuracy seen at any epoch of any trial so far).

    python experiments/benchmarks/bench_tune.py
    python experiments/benchmarks/bench_tune.py --synthetic 600 --epochs 3 --grid-points 2 \\
        --population 4 --optuna-trials 3 --out /tmp/tune.json   # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GDJAX_COMPILATION_CACHE", "off")  # cold: compile everything here
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's gdjax and experiments

import _common as c  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import optuna  # noqa: E402

import gdjax  # noqa: E402
from experiments._io import machine_info  # noqa: E402
from gdjax import tune  # noqa: E402
from gdjax.train.programs import clear_cache  # noqa: E402

LR, WD = (1e-4, 1.0), (1e-6, 1e-2)
BATCH = 128


def split(args: argparse.Namespace) -> tuple:
    """Disjoint training and validation sets from the training images; the official test set."""
    x, y = c.load_data(args.synthetic)
    y = y.astype(np.int32)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, va = idx[: args.n_train], idx[args.n_train : args.n_train + args.n_val]
    if args.synthetic:
        xt, yt = x[va], y[va]
    else:
        xt, yt = gdjax.data.load_fashion_mnist("test", flatten=True)
    return (x[tr], y[tr]), (x[va], y[va]), (xt, yt.astype(np.int32))


def reach(timeline: list[dict], target: float) -> tuple[float | None, int | None]:
    """Seconds and member-epochs at the first epoch whose best-so-far reaches ``target``."""
    for point in timeline:
        if point["best"] is not None and point["best"] >= target:
            return point["seconds"], point["member_epochs"]
    return None, None


def steady(timeline: list[dict]) -> float | None:
    """Median seconds per member-epoch between timeline points, the first left out."""
    rates = []
    for a, b in itertools.pairwise(timeline[1:]):
        if b["member_epochs"] > a["member_epochs"]:
            rates.append((b["seconds"] - a["seconds"]) / (b["member_epochs"] - a["member_epochs"]))
    return float(np.median(rates)) if rates else None


def gdjax_tuners(args, train, val, test) -> dict:
    model = c.MLP(args.hidden)

    def loss(p, b):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, b[0]), b[1]).mean()

    def acc(p, b):
        return jnp.mean(jnp.argmax(model.apply(p, b[0]), -1) == b[1])

    def adamw(hp):
        return optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])

    space = {"learning_rate": tune.LogUniform(*LR), "weight_decay": tune.LogUniform(*WD)}
    common = {
        "space": space,
        "objective": "val_acc",
        "mode": "max",
        "validation_data": val,
        "metrics": {"acc": acc},
        "batch_size": BATCH,
        "epochs": args.epochs,
        "drop_last": True,
    }
    init = functools.partial(model.init, x=train[0][:1])
    test_acc = jax.jit(lambda p: acc(p, test))
    tuners = {
        "grid (one gdjax program)": {"sampler": tune.Grid(points=args.grid_points)},
        "successive halving (gdjax)": {
            "sampler": tune.Grid(points=args.grid_points),
            "scheduler": tune.SuccessiveHalving(min_epochs=1, eta=3),
        },
        "PBT (gdjax)": {
            "sampler": tune.Sobol(args.population),
            "scheduler": tune.PBT(interval=args.pbt_interval),
        },
        "optuna TPE in gdjax programs": {"sampler": "optuna"},
    }
    halving = tuners["successive halving (gdjax)"]
    order = list(tuners)  # the warm rerun right after the cold one, before the cache is cleared
    order.insert(order.index("successive halving (gdjax)") + 1, "successive halving (gdjax), warm")
    tuners = {k: tuners.get(k, halving) for k in order}
    out = {}
    for name, kw in tuners.items():
        if kw.get("sampler") == "optuna":
            study = optuna.create_study(
                direction="maximize",
                sampler=optuna.samplers.TPESampler(seed=0),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
            )
            kw = {"sampler": tune.Optuna(study, args.gdjax_optuna_trials, args.optuna_batch)}
        if not args.warm and not name.endswith("warm"):
            clear_cache()  # each tuner compiles its own programs, as in a fresh process
        t = time.perf_counter()
        res = tune.search(loss, init, adamw, train, **common, **kw)
        wall = time.perf_counter() - t
        out[name] = {
            "wall_seconds": wall,
            "search_seconds": res.seconds,
            "member_epochs": res.member_epochs,
            "trials": len(res.trials),
            "best_val_acc": res.best.objective,
            "winner": res.best_config,
            "winner_test_acc": float(test_acc(res.best_params)),
            "timeline": res.timeline,
            "steady_seconds_per_member_epoch": steady(res.timeline),
            "trial_val_acc": [t.objective for t in res.trials],
        }
        print(f"  {name}: {wall:.1f} s, {res.member_epochs} member-epochs", flush=True)
    return out


def optuna_flax(args, train, val, test, target: float, seed: int) -> dict:
    """TPE + median pruner driving sequential flax + optax runs (the anchor)."""
    model = c.MLP(args.hidden)
    xtr, ytr = jax.device_put(train)
    xv, yv = jax.device_put(val)
    xt, yt = jax.device_put(test)
    n, steps = len(train[0]), len(train[0]) // BATCH
    params0 = model.init(jax.random.key(0), train[0][:1])

    def tx(lr, wd):
        return optax.adamw(lr, weight_decay=wd)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, lr, wd, x, y, perm, i):
        idx = jax.lax.dynamic_slice(perm, (i * BATCH,), (BATCH,))

        def loss(p):
            logits = model.apply(p, x[idx])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

        grads = jax.grad(loss)(params)
        updates, opt_state = tx(lr, wd).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def accuracy(params, x, y):
        return jnp.mean(jnp.argmax(model.apply(params, x), -1) == y)

    permute = jax.jit(lambda key, e: jax.random.permutation(jax.random.fold_in(key, e), n))
    fresh = jax.jit(lambda p: (jax.tree.map(jnp.copy, p), tx(0.0, 0.0).init(p)))
    index = [jnp.asarray(i, jnp.int32) for i in range(steps)]
    key = jax.random.key(1)
    log = {"timeline": [], "member_epochs": 0, "best_seen": -math.inf, "best": None}
    t0 = time.perf_counter()

    def objective(trial):
        lr = jnp.float32(trial.suggest_float("learning_rate", *LR, log=True))
        wd = jnp.float32(trial.suggest_float("weight_decay", *WD, log=True))
        params, opt_state = fresh(params0)
        acc = 0.0
        for epoch in range(args.epochs):
            perm = permute(key, epoch)
            for i in index:
                params, opt_state = step(params, opt_state, lr, wd, xtr, ytr, perm, i)
            acc = float(accuracy(params, xv, yv))
            log["member_epochs"] += 1
            log["best_seen"] = max(log["best_seen"], acc)
            log["timeline"].append(
                {
                    "seconds": time.perf_counter() - t0,
                    "member_epochs": log["member_epochs"],
                    "best": log["best_seen"],
                }
            )
            trial.report(acc, epoch + 1)
            if epoch + 1 < args.epochs and trial.should_prune():
                raise optuna.TrialPruned
        if log["best"] is None or acc > log["best"][0]:
            log["best"] = (acc, {"learning_rate": float(lr), "weight_decay": float(wd)}, params)
        return acc

    def stop_at_target(study, trial):
        if log["best_seen"] >= target:
            study.stop()

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=args.optuna_trials, callbacks=[stop_at_target])
    wall = time.perf_counter() - t0
    best_acc, winner, params = log["best"]
    return {
        "wall_seconds": wall,
        "search_seconds": wall,
        "member_epochs": log["member_epochs"],
        "trials": len(study.trials),
        "best_val_acc": best_acc,
        "winner": winner,
        "winner_test_acc": float(accuracy(params, xt, yt)),
        "timeline": log["timeline"],
        "steady_seconds_per_member_epoch": steady(log["timeline"]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=12800)
    ap.add_argument("--n-val", type=int, default=6400)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--grid-points", type=int, default=8, help="per dimension (8: 64 configs)")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--pbt-interval", type=int, default=2)
    ap.add_argument("--optuna-trials", type=int, default=64, help="cap of the sequential anchor")
    ap.add_argument("--anchor-seeds", type=int, default=5, help="TPE seeds of the anchor")
    ap.add_argument("--gdjax-optuna-trials", type=int, default=32)
    ap.add_argument("--optuna-batch", type=int, default=8)
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random examples (smoke run)")
    ap.add_argument(
        "--warm", action="store_true", help="let a tuner reuse programs an earlier one compiled"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "tune.json")
    args = ap.parse_args(argv)
    if args.synthetic:
        args.n_train = min(args.n_train, args.synthetic * 2 // 3)
        args.n_val = min(args.n_val, args.synthetic - args.n_train)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, val, test = split(args)
    configs = args.grid_points**2
    print(
        f"{configs} configurations, MLP 784-{args.hidden}-{args.hidden}-10, AdamW, batch {BATCH}, "
        f"{args.epochs} epochs; {len(train[0])} training / {len(val[0])} validation / "
        f"{len(test[0])} test examples",
        flush=True,
    )
    runs = gdjax_tuners(args, train, val, test)
    grid = runs["grid (one gdjax program)"]
    target = grid["best_val_acc"] - 0.005
    within = float(np.mean(np.asarray(grid["trial_val_acc"]) >= target))
    print(f"  {100 * within:.0f}% of the grid's configurations end within the target", flush=True)
    anchors = []
    for seed in range(args.anchor_seeds):
        name = f"optuna TPE + sequential flax (anchor, seed {seed})"
        runs[name] = optuna_flax(args, train, val, test, target, seed)
        anchors.append(runs[name])
        print(f"  {name}: {runs[name]['wall_seconds']:.1f} s", flush=True)
    for r in runs.values():
        r["reach_seconds"], r["reach_member_epochs"] = reach(r["timeline"], target)
    reached = [a["reach_seconds"] for a in anchors if a["reach_seconds"] is not None]
    every = len(reached) == len(anchors)
    anchor = {
        "reach_seconds": float(np.median(reached)) if every else None,
        "reach_member_epochs": float(np.median([a["reach_member_epochs"] for a in anchors]))
        if every
        else None,
    }
    sh = runs["successive halving (gdjax)"]
    grid_compute = configs * args.epochs
    print(f"\ntarget: validation accuracy >= {target:.4f} (grid best {grid['best_val_acc']:.4f})")
    header = (
        f"{'tuner':<48} {'wall s':>7} {'m-epochs':>8} {'reach s':>8} {'reach m-ep':>10} "
        f"{'best val':>8} {'test':>7}"
    )
    print(header)
    for name, r in runs.items():
        rs = "never" if r["reach_seconds"] is None else f"{r['reach_seconds']:.1f}"
        rm = "never" if r["reach_member_epochs"] is None else str(r["reach_member_epochs"])
        print(
            f"{name:<48} {r['wall_seconds']:7.1f} {r['member_epochs']:8d} {rs:>8} {rm:>10} "
            f"{r['best_val_acc']:8.4f} {r['winner_test_acc']:7.4f}"
        )
    targets = {}
    if sh["reach_member_epochs"] is not None:
        frac = sh["reach_member_epochs"] / grid_compute
        targets["halving_compute_fraction_of_grid"] = frac
        print(
            f"successive halving reached the target with {frac:.2f} of the grid's compute "
            f"(target <= 0.33): {'met' if frac <= 1 / 3 else 'NOT met'}"
        )
    else:
        print("successive halving never reached the target: NOT met")
    best_gdjax = min(
        (r["reach_seconds"], name)
        for name, r in runs.items()
        if "anchor" not in name and "warm" not in name and r["reach_seconds"] is not None
    )
    if anchor["reach_seconds"] is not None:
        ratio = anchor["reach_seconds"] / best_gdjax[0]
        targets["speedup_over_optuna_flax"] = ratio
        targets["fastest_gdjax_tuner"] = best_gdjax[1]
        print(
            f"fastest gdjax tuner to the target: {best_gdjax[1]}, {ratio:.2f}x faster than the "
            f"anchor's median over {len(anchors)} seeds (target >= 5x): "
            f"{'met' if ratio >= 5 else 'NOT met'}"
        )
    else:
        print("the anchor did not reach the target within its trial cap for every seed")
    targets["anchor_median_reach_seconds"] = anchor["reach_seconds"]
    targets["anchor_median_reach_member_epochs"] = anchor["reach_member_epochs"]
    payload = {
        "benchmark": "bench_tune.py",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": {
            "gdjax": gdjax.__version__,
            "jax": jax.__version__,
            "optax": optax.__version__,
            "optuna": optuna.__version__,
            "flax": __import__("flax").__version__,
        },
        "load_average_at_end": os.getloadavg(),
        "settings": vars(args) | {"out": str(args.out), "configs": configs},
        "target_val_acc": target,
        "grid_fraction_within_target": within,
        "grid_compute_member_epochs": grid_compute,
        "targets": targets,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
