r"""Scaling transformations: the learning rate step $\theta \leftarrow \theta - \alpha g$."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, Schedule, as_state_value
from gdjax.transforms._common import as_arrays, check_params, increment, scale_tree, zero_count
from gdjax.tree_utils import tree_map_none


def scale(step_size: float | jax.Array) -> optax.GradientTransformation:
    r"""Multiply updates by a constant: $u \leftarrow s\,u$.

    Args:
        step_size: the factor ``s`` (a number, also a complex one, or a JAX array, possibly
            traced). Use a negative value for descent, e.g. ``scale(-1e-3)``.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.scale(-0.5).update({"w": jnp.ones(2)}, gdjax.EmptyState())
        >>> u["w"].tolist()
        [-0.5, -0.5]
    """
    _checks.check_hyperparam("step_size", step_size, complex_ok=True)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return scale_tree(step_size, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_schedule`, and of `scale_by_learning_rate` given a schedule.

    Attributes:
        count: number of updates applied so far.
        learning_rate: the schedule's value used by the most recent update (before the sign
            flip of `scale_by_learning_rate`), so that it can be read back with
            `get_hyperparam`.
    """

    count: jax.Array
    learning_rate: jax.Array


def scale_by_schedule(step_size_fn: Schedule) -> optax.GradientTransformation:
    r"""Multiply updates by a schedule evaluated at the step count: $u \leftarrow s(t)\,u$.

    The value used at each step is recorded in the state as ``learning_rate``.

    Args:
        step_size_fn: a function ``count -> factor`` (see `gdjax.schedules`).
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"step_size_fn must be a schedule (a callable step -> value); got {step_size_fn!r}"
        )
    return _scale_by(step_size_fn, sign=1.0)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> optax.GradientTransformation:
    r"""Scale by the learning rate: $u \leftarrow -\alpha_t\,u$ (gradient *descent*).

    A constant learning rate (a number or an array) is `scale` by $\mp\alpha$, with an empty
    state; a schedule is evaluated at the step count and the value used is recorded in the
    state (`ScaleByScheduleState`, read it with ``get_hyperparam(state, "learning_rate")``).
    Constants are not recorded, so under ``optax.inject_hyperparams`` the learning rate
    appears once in the state and ``optax.tree_utils.tree_get``/``tree_set`` find it.

    Args:
        learning_rate: $\alpha$, a non-negative number, a JAX array (traced values are
            fine: ``jax.vmap`` over learning rates needs no wrapper) or a schedule
            ``step -> value``. ``None`` (optax's default) means no scaling: the identity
            transformation.
        flip_sign: multiply by $-\alpha$ (the default, descent) or by $+\alpha$; a Python
            bool.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.scale_by_learning_rate(gdjax.schedules.linear_schedule(0.2, 0.0, 4))
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> for _ in range(2):
        ...     u, state = opt.update({"w": jnp.ones(2)}, state)
        >>> u["w"].tolist(), round(float(gdjax.get_hyperparam(state, "learning_rate")), 6)
        ([-0.15000000596046448, -0.15000000596046448], 0.15)
    """
    _checks.static_bool("flip_sign", flip_sign)
    if learning_rate is None:
        return optax.identity()
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    sign = -1.0 if flip_sign else 1.0
    if not callable(learning_rate):
        return scale(sign * learning_rate)
    return _scale_by(learning_rate, sign=sign)


def _scale_by(learning_rate: Schedule, sign: float) -> optax.GradientTransformation:
    def init_fn(params):
        del params
        return ScaleByScheduleState(zero_count(), as_state_value(learning_rate(zero_count())))

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        lr = learning_rate(state.count)
        updates = scale_tree(sign * lr, updates)
        return updates, ScaleByScheduleState(increment(state.count), as_state_value(lr))

    return optax.GradientTransformation(init_fn, update_fn)


def identity() -> optax.GradientTransformation:
    r"""Pass the updates through unchanged: $u \leftarrow u$ (an empty state).

    Useful as a placeholder, e.g. for a parameter group that an optimizer should not change
    beyond the raw gradient.
    """

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return updates, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def set_to_zero() -> optax.GradientTransformation:
    r"""Replace every update by zeros: $u \leftarrow 0$ (the parameters do not move).

    Masked to a parameter group (`masked`) it freezes that group.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.set_to_zero().update({"w": jnp.ones(2)}, None)
        >>> u["w"].tolist()
        [0.0, 0.0]
    """

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return tree_map_none(jnp.zeros_like, as_arrays(updates)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
