"""Argument checks shared by ``gdjax.federated.fit`` and the Flower adapter: clear errors
before anything is compiled."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdjax.federated import _clients as cl
from gdjax.train.loss_call import LossCall


def check_optimizer(opt: Any, name: str, params: Any) -> None:
    """``opt`` must be an optax ``GradientTransformation`` whose ``init`` accepts ``params``."""
    if not isinstance(opt, optax.GradientTransformation):
        raise TypeError(
            f"{name} must be an optax GradientTransformation (e.g. gdjax.sgd(1.0)), got "
            f"{type(opt).__name__}"
        )
    try:
        jax.eval_shape(opt.init, params)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name}.init failed on params: {err}") from err


def positive_int(value: Any, name: str) -> int:
    """Check an integer argument ``>= 1`` such as ``rounds``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_key(key: Any) -> jax.Array:
    """Check a PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``)."""
    if isinstance(key, int):
        raise TypeError(f"key must be a JAX PRNG key such as jax.random.key({key}), got an int")
    if not isinstance(key, jax.Array | np.ndarray):
        raise TypeError(f"key must be a JAX PRNG key, got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise TypeError(
            f"key must be a JAX PRNG key (jax.random.key(0)); got {key.dtype} {key.shape}"
        )
    return jnp.asarray(key)


def describe(batch: Any) -> str:
    """``path: shape dtype`` of every leaf, for error messages."""
    return ", ".join(
        f"batch{p}: {tuple(x.shape)} {x.dtype}"
        for p, x in zip(cl.leaf_paths(batch), jax.tree.leaves(batch), strict=True)
    )


def probe_loss(call: LossCall, params: Any, data: Any, rows: int) -> None:
    """Evaluate the loss abstractly on a batch of ``rows``: clear errors before compiling."""
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((rows, *a.shape[1:]), a.dtype), data)
    try:
        loss = jax.eval_shape(lambda p, b: call(p, None, b, jax.random.key(0))[0], params, batch)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"{call.name} failed on a batch of {describe(batch)} — check that the data match "
            f"what {call.name} expects: {err}"
        ) from err
    shape = getattr(loss, "shape", None)
    if shape != ():
        raise ValueError(
            f"{call.name} must return a scalar loss (the mean over the batch), got shape {shape}"
        )
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise TypeError(f"{call.name} must return a floating-point loss, got dtype {loss.dtype}")


def probe_metrics(metrics: dict, params: Any, data: Any, rows: int) -> None:
    """Evaluate each metric abstractly on a batch: it must return a scalar."""
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((rows, *a.shape[1:]), a.dtype), data)
    for name, fn in metrics.items():
        try:
            out = jax.eval_shape(fn, params, batch)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"metrics[{name!r}] failed when called as fn(params, batch) on a batch of "
                f"{describe(batch)}: {err}"
            ) from err
        if getattr(out, "shape", None) != ():
            raise ValueError(f"metrics[{name!r}] must return a scalar (the mean over the batch)")
