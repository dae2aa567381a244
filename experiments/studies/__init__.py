"""One module per study; each defines ``STUDY`` (an :class:`experiments.Study`)."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from experiments._core import Context


def prng_key(ctx: Context, seed: int | None = None) -> jax.Array:
    """The PRNG key for ``seed`` (default ``ctx.seed``): JAX's default generator (threefry) in
    the published runs, ``"rbg"`` (XLA's RngBitGenerator) under ``--quick``.

    Quick runs are mostly compilation, and on XLA:CPU a program that draws random numbers (a
    model's initialisation, dropout masks, an epoch's shuffle) compiles several times faster
    with "rbg": a small ResNet's init program in ~2 s instead of ~17 s.
    """
    return jax.random.key(ctx.seed if seed is None else seed, impl=ctx.pick("rbg", None))


def init_variables(
    ctx: Context, model: nn.Module, *args: Any, seed: int | None = None, jit: bool = True
) -> Any:
    """``model``'s initial variables for inputs like ``args``: ``model.init`` with
    :func:`prng_key` (compiled with ``jax.jit`` unless ``jit=False``) in the published runs;
    under ``--quick``, NumPy draws (seeded by ``seed``, default ``ctx.seed``) in the shapes
    ``model.init`` gives.

    Compiling a model's initialisation costs 0.7-3.5 s of XLA:CPU time even with "rbg" keys
    (an LSTM's or a Transformer's most: every parameter folds its name into the key, and some
    initialisers factorise matrices), while tracing it for the shapes costs 0.05-0.2 s; a quick
    run checks that a study runs end to end, not how flax initialises. The draws have flax's
    default scales: LeCun-normal kernels (fan-in: all axes but the last), embeddings of
    standard deviation 1/√features, zero biases, unit scales, batch statistics of mean 0 and
    variance 1.
    """
    key = prng_key(ctx, seed)
    if not ctx.quick:
        return (jax.jit(model.init) if jit else model.init)(key, *args)
    shapes = jax.eval_shape(model.init, key, *args)
    rng = np.random.default_rng(ctx.seed if seed is None else seed)

    def draw(path: tuple, leaf: jax.ShapeDtypeStruct) -> np.ndarray:
        name = str(getattr(path[-1], "key", path[-1]))
        shape, dtype = leaf.shape, leaf.dtype
        if name in ("scale", "var"):
            return np.ones(shape, dtype)
        if len(shape) < 2 or not np.issubdtype(dtype, np.floating):
            return np.zeros(shape, dtype)  # biases, batch means
        fan_in = shape[-1] if name == "embedding" else math.prod(shape[:-1])
        return (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(dtype)

    return jax.device_put(jax.tree_util.tree_map_with_path(draw, shapes))
