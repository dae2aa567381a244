"""One jitted update step of every gdjax optimizer that optax also has, against optax's, on a
~10M-parameter tree (three large matrices and 81 small leaves).

For each name in ``gdjax.optimizers.__all__`` with an ``optax.<name>`` (or, failing that, an
``optax.contrib.<name>``), both optimizers are built with the same arguments (learning rate 1e-3
where one is required, defaults otherwise), and one step ``params, state = step(params, state,
grads)`` is compiled for each (parameters and state donated, as in a training loop). Cold: the
first call (tracing, compilation and one step) in this process, the two taken in alternating
order. Steady: median of ``--repeats`` calls (fewer, at least 3, when a pair of calls would
overrun ``--budget-s``), gdjax's and optax's interleaved; a ratio above 1.10 is measured once
more with twice the repeats (both kept; the lower counts). Writes
``docs/benchmarks/optimizers.json``.

    python experiments/benchmarks/bench_optimizers.py
    python experiments/benchmarks/bench_optimizers.py --tiny --repeats 3 --out /tmp/o.json
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's gdjax and experiments, whatever the cwd

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gdjax  # noqa: E402
from experiments._io import describe_machine, machine_info, write_json  # noqa: E402

LEARNING_RATE = 1e-3
#: Extra ``update`` arguments for optimizers that need them (the loss, for Polyak's step).
EXTRA_ARGS = {"polyak_sgd": {"value": 1.0}}
FULL = {"large": ((2048, 1024), 3), "small": ((256, 256), 48), "vector": ((2048,), 32)}
FULL_EXTRA = (700, 700)  # brings the total to ~10.0M
TINY = {"large": ((64, 32), 2), "small": ((8, 8), 4), "vector": ((16,), 3)}


def make_tree(shapes: dict, extra: tuple | None, seed: int = 0) -> dict:
    """A dict of groups of leaves (normal draws), the same for every optimizer."""
    key = jax.random.key(seed)
    tree = {}
    for group, (shape, count) in shapes.items():
        tree[group] = []
        for _ in range(count):
            key, sub = jax.random.split(key)
            tree[group].append(jax.random.normal(sub, shape, jnp.float32))
    if extra:
        tree["extra"] = jax.random.normal(key, extra, jnp.float32)
    return tree


def counterpart(name: str):
    """optax's optimizer of the same name: ``optax.<name>``, else ``optax.contrib.<name>``."""
    for module in (optax, optax.contrib):
        if callable(getattr(module, name, None)):
            return module
    return None


def pairs() -> tuple[dict[str, str], dict[str, str]]:
    """``{name: 'optax' or 'optax.contrib'}`` to compare, and ``{name: why not}`` for the rest."""
    names, skipped = {}, {}
    for name in gdjax.optimizers.__all__:
        if not inspect.isfunction(getattr(gdjax.optimizers, name)):
            continue
        module = counterpart(name)
        if module is None:
            skipped[name] = "gdjax only (no optax counterpart)"
        else:
            names[name] = module.__name__
    return names, skipped


def build(module, name: str):
    """``module.<name>`` with the learning rate 1e-3 if it needs one, defaults otherwise."""
    factory = getattr(module, name)
    params = inspect.signature(factory).parameters  # functools.partial too (optax.nadam)
    kwargs = {}
    lr = params.get("learning_rate")
    if lr is not None and lr.default is inspect.Parameter.empty:
        kwargs["learning_rate"] = LEARNING_RATE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optax.optimistic_adam
        return factory(**kwargs)


def fresh_copy(tree):
    """New buffers for every leaf (state leaves may alias the parameters or each other, and
    donated buffers must be distinct)."""
    return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


class Runner:
    """One optimizer's compiled step and its carried parameters and state."""

    def __init__(self, opt, params, grads, extra):
        self.grads = grads

        def step(params, state, grads):
            updates, state = opt.update(grads, state, params, **extra)
            return optax.apply_updates(params, updates), state

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.params = fresh_copy(params)
        self.state = fresh_copy(opt.init(self.params))

    def call(self) -> float:
        t = time.perf_counter()
        self.params, self.state = self.step(self.params, self.state, self.grads)
        jax.block_until_ready((self.params, self.state))
        return time.perf_counter() - t


