"""Checks shared by the transformations that need more than the gradient (internal).

They take what they need through optax's extra arguments: ``value`` (the objective at
``params``), ``grad`` (its gradient) and ``value_fn`` (the objective itself), the names
`optax.lbfgs` uses and `gdjax.fit` / `gdjax.minimize` pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def require_value_fn(name: str, value_fn: Any) -> Callable[[Any], Any]:
    """Fail at trace time, naming the transformation, when ``value_fn`` was not passed."""
    if value_fn is None:
        raise TypeError(
            f"{name} needs the objective: call update(grads, state, params, value_fn=f) with "
            "f(params) -> scalar loss (gdjax.minimize and gdjax.fit pass it for you)"
        )
    if not callable(value_fn):
        raise TypeError(f"{name}: value_fn must be a function params -> scalar; got {value_fn!r}")
    return value_fn


def require_params(name: str, params: Any) -> Any:
    """``params`` is needed (the point the objective is evaluated at)."""
    if params is None:
        raise TypeError(f"{name} needs params: call update(grads, state, params, ...)")
    return params


def check_function(name: str, fn: Any) -> None:
    """A function given when the transformation is built (a residual function, say)."""
    if not callable(fn):
        raise TypeError(f"{name} must be a function of the parameters; got {fn!r}")
