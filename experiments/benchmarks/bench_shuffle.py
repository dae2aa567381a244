"""Milliseconds to draw an epoch's order on the device: gdjax's sort-free shuffle vs
``jax.random.permutation`` (the anchor), side by side for several data-set sizes.

    python experiments/benchmarks/bench_shuffle.py --out docs/benchmarks/shuffle.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

from gdjax.train.shuffle import permutation


def _ms(fn, n: int, reps: int) -> float:
    """Median milliseconds of a compiled ``fn(key, n)`` over ``reps`` fresh keys."""
    compiled = jax.jit(fn, static_argnums=1).lower(jax.random.key(0), n).compile()
    times = []
    for r in range(reps):
        key = jax.random.key(r + 1)
        t = time.perf_counter()
        compiled(key).block_until_ready()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384, 60000, 1000000])
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--out", type=Path, help="write the raw results here (JSON)")
    args = ap.parse_args(argv)
    print(f"{'n':>9} {'jax.random.permutation':>23} {'gdjax permutation':>18} {'speed-up':>9}")
    results = {}
    for n in args.sizes:
        anchor = _ms(jax.random.permutation, n, args.reps)
        ours = _ms(permutation, n, args.reps)
        results[str(n)] = {"jax.random.permutation_ms": anchor, "gdjax_permutation_ms": ours}
        print(f"{n:>9} {anchor:>20.3f} ms {ours:>15.3f} ms {anchor / ours:>8.1f}x", flush=True)
    if args.out:
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
            "versions": {"jax": jax.__version__},
            "settings": {"reps": args.reps},
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(meta | {"results": results}, indent=1))


if __name__ == "__main__":
    main()
