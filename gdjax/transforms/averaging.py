r"""Averages over steps: an exponential moving average of the updates, and sums over k steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import (
    as_arrays,
    bias_correct,
    check_updates,
    increment,
    zero_count,
)
from gdjax.tree_utils import tree_map_none, tree_zeros_like


class EmaState(NamedTuple):
    """State of `ema`: step count and the running average."""

    count: jax.Array
    ema: Any


def ema(
    decay: float | jax.Array, debias: bool = True, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    r"""Exponential moving average of the updates (optax's ``ema``).

    $$
    e_t = \beta e_{t-1} + (1-\beta) u_t, \qquad
    u_t \leftarrow \frac{e_t}{1-\beta^t}\ \ (\texttt{debias=True}) \quad\text{or}\quad e_t
    $$

    Unlike `trace`, the new update enters with weight $1-\beta$; debiased, it is Adam's first
    moment.

    Args:
        decay: $\beta \in [0, 1)$.
        debias: divide by $1-\beta^t$; a Python bool.
        accumulator_dtype: dtype of the stored average (default: the parameters').
    """
    _checks.decay_rate("decay", decay)
    _checks.static_bool("debias", debias)

    def init_fn(params):
        return EmaState(zero_count(), tree_zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.ema)
        updates = as_arrays(updates)
        new = tree_map_none(lambda u, e: (1 - decay) * u + decay * e, updates, state.ema)
        count = increment(state.count)
        out = bias_correct(new, decay, count) if debias else new
        out = tree_map_none(lambda o, u: o.astype(u.dtype), out, updates)
        stored = tree_map_none(lambda n, e: n.astype(e.dtype), new, state.ema)
        return out, EmaState(count, stored)

    return optax.GradientTransformation(init_fn, update_fn)


class ApplyEvery(NamedTuple):
    """State of `apply_every` (optax's name): position in the group and the running sum."""

    count: jax.Array
    grad_acc: Any


def apply_every(k: int | jax.Array = 1) -> optax.GradientTransformation:
    r"""Sum the updates over ``k`` steps and emit the sum every ``k``-th step (zeros between).

    $$
    S_t = \begin{cases} u_t & t \equiv 0 \pmod k \\ S_{t-1} + u_t & \text{otherwise}\end{cases},
    \qquad u_t \leftarrow \begin{cases} S_t & t \equiv k-1 \pmod k \\ 0 & \text{otherwise}\end{cases}
    $$

    (steps counted from 0). Put it after the learning rate: the emitted step is the sum of
    ``k`` ordinary steps. `accumulate_gradients` instead averages gradients *before* an
    optimizer, which also keeps the optimizer's state still between groups.

    Args:
        k: the group size, an int >= 1 or an integer array (also traced).
    """
    _checks.count("k", k, minimum=1)

    def init_fn(params):
        return ApplyEvery(zero_count(), tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.grad_acc)
        updates = as_arrays(updates)
        position = state.count % k
        grad_acc = tree_map_none(
            lambda u, a: (jnp.where(position != 0, a, 0) + u).astype(a.dtype),
            updates,
            state.grad_acc,
        )
        emit = position == k - 1
        out = tree_map_none(lambda u, a: jnp.where(emit, a, 0).astype(u.dtype), updates, grad_acc)
        return out, ApplyEvery(increment(state.count) % k, grad_acc)

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["ApplyEvery", "EmaState", "apply_every", "ema"]
