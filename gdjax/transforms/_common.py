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


def scale_tree(factor: Any, tree: Any) -> Any:
    """Multiply every leaf by ``factor``, keeping each leaf's dtype (``None`` passes through)."""
    return jax.tree.map(
        lambda g: None if g is None else (factor * g).astype(g.dtype), tree, is_leaf=is_none
    )


def ema(updates: Any, moments: Any, decay: Any, order: int) -> Any:
    r"""Exponential moving average of the ``order``-th power: $(1-\beta) g^k + \beta m$."""
    return jax.tree.map(
        lambda g, m: None if g is None else ((1 - decay) * (g**order) + decay * m).astype(m.dtype),
        updates,
        moments,
        is_leaf=is_none,
    )


def bias_correct(moment: Any, decay: Any, count: jax.Array) -> Any:
    r"""Adam's bias correction $m / (1 - \beta^t)$, computed in float32 then cast back."""
    correction = 1 - jnp.asarray(decay, jnp.float32) ** count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


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
