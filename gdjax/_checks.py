"""Validation of hyperparameters at construction time.

Only concrete Python numbers (and NumPy scalars) are checked: JAX arrays may be traced under
``jit``/``vmap`` and schedules are functions, so their values are not known when an optimizer
is built. Each check raises a ``ValueError`` naming the argument and the allowed range, or a
``TypeError`` naming the argument and the accepted types.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
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
    if math.isinf(value) and "learning_rate" in name:
        raise ValueError(f"{name} must be finite; got {value}")
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


# --- arguments of the training entry points (fit, sweep and what builds on them) -----------
# The same style as above: the argument's name first, then its value.


def python_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """A Python (or NumPy) integer ``>= minimum``, such as ``epochs``; returns it as an int."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def optional_int(name: str, value: Any, *, minimum: int = 1) -> int | None:
    """``None`` or a Python integer ``>= minimum``."""
    return None if value is None else python_int(name, value, minimum=minimum)


def flag(name: str, value: Any) -> bool:
    """A switch that must be a real bool: ``shuffle="False"`` is an error, not ``True``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}")
    return bool(value)


def choice(name: str, value: Any, choices: tuple) -> Any:
    """One of ``choices``."""
    if not isinstance(value, str | int | type(None)) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def non_negative_number(name: str, value: Any) -> float:
    """A finite real number ``>= 0`` (a Python or NumPy scalar)."""
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def instance(name: str, value: Any, cls: type | tuple[type, ...], what: str) -> Any:
    """``value`` is an instance of ``cls`` (``what`` names the expected kind in the error)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}: {value!r}")
    return value


def function(name: str, value: Any) -> Callable[..., Any]:
    """A callable."""
    if not callable(value):
        raise TypeError(f"{name} must be a function, got {type(value).__name__}: {value!r}")
    return value


def leaf_paths(tree: Any) -> list[str]:
    """``jax.tree_util.keystr`` of every leaf, ``""`` for a bare array."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def arrays(name: str, tree: Any) -> None:
    """Every leaf of ``tree`` is a NumPy or JAX array (not a list, a string or an object)."""
    for path, leaf in zip(leaf_paths(tree), jax.tree.leaves(tree), strict=True):
        if not isinstance(leaf, jax.Array | np.ndarray) or leaf.dtype == object:
            raise TypeError(
                f"{name}{path} must be a NumPy or JAX array, got {type(leaf).__name__}"
                + (": " + repr(leaf)[:60] if isinstance(leaf, str | bytes) else "")
            )


def data_set(name: str, data: Any) -> int:
    """A non-empty pytree of arrays sharing their leading dimension ``N``; returns ``N``.

    Values (NaN, inf) are checked where the data lives, by the engine.
    """
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{name} must be an array or a tuple/pytree of arrays; got no arrays")
    arrays(name, data)
    paths = leaf_paths(data)
    for path, leaf in zip(paths, leaves, strict=True):
        if leaf.ndim == 0:
            raise ValueError(f"{name}{path} is a scalar; every array needs a leading N axis")
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) > 1:
        shapes = ", ".join(
            f"{name}{p}: {tuple(x.shape)}" for p, x in zip(paths, leaves, strict=True)
        )
        raise ValueError(f"{name}: all arrays must share the leading dimension N; got {shapes}")
    (n,) = sizes
    if n == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    return int(n)


def same_layout(name: str, value: Any, reference: Any, reference_name: str = "data") -> None:
    """``value`` has the structure, dtypes and trailing shapes of ``reference``."""
    if jax.tree.structure(value) != jax.tree.structure(reference):
        raise ValueError(
            f"{name} must have the same structure as {reference_name}: "
            f"{jax.tree.structure(reference)}; got {jax.tree.structure(value)}"
        )
    for path, v, d in zip(
        leaf_paths(reference), jax.tree.leaves(value), jax.tree.leaves(reference), strict=True
    ):
        if v.dtype != d.dtype:
            raise ValueError(
                f"{name}{path} has dtype {v.dtype} but {reference_name}{path} has {d.dtype} "
                "(labels of the wrong dtype?)"
            )
        if tuple(v.shape[1:]) != tuple(d.shape[1:]):
            raise ValueError(
                f"{name}{path} has per-example shape {tuple(v.shape[1:])} but "
                f"{reference_name}{path} has {tuple(d.shape[1:])} (labels of the wrong shape?)"
            )


def batch_size(name: str, value: Any, n: int) -> int:
    """``None`` (the whole set) or an int in ``[1, n]``; returns the batch size."""
    if value is None:
        return n
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None (full batch), got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1 (or None for full batch), got {value}")
    if value > n:
        raise ValueError(
            f"{name}={value} is larger than the number of examples N={n}; "
            "pass batch_size=None for full-batch gradient descent"
        )
    return int(value)


def prng_key(name: str, value: Any) -> jax.Array:
    """A single PRNG key (``jax.random.key(seed)`` or a legacy ``PRNGKey``)."""
    if isinstance(value, int):
        raise TypeError(
            f"{name} must be a JAX PRNG key such as jax.random.key({value}), got an int"
        )
    if not isinstance(value, jax.Array | np.ndarray):
        raise TypeError(f"{name} must be a JAX PRNG key, got {type(value).__name__}")
    if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        if value.shape != ():
            raise ValueError(f"{name} must be a single PRNG key, got shape {value.shape}")
        return value
    if value.dtype != np.uint32 or value.shape != (2,):
        raise TypeError(
            f"{name} must be a JAX PRNG key (jax.random.key(0)); got dtype {value.dtype}, "
            f"shape {value.shape}"
        )
    return jax.random.wrap_key_data(jax.numpy.asarray(value))


def float_params(name: str, params: Any) -> None:
    """Parameters are floating-point (or complex) arrays: gradient descent moves them."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError(f"{name} holds no arrays to train")
    for path, leaf in zip(leaf_paths(params), leaves, strict=True):
        if isinstance(leaf, str | bytes) or not hasattr(leaf, "dtype"):
            raise TypeError(
                f"{name}{path} must be an array of floats, got {type(leaf).__name__}: {leaf!r:.60}"
            )
        if not jax.numpy.issubdtype(leaf.dtype, jax.numpy.inexact):
            raise TypeError(
                f"{name}{path} has dtype {leaf.dtype}; parameters must be floating-point "
                "(write 0.0, not 0)"
            )


def warn_if_eps_vanishes(owner: str, eps: Any, params: Any) -> None:
    """Warn when a concrete ``eps > 0`` rounds to zero in a floating dtype of ``params``.

    Adam-like denominators ``sqrt(v) + eps`` then divide 0 by 0 (NaN) wherever a gradient
    entry has always been zero; float16 cannot hold optax's default ``eps = 1e-8``.
    """
    if not _is_python_number(eps) or not eps > 0:
        return
    for leaf in jax.tree.leaves(params):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            continue
        if float(np.asarray(eps, dtype)) == 0.0:
            tiny = float(jnp.finfo(dtype).smallest_normal)
            warnings.warn(
                f"{owner}: eps={eps:g} rounds to 0 in {np.dtype(dtype).name}, the parameters' "
                "dtype, so an entry whose gradient stays zero divides 0 by 0 (NaN); pass an eps "
                f"that {np.dtype(dtype).name} holds (at least {tiny:g}), or keep the parameters "
                "in float32 (gdjax.fit's precision= option)",
                RuntimeWarning,
                stacklevel=4,
            )
            return
