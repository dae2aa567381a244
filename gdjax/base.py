"""The optimizer protocol: gdjax transformations *are* optax transformations.

Everything here is either re-exported from optax (so that gdjax and optax objects mix freely
in both directions) or a small helper that the transformation factories share.

A gradient transformation is a pair of pure functions::

    state = init(params)
    updates, state = update(grads, state, params)
    params = apply_updates(params, updates)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import jax
import jax.numpy as jnp
import optax

GradientTransformation = optax.GradientTransformation
GradientTransformationExtraArgs = optax.GradientTransformationExtraArgs
EmptyState = optax.EmptyState
OptState = optax.OptState
Params = optax.Params
Updates = optax.Updates

#: A schedule maps a step count (an int32 scalar) to a hyperparameter value.
Schedule: TypeAlias = Callable[[jax.Array], jax.Array]
#: A hyperparameter: a Python number, a (possibly traced) JAX array, or — where the argument
#: says so — a schedule evaluated at the transformation's step count.
Scalar: TypeAlias = float | int | jax.Array
ScalarOrSchedule: TypeAlias = Scalar | Schedule


def chain(*transforms: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Compose transformations left to right (``optax.chain``; gdjax and optax parts mix).

    Examples:
        >>> import optax, gdjax
        >>> opt = gdjax.chain(gdjax.clip_by_global_norm(1.0), optax.scale_by_adam(), gdjax.scale(-1e-3))
    """
    return optax.chain(*transforms)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates`` leaf by leaf, keeping each parameter's dtype.

    ``None`` leaves in ``updates`` leave the parameter unchanged.
    """
    return optax.apply_updates(params, updates)


def resolve(hyperparam: ScalarOrSchedule, count: jax.Array) -> jax.Array | float:
    """Evaluate a hyperparameter at step ``count``: call it if it is a schedule, else return it."""
    return hyperparam(count) if callable(hyperparam) else hyperparam


def default_float() -> Any:
    """JAX's default float dtype now: float32, or float64 under ``jax_enable_x64``."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def as_state_value(value: Any) -> jax.Array:
    """Store a resolved hyperparameter in optimizer state in the default float dtype.

    That is float32, or float64 under ``jax_enable_x64``, so a recorded value keeps the
    precision it was computed in. The value must be a scalar: a schedule that returns one
    value per parameter or per column would otherwise scale each differently without a word.
    """
    out = jnp.asarray(value, dtype=default_float())
    if out.ndim:
        raise ValueError(
            "a hyperparameter, or the value its schedule returns, must be a scalar; got shape "
            f"{out.shape}. For different values per parameter group, give each group its own "
            "optimizer (gdjax.partition)"
        )
    return out


__all__ = [
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "OptState",
    "Params",
    "Scalar",
    "ScalarOrSchedule",
    "Schedule",
    "Updates",
    "apply_updates",
    "as_state_value",
    "chain",
    "default_float",
    "resolve",
]
