"""Guards against bad steps: skip updates whose gradients are not finite."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_inner, check_params
from gdjax.tree_utils import tree_zeros_like


class ApplyIfFiniteState(NamedTuple):
    """State of `apply_if_finite`.

    Attributes:
        notfinite_count: consecutive non-finite steps so far.
        last_finite: whether the latest gradient was finite.
        total_notfinite: all skipped steps since ``init``.
        inner_state: the wrapped transformation's state (untouched on skipped steps).
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


def apply_if_finite(
    inner: optax.GradientTransformation, max_consecutive_errors: int | jax.Array
) -> optax.GradientTransformationExtraArgs:
    """Run ``inner`` only when every gradient element is finite; otherwise output zeros.

    A skipped step leaves the inner state (momentum, moments, step count) unchanged and is
    counted in ``total_notfinite``. After more than ``max_consecutive_errors`` non-finite steps in
    a row the update is applied anyway, so that a run which can no longer recover fails loudly
    instead of silently standing still.

    Args:
        inner: the transformation to guard (e.g. a whole optimizer).
        max_consecutive_errors: consecutive non-finite steps tolerated (required, as in optax):
            an int >= 0 or an integer JAX array, also a traced one.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.apply_if_finite(gdjax.sgd(0.1), max_consecutive_errors=5)
        >>> params = {"w": jnp.ones(2)}
        >>> state = opt.init(params)
        >>> u, state = opt.update({"w": jnp.array([jnp.nan, 1.0])}, state, params)
        >>> u["w"].tolist(), int(state.total_notfinite)
        ([0.0, 0.0], 1)
    """
    check_inner("inner", inner)
    _checks.count("max_consecutive_errors", max_consecutive_errors, minimum=0)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return ApplyIfFiniteState(
            jnp.zeros([], jnp.int32),
            jnp.array(True),
            jnp.zeros([], jnp.int32),
            inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        check_params(updates, params)
        leaves = jax.tree.leaves(updates)
        finite = (
            jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in leaves]))
            if leaves
            else (jnp.array(True))
        )
        notfinite_count = jnp.where(finite, 0, optax.safe_increment(state.notfinite_count))

        def apply(_):
            return inner.update(updates, state.inner_state, params, **extra_args)

        def skip(_):
            return tree_zeros_like(updates), state.inner_state

        out, inner_state = jax.lax.cond(
            finite | (notfinite_count > max_consecutive_errors), apply, skip, None
        )
        total = jnp.where(
            finite, state.total_notfinite, optax.safe_increment(state.total_notfinite)
        )
        return out, ApplyIfFiniteState(
            notfinite_count.astype(jnp.int32), finite, total, inner_state
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
