"""Run a transformation only at some steps, or skip updates that are too large."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_inner, increment, zero_count
from gdjax.transforms._moments import abs_sq
from gdjax.tree_utils import tree_zeros_like


class ConditionallyTransformState(NamedTuple):
    """State of `conditionally_transform`: the inner state and the number of calls so far."""

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """State of `conditionally_mask`: the number of calls so far and the inner state."""

    step: jax.Array
    inner_state: Any


def _conditional(inner, should_transform_fn, forward_extra_args, on_skip):
    check_inner("inner", inner)
    if not callable(should_transform_fn):
        raise TypeError(
            f"should_transform_fn must be a function step -> bool; got {should_transform_fn!r}"
        )
    _checks.static_bool("forward_extra_args", forward_extra_args)
    inner = optax.with_extra_args_support(inner)

    def step(updates, state_inner, step_count, params, extra_args):
        def run(_):
            return inner.update(updates, state_inner, params, **extra_args)

        def skip(_):
            return on_skip(updates), state_inner

        condition = should_transform_fn(step_count, **(extra_args if forward_extra_args else {}))
        return jax.lax.cond(condition, run, skip, None)

    return inner, step


def conditionally_transform(
    inner: optax.GradientTransformation,
    should_transform_fn: Callable[..., Any],
    forward_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Apply ``inner`` at the steps where ``should_transform_fn(t)`` holds; else pass through.

    $$
    (u_t, S_{t+1}) = \begin{cases} \operatorname{inner}(g_t, S_t) & c(t) \\ (g_t, S_t) &
    \text{otherwise} \end{cases}
    $$

    with $t$ the number of earlier calls (from 0). `conditionally_mask` outputs zeros instead.

    Args:
        inner: the transformation.
        should_transform_fn: $c$: ``step -> bool`` (a traced int32 scalar in, a bool scalar
            out); with ``forward_extra_args`` it also gets ``update``'s extra arguments.
        forward_extra_args: pass extra arguments on to $c$; a Python bool.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.conditionally_transform(gdjax.scale(10.0), lambda t: t % 2 == 1)
        >>> g, state = jnp.ones(1), None
        >>> state = opt.init(g)
        >>> out = []
        >>> for _ in range(3):
        ...     u, state = opt.update(g, state)
        ...     out.append(float(u[0]))
        >>> out
        [1.0, 10.0, 1.0]
    """
    inner, step = _conditional(inner, should_transform_fn, forward_extra_args, lambda u: u)

    def init_fn(params):
        return ConditionallyTransformState(inner.init(params), zero_count())

    def update_fn(updates, state, params=None, **extra_args):
        out, inner_state = step(updates, state.inner_state, state.step, params, extra_args)
        return out, ConditionallyTransformState(inner_state, increment(state.step))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def conditionally_mask(
    inner: optax.GradientTransformation,
    should_transform_fn: Callable[..., Any],
    forward_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Apply ``inner`` where ``should_transform_fn(t)`` holds; else output zeros.

    $$
    (u_t, S_{t+1}) = \begin{cases} \operatorname{inner}(g_t, S_t) & c(t) \\ (0, S_t) &
    \text{otherwise} \end{cases}
    $$

    E.g. ``conditionally_mask(opt, lambda t: t >= 100)`` keeps the parameters still for 100
    steps.

    Args:
        inner: the transformation.
        should_transform_fn: $c$: ``step -> bool`` (see `conditionally_transform`).
        forward_extra_args: pass extra arguments on to $c$; a Python bool.
    """
    inner, step = _conditional(inner, should_transform_fn, forward_extra_args, tree_zeros_like)

    def init_fn(params):
        return ConditionallyMaskState(zero_count(), inner.init(params))

    def update_fn(updates, state, params=None, **extra_args):
        out, inner_state = step(updates, state.inner_state, state.step, params, extra_args)
        return out, ConditionallyMaskState(increment(state.step), inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def skip_large_updates(
    updates: Any,
    gradient_step: jax.Array,
    params: Any,
    max_squared_norm: float | jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    r"""A ``should_skip_update_fn`` for ``optax.MultiSteps``: skip when $\|g\|^2 \ge$ the limit.

    Returns ``(skip, info)`` with ``skip`` $= \neg(\|g\|_2^2 < \tau)$ (so NaN is skipped too)
    and ``info = {"should_skip": skip, "norm_squared": ||g||^2}``. Bind the limit with
    ``functools.partial(gdjax.skip_large_updates, max_squared_norm=tau)``.

    Args:
        updates: the gradients.
        gradient_step: unused (the protocol's step count).
        params: unused.
        max_squared_norm: $\tau$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> skip, info = gdjax.skip_large_updates({"w": jnp.array([3.0, 4.0])}, 0, None, 20.0)
        >>> bool(skip), float(info["norm_squared"])
        (True, 25.0)
    """
    del gradient_step, params
    _checks.check_hyperparam("max_squared_norm", max_squared_norm)
    leaves = [jnp.sum(abs_sq(g)) for g in jax.tree.leaves(updates)]
    norm_sq = sum(leaves[1:], leaves[0]) if leaves else jnp.zeros([])
    skip = jnp.logical_not(norm_sq < max_squared_norm)
    return skip, {"should_skip": skip, "norm_squared": norm_sq}


__all__ = [
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "conditionally_mask",
    "conditionally_transform",
    "skip_large_updates",
]
