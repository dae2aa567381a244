r"""Scaling transformations: the learning rate step $\theta \leftarrow \theta - \alpha g$."""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, Schedule, as_state_value, resolve
from gdjax.transforms._common import check_params, increment, scale_tree, zero_count


def scale(step_size: float | jax.Array) -> optax.GradientTransformation:
    r"""Multiply updates by a constant: $u \leftarrow s\,u$.

    Args:
        step_size: the factor ``s`` (a number or a JAX array, possibly traced). Use a negative
            value for descent, e.g. ``scale(-1e-3)``.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.scale(-0.5).update({"w": jnp.ones(2)}, gdjax.EmptyState())
        >>> u["w"].tolist()
        [-0.5, -0.5]
    """
    _checks.check_hyperparam("step_size", step_size)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return scale_tree(step_size, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByScheduleState(NamedTuple):
    """State of `scale_by_schedule` and `scale_by_learning_rate`.

    Attributes:
        count: number of updates applied so far.
        learning_rate: the (positive) learning rate used by the most recent update, so that a
            scheduled value can be read back with `get_hyperparam`.
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

    Args:
        learning_rate: $\alpha$, a non-negative number, a JAX array (traced values are
            fine: ``jax.vmap`` over learning rates needs no wrapper) or a schedule
            ``step -> value``. The value used is recorded in the state. ``None`` (optax's
            default) means no scaling: the identity transformation.
        flip_sign: multiply by $-\alpha$ (the default, descent) or by $+\alpha$; a Python
            bool.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.scale_by_learning_rate(0.1)
        >>> u, s = opt.update({"w": jnp.ones(2)}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].tolist(), float(s.learning_rate)
        ([-0.10000000149011612, -0.10000000149011612], 0.10000000149011612)
    """
    _checks.static_bool("flip_sign", flip_sign)
    if learning_rate is None:
        return optax.identity()
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    return _scale_by(learning_rate, sign=-1.0 if flip_sign else 1.0)


def _scale_by(learning_rate: ScalarOrSchedule, sign: float) -> optax.GradientTransformation:
    def init_fn(params):
        del params
        return ScaleByScheduleState(zero_count(), as_state_value(resolve(learning_rate, 0)))

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        lr = resolve(learning_rate, state.count)
        updates = scale_tree(sign * lr, updates)
        return updates, ScaleByScheduleState(increment(state.count), as_state_value(lr))

    return optax.GradientTransformation(init_fn, update_fn)
