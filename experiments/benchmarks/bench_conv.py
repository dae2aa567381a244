"""CNN training on XLA:CPU: XLA's convolution vs gdjax's patch-matrix convolution, in and out of
the compiled epoch loop.

On XLA:CPU a convolution inside a ``while`` loop (``lax.scan``, and so ``gdjax.fit``'s epoch
program) is not rewritten into the layout the fast convolution kernels take, and its gradient
falls back to a naive loop (jax-ml/jax#12868). This trains ``gdjax.models.CNN`` (conv 3x3 32 -
pool - conv 3x3 64 - pool - dense 128 - 10, ReLU), Adam 1e-3, batch 128, on the first ``--n``
Fashion-MNIST training images with four runners, taking turns:

- ``gdjax.fit`` with ``conv_implementation="patches"`` (the CPU default),
- ``gdjax.fit`` with ``conv_implementation="xla"`` (XLA's convolution inside the scan),
- the idiomatic flax + optax loop (a jitted step per host batch) with XLA's convolution: the
  anchor, and what flax's examples do,
- the same loop with the patch convolution.

It prints seconds per epoch (median of the epochs after the first, which compiles) and each
runner's speed relative to the anchor.

    python experiments/benchmarks/bench_conv.py --n 6400 --epochs 3

Smoke runs shrink it: ``--synthetic N`` (random images), ``--channels`` and ``--dense`` (a
smaller CNN) and ``--skip-loop-patches``.
"""

from __future__ import annotations

import argparse

import _common
import numpy as np

from gdjax.models import CNN

RUNNERS = {
    "gdjax.fit, patches": ("fit", "patches"),
    "gdjax.fit, xla conv": ("fit", "xla"),
    "flax+optax loop, xla conv": ("loop", "xla"),
    "flax+optax loop, patches": ("loop", "patches"),
}
ANCHOR = "flax+optax loop, xla conv"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6400, help="training images used (default 6400)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--synthetic", type=int, default=None, help="random data of this size")
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="per conv stage")
    ap.add_argument("--dense", type=int, default=128, help="width of the dense layer (0: none)")
    ap.add_argument(
        "--skip-loop-patches", action="store_true", help="leave out the last runner (smoke runs)"
    )
    args = ap.parse_args(argv)
    for name in ("n", "epochs", "rounds"):
        if getattr(args, name) < 1 + (name == "epochs"):
            ap.error(f"--{name} must be >= {1 + (name == 'epochs')}")

    x, y = _common.load_data(args.synthetic)
    x, y = x[: args.n].reshape(-1, 28, 28, 1), y[: args.n]
    print(f"CNN on {len(x)} images, batch 128, {args.epochs} epochs x {args.rounds} rounds")
    runners = dict(RUNNERS)
    if args.skip_loop_patches:
        del runners["flax+optax loop, patches"]
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    losses: dict[str, float] = {}
    for r in range(args.rounds):
        for name, (kind, impl) in runners.items():
            run = _common.gdjax_fit if kind == "fit" else _common.flax_loop
            model = CNN(channels=tuple(args.channels), dense=args.dense, conv_implementation=impl)
            s, loss = run(x, y, None, args.epochs, seed=r, model=model)
            seconds[name] += list(np.asarray(s)[1:])
            losses[name] = float(np.asarray(loss)[-1])
    anchor = float(np.median(seconds[ANCHOR]))
    print(f"{'runner':28s} {'s/epoch':>8s} {'vs anchor':>10s} {'last loss':>10s}")
    for name in runners:
        t = float(np.median(seconds[name]))
        print(f"{name:28s} {t:8.3f} {anchor / t:9.2f}x {losses[name]:10.4f}")
    fit_patches = float(np.median(seconds["gdjax.fit, patches"]))
    fit_xla = float(np.median(seconds["gdjax.fit, xla conv"]))
    print(f"patch convolution inside gdjax.fit: {fit_xla / fit_patches:.1f}x faster than XLA's")
    print(
        f"speed-up of gdjax.fit (patches) over the anchor ({ANCHOR}): {anchor / fit_patches:.2f}x"
    )


if __name__ == "__main__":
    main()
