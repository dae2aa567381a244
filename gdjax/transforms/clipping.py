r"""Gradient clipping, the standard cure for exploding gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import abs_sq, as_arrays, check_params
from gdjax.tree_utils import is_none, tree_global_norm


def _stateless(update):
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def clip(max_delta: float | jax.Array) -> optax.GradientTransformation:
    r"""Clip each gradient element to $[-\delta, \delta]$ ("clip by value").

    Args:
        max_delta: $\delta \ge 0$.
    """
    _checks.non_negative("max_delta", max_delta)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        out = jax.tree.map(
            lambda g: None if g is None else jnp.clip(g, -max_delta, max_delta).astype(g.dtype),
            updates,
            is_leaf=is_none,
        )
        return out, state

    return _stateless(update_fn)


def clip_by_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale each leaf (each parameter array) separately so its L2 norm is at most ``max_norm``.

    $$
    g_i \leftarrow g_i \cdot \min\!\left(1, \frac{c}{\lVert g_i \rVert_2}\right)
    $$

    Args:
        max_norm: $c \ge 0$.
    """
    _checks.non_negative("max_norm", max_norm)

    def _clip(g):
        g = jnp.asarray(g)
        wide = g.astype(jnp.promote_types(g.dtype, jnp.float32))  # bfloat16 sums in float32
        norm = jnp.sqrt(jnp.sum(abs_sq(wide)))
        factor = jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-30), 1.0)
        return (g * factor).astype(g.dtype)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        out = jax.tree.map(lambda g: None if g is None else _clip(g), updates, is_leaf=is_none)
        return out, state

    return _stateless(update_fn)


def clip_by_global_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale the whole gradient so its global L2 norm is at most ``max_norm`` (Pascanu et al.).

    $$
    \lVert g \rVert = \sqrt{\textstyle\sum_i \lVert g_i \rVert_2^2}, \qquad
    g \leftarrow g \cdot \frac{c}{\max(c, \lVert g \rVert)}
    $$

    The direction of the step is kept; only its length is capped.

    Args:
        max_norm: $c \ge 0$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.clip_by_global_norm(1.0).update({"w": jnp.array([3.0, 4.0])}, None)
        >>> u["w"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    _checks.non_negative("max_norm", max_norm)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        g_norm = tree_global_norm(updates)
        trigger = g_norm < max_norm
        out = jax.tree.map(
            lambda t: (
                None
                if t is None
                else jnp.where(trigger, t, (t / g_norm.astype(t.dtype)) * max_norm).astype(t.dtype)
            ),
            updates,
            is_leaf=is_none,
        )
        return out, state

    return _stateless(update_fn)
