"""Pieces shared by the transformation factories (internal)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax.tree_utils import check_same_structure, is_none


def zero_count() -> jax.Array:
    """A fresh int32 step counter."""
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating at the int32 maximum instead of overflowing."""
    return optax.safe_increment(count)


def as_arrays(tree: Any) -> Any:
    """Turn Python-number leaves into JAX arrays (arrays and ``None`` pass through unchanged).

    Gradients may hold Python floats (``{"a": 1.0}``), as optax allows; the transformations
    read each leaf's ``dtype``, which a Python number lacks.
    """
    return jax.tree.map(lambda g: None if g is None else jnp.asarray(g), tree, is_leaf=is_none)


def scale_tree(factor: Any, tree: Any) -> Any:
    """Multiply every leaf by ``factor``, keeping each leaf's dtype (``None`` passes through).

    The factor is cast to the leaf's dtype first (as optax does). A complex ``factor`` times a
    real leaf gives a complex leaf (as in optax): the imaginary part is not dropped.
    """

    def scale_leaf(g):
        g = jnp.asarray(g)
        if jnp.iscomplexobj(factor) and not jnp.iscomplexobj(g):
            return factor * g
        return jnp.asarray(factor, g.dtype) * g  # the factor in the leaf's dtype, as optax does

    return jax.tree.map(lambda g: None if g is None else scale_leaf(g), tree, is_leaf=is_none)


def abs_sq(x: jax.Array) -> jax.Array:
    r"""$|x|^2 = x\,\bar x$ elementwise: real for complex ``x``, ``x * x`` for real ``x``."""
    return (x.conj() * x).real if jnp.iscomplexobj(x) else x * x


def ema(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    r"""Exponential moving average $(1-\beta)\,\phi(g) + \beta m$, kept in ``m``'s dtype.

    ``order=1`` averages the gradient itself, $\phi(g) = g$; ``order=2`` averages its squared
    modulus $\phi(g) = |g|^2 = g \bar g$ (the square for real gradients), so that second
    moments of complex parameters are real and non-negative, as in optax.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2; got {order!r}")
    power = (lambda g: g) if order == 1 else abs_sq
    return jax.tree.map(
        lambda g, m: (
            None if g is None else ((1 - decay) * power(jnp.asarray(g)) + decay * m).astype(m.dtype)
        ),
        updates,
        moments,
        is_leaf=is_none,
    )


def bias_correct(moment: Any, decay: Any, count: jax.Array) -> Any:
    r"""Adam's bias correction $m / (1 - \beta^t)$.

    $1 - \beta^t$ is computed in the precision JAX gives ``decay ** count`` (float32, or float64
    under ``jax_enable_x64``: never lower than float32, so a bfloat16 moment does not round
    $\beta^t$ to 1), then cast to the moment's dtype, as optax does.
    """
    correction = 1 - decay**count
    return jax.tree.map(
        lambda m: None if m is None else m / correction.astype(m.dtype), moment, is_leaf=is_none
    )


def check_updates(updates: Any, reference: Any) -> None:
    """Fail at trace time, with the paths that differ, if gradients don't match the state."""
    check_same_structure(updates, reference)


def check_params(updates: Any, params: Any) -> None:
    """For stateless transformations: if ``params`` are given, the gradients must match them.

    Runs at trace time only (a comparison of tree structures), so it costs nothing per step.
    """
    if params is not None:
        check_same_structure(updates, params, what="parameters")


def check_inner(name: str, inner: Any) -> None:
    """``inner`` of a wrapper must be a gradient transformation (an ``(init, update)`` pair)."""
    if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
        raise TypeError(
            f"{name} must be a GradientTransformation (with init and update, e.g. "
            f"gdjax.sgd(0.1)); got {type(inner).__name__}: {inner!r}"
        )
