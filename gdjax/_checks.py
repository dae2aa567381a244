"""Validation of hyperparameters at construction time.

Only concrete Python numbers (and NumPy scalars) are checked: JAX arrays may be traced under
``jit``/``vmap`` and schedules are functions, so their values are not known when an optimizer
is built. Each check raises a ``ValueError`` naming the argument and the allowed range, or a
``TypeError`` naming the argument and the accepted types.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np


def _is_python_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_hyperparam(
    name: str, value: Any, *, schedule_ok: bool = False, complex_ok: bool = False
) -> None:
    """Raise ``TypeError`` unless ``value`` is a number, an array, or (if allowed) a callable.

    Complex Python numbers are accepted only with ``complex_ok`` (for `scale`'s factor).
    """
    if _is_python_number(value) or isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return
    if complex_ok and isinstance(value, numbers.Complex) and not isinstance(value, bool):
        return
    if schedule_ok and callable(value):
        return
    expected = "a number, a JAX array" + (" or a schedule (step -> value)" if schedule_ok else "")
    raise TypeError(f"{name} must be {expected}; got {type(value).__name__}: {value!r}")


def check_range(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    schedule_ok: bool = False,
) -> None:
    """Check a hyperparameter's type, and its range when it is a concrete Python number."""
    check_hyperparam(name, value, schedule_ok=schedule_ok)
    if not _is_python_number(value):
        return
    value = float(value)
    ok = not math.isnan(value)
    if low is not None:
        ok &= value >= low if low_inclusive else value > low
    if high is not None:
        ok &= value <= high if high_inclusive else value < high
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}; got {value!r}")


def non_negative(name: str, value: Any, *, schedule_ok: bool = False) -> None:
    """``value >= 0``."""
    check_range(name, value, low=0.0, schedule_ok=schedule_ok)


def positive(name: str, value: Any, *, schedule_ok: bool = False) -> None:
    """``value > 0``."""
    check_range(name, value, low=0.0, low_inclusive=False, schedule_ok=schedule_ok)


def decay_rate(name: str, value: Any, *, schedule_ok: bool = False) -> None:
    """A momentum or exponential-decay rate: ``0 <= value < 1``."""
    check_range(name, value, low=0.0, high=1.0, high_inclusive=False, schedule_ok=schedule_ok)


def momentum(name: str, value: Any, *, schedule_ok: bool = False) -> None:
    """A momentum coefficient: ``0 <= value <= 1`` (1 accumulates the plain sum, as optax allows)."""
    check_range(name, value, low=0.0, high=1.0, schedule_ok=schedule_ok)


def is_traced(value: Any) -> bool:
    """Whether ``value`` is an abstract value under ``jit``/``vmap``/``grad`` (not concrete)."""
    return isinstance(value, jax.core.Tracer)


def static_bool(name: str, value: Any) -> None:
    """A switch that selects the update rule when the transformation is built: a Python bool.

    Such arguments change which operations are traced (or the state's structure), so they cannot
    be JAX arrays; a traced value gets a ``TypeError`` naming the argument.
    """
    if isinstance(value, (bool, np.bool_)):
        return
    raise TypeError(
        f"{name} must be a Python bool (it selects the update rule when the transformation is "
        f"built, so it cannot be a JAX array or traced); got {type(value).__name__}: {value!r}"
    )


def count(name: str, value: Any, *, minimum: int | None = 1) -> None:
    """A count of steps: a Python int, or an integer scalar array (possibly traced).

    Concrete values (Python ints, NumPy values and non-traced JAX arrays) must be
    ``>= minimum`` (any int when ``minimum`` is ``None``); a traced value cannot be checked
    and is accepted.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
        return
    if isinstance(value, (jax.Array, np.ndarray, np.generic)) and np.issubdtype(
        value.dtype, np.integer
    ):
        if np.ndim(value) != 0:
            raise ValueError(f"{name} must be a scalar; got an array of shape {np.shape(value)}")
        if minimum is not None and not is_traced(value) and int(value) < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}; got {int(value)}")
        return
    raise TypeError(
        f"{name} must be an int or an integer JAX array; got {type(value).__name__}: {value!r}"
    )


def positive_int(name: str, value: Any) -> None:
    """A count such as the number of accumulation steps: an ``int >= 1`` or an integer array."""
    count(name, value, minimum=1)
