r"""Optimistic gradients: extrapolate with the previous gradient, for min-max games.

Plain gradient descent-ascent cycles around the saddle of $f(x, y) = xy$; adding a negative
momentum $-\beta(g_t - g_{t-1})$ (an approximation of the extra-gradient method) makes the last
iterate converge.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import as_state_value
from gdjax.transforms._common import check_updates
from gdjax.tree_utils import is_none, tree_zeros_like


class ScaleByOptimisticGradientState(NamedTuple):
    """State of `scale_by_optimistic_gradient`.

    Attributes:
        is_initial_step: whether no gradient has been seen yet.
        previous_gradient: $g_{t-1}$.
        alpha: the coefficient $\\alpha$ (readable with `get_hyperparam`).
        beta: the coefficient $\\beta$ (readable with `get_hyperparam`).
    """

    is_initial_step: jax.Array
    previous_gradient: Any
    alpha: jax.Array
    beta: jax.Array


def scale_by_optimistic_gradient(
    alpha: float | jax.Array = 1.0, beta: float | jax.Array = 1.0
) -> optax.GradientTransformation:
    r"""Generalized optimistic gradient (Mokhtari et al., 2019).

    $$
    u_t = (\alpha + \beta)\,g_t - \beta\,g_{t-1}, \qquad g_0 := g_1
    $$

    (on the first step the missing previous gradient is taken to be the current one, so
    $u_1 = \alpha g_1$). Follow it with `scale_by_learning_rate`.

    Args:
        alpha: $\alpha$, the weight of the current gradient: a number or an array.
        beta: $\beta$, the weight of the negative momentum $g_t - g_{t-1}$.
    """
    _checks.check_hyperparam("alpha", alpha)
    _checks.check_hyperparam("beta", beta)

    def init_fn(params):
        return ScaleByOptimisticGradientState(
            jnp.asarray(True), tree_zeros_like(params), as_state_value(alpha), as_state_value(beta)
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.previous_gradient)

        def step(g, prev):
            prev = jnp.where(state.is_initial_step, g, prev)
            return ((alpha + beta) * g - beta * prev).astype(g.dtype)

        out = jax.tree.map(
            lambda g, p: None if g is None else step(g, p),
            updates,
            state.previous_gradient,
            is_leaf=is_none,
        )
        previous = jax.tree.map(
            lambda g, p: p if g is None else g.astype(p.dtype),
            updates,
            state.previous_gradient,
            is_leaf=is_none,
        )
        return out, ScaleByOptimisticGradientState(
            jnp.asarray(False), previous, state.alpha, state.beta
        )

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["ScaleByOptimisticGradientState", "scale_by_optimistic_gradient"]
