"""One module per study; each defines ``STUDY`` (an :class:`experiments.Study`)."""

from __future__ import annotations

import jax

from experiments._core import Context


def prng_key(ctx: Context, seed: int | None = None) -> jax.Array:
    """The PRNG key for ``seed`` (default ``ctx.seed``): JAX's default generator (threefry) in
    the published runs, ``"rbg"`` (XLA's RngBitGenerator) under ``--quick``.

    Quick runs are mostly compilation, and on XLA:CPU a program that draws random numbers (a
    model's initialisation, dropout masks, an epoch's shuffle) compiles several times faster
    with "rbg": a small ResNet's init program in ~2 s instead of ~17 s.
    """
    return jax.random.key(ctx.seed if seed is None else seed, impl=ctx.pick("rbg", None))
