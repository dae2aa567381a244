"""Seconds per epoch: gdjax.fit vs the flax + optax loop vs PyTorch eager, MLP on Fashion-MNIST.

MLP 784-H-H-10 (ReLU), Adam 1e-3, batch 128, H = 32 and 256. The runners take turns: in
each of ``--rounds`` rounds every runner trains a fresh model for ``--epochs`` epochs, so that
load from other users of a shared machine falls on all of them alike. The first epoch of each
run (compilation, warm-up) is left out and the median of the rest reported, with each run's
fraction of the machine's measured float32 matmul throughput.

    python experiments/benchmarks/bench_fit.py --rounds 3 --epochs 3

PyTorch (``pip install -e ".[bench]"``) runs in its own process, once with 1 thread and once with
2; ``--skip-torch`` leaves it out and ``--synthetic N`` replaces the data with N random examples
(a smoke run that needs no data set).
"""

from __future__ import annotations

import argparse
import functools
import os

import _common as c
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hidden", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="PyTorch thread counts to time (each is an anchor; the fastest counts)",
    )
    ap.add_argument(
        "--synthetic", type=int, metavar="N", help="N random examples instead of Fashion-MNIST"
    )
    args = ap.parse_args()

    x, y = c.load_data(args.synthetic)
    peak = c.matmul_gflops()
    roof = max(peak.values())
    print(
        f"cpu cores: {os.cpu_count()}; float32 1024^3 matmul: "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items())
        + f" (roofline {roof:.1f} GFLOP/s)"
    )
    runners = {"gdjax.fit": c.gdjax_fit, "flax+optax loop": c.flax_loop}
    if not args.skip_torch:
        for t in args.torch_threads:
            runners[f"pytorch eager {t}T"] = functools.partial(
                c.torch_loop, threads=t, synthetic_n=args.synthetic
            )
    print(
        f"{'H':>4} {'runner':<18} {'s/epoch':>8} {'GFLOP/s':>8} {'roofline':>9} "
        f"{'last loss':>9}  steady epochs (s)"
    )
    for h in args.hidden:
        flops = c.flops_per_epoch(h, len(x))
        steady: dict[str, list[float]] = {name: [] for name in runners}
        last = {}
        for seed in range(args.rounds):  # runners take turns, so load hits all alike
            for name, run in runners.items():
                seconds, losses = run(x, y, h, args.epochs, seed=seed)
                steady[name].extend(seconds[1:])
                last[name] = losses[-1]
        times = {}
        for name in runners:
            times[name] = float(np.median(steady[name]))
            rate = flops / times[name] / 1e9
            print(
                f"{h:>4} {name:<18} {times[name]:>8.3f} {rate:>8.2f} {rate / roof:>8.1%} "
                f"{last[name]:>9.4f}  {' '.join(f'{s:.2f}' for s in steady[name])}",
                flush=True,
            )
        anchors = {k: t for k, t in times.items() if k != "gdjax.fit"}
        best = min(anchors, key=anchors.get)
        print(
            f"{h:>4} speed-up of gdjax.fit over the best anchor ({best}): "
            f"{anchors[best] / times['gdjax.fit']:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