def bench_one(name: str, params, grads, repeats: int, budget_s: float, flip: bool) -> dict:
    extra = EXTRA_ARGS.get(name, {})
    runners = {
        "gdjax": Runner(build(gdjax, name), params, grads, extra),
        "optax": Runner(build(counterpart(name), name), params, grads, extra),
    }
    order = ["optax", "gdjax"] if flip else ["gdjax", "optax"]
    cold = {who: runners[who].call() for who in order}
    times = {who: [runners[who].call()] for who in order}
    # Slow steps (Muon's Newton-Schulz on the large matrices) get fewer repeats, at least 3.
    pair = sum(t[0] for t in times.values())
    repeats = max(3, min(repeats, int(budget_s / pair))) if pair > 0 else repeats
    for r in range(1, repeats):
        for who in order if r % 2 == 0 else order[::-1]:
            times[who].append(runners[who].call())
    steady = {who: float(np.median(t)) for who, t in times.items()}
    return {
        "cold_s": cold,
        "steady_ms": {who: 1e3 * s for who, s in steady.items()},
        "ratio": steady["gdjax"] / steady["optax"],
        "cold_ratio": cold["gdjax"] / cold["optax"],
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, help="steady calls per optimizer and side")
    ap.add_argument(
        "--budget-s", type=float, default=60.0, help="steady seconds per optimizer (>= 3 repeats)"
    )
    ap.add_argument("--tiny", action="store_true", help="a tiny tree (smoke test)")
    ap.add_argument("--no-recheck", action="store_true", help="do not re-measure ratios > 1.10")
    ap.add_argument("--only", nargs="*", help="benchmark only these names")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "optimizers.json")
    ap.add_argument("--note", default="", help="recorded in the JSON (e.g. 'machine shared')")
    args = ap.parse_args(argv)

    params = make_tree(TINY, None) if args.tiny else make_tree(FULL, FULL_EXTRA)
    grads = jax.tree.map(lambda p: 0.01 * p + 1e-3, params)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    n_leaves = len(jax.tree.leaves(params))
    names, skipped = pairs()
    if args.only:
        names = {n: m for n, m in names.items() if n in args.only}
    info = machine_info()
    print(f"{n_params:,} parameters in {n_leaves} leaves; {describe_machine(info)}")
    print(
        f"{'optimizer':<28} {'cold gdjax':>10} {'cold optax':>10} {'gdjax ms':>9} "
        f"{'optax ms':>9} {'ratio':>6}"
    )
    results = {}
    for i, name in enumerate(names):
        try:
            res = bench_one(name, params, grads, args.repeats, args.budget_s, flip=bool(i % 2))
        except Exception as err:  # a name that cannot run generically is reported, not fatal
            skipped[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            print(f"{name:<28} skipped: {skipped[name]}", flush=True)
            continue
        results[name] = {"oracle": names[name], **res}
        flag = "  <-- slower by more than 10%" if res["ratio"] > 1.10 else ""
        print(
            f"{name:<28} {res['cold_s']['gdjax']:>9.2f}s {res['cold_s']['optax']:>9.2f}s "
            f"{res['steady_ms']['gdjax']:>9.2f} {res['steady_ms']['optax']:>9.2f} "
            f"{res['ratio']:>5.2f}x{flag}",
            flush=True,
        )
    # A ratio above 1.10 on a shared machine may be noise: measure those once more, with twice
    # the repeats, in a fresh pair of programs; both measurements are kept.
    for name in [n for n, r in results.items() if r["ratio"] > 1.10 and not args.no_recheck]:
        again = bench_one(name, params, grads, 2 * args.repeats, 2 * args.budget_s, flip=True)
        results[name]["recheck"] = again
        print(
            f"{name:<28} recheck: {again['steady_ms']['gdjax']:.2f} ms vs "
            f"{again['steady_ms']['optax']:.2f} ms, {again['ratio']:.2f}x",
            flush=True,
        )
    for name, why in skipped.items():
        if name not in results:
            print(f"not compared: {name} ({why})")
    final = {n: min(r["ratio"], r.get("recheck", r)["ratio"]) for n, r in results.items()}
    if final:
        worst = max(final, key=final.get)
        print(
            f"steady ratio gdjax/optax: median {np.median(list(final.values())):.3f}, worst "
            f"{worst} {final[worst]:.3f}; over 1.10 after the recheck: "
            f"{', '.join(n for n, r in final.items() if r > 1.10) or 'none'}"
        )
    payload = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": info,
        "versions": {
            "gdjax": gdjax.__version__,
            "jax": jax.__version__,
            "optax": optax.__version__,
        },
        "command": " ".join(
            [
                "python",
                "experiments/benchmarks/bench_optimizers.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "note": args.note,
        "parameters": n_params,
        "leaves": n_leaves,
        "repeats": args.repeats,
        "learning_rate": LEARNING_RATE,
        "results": results,
        "not_compared": {n: why for n, why in skipped.items() if n not in results},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
