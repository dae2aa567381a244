"""Shared helpers for the models: activation lookup and constructor-argument checks."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

Activation = str | Callable[[jax.Array], jax.Array]

#: Activation names accepted by the models' ``activation`` argument.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "sigmoid": nn.sigmoid,
    "tanh": nn.tanh,
    "leaky_relu": nn.leaky_relu,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "silu": nn.silu,
    "identity": lambda x: x,
}


def get_activation(activation: Activation) -> Callable[[jax.Array], jax.Array]:
    """Return the function for an activation name (see :data:`ACTIVATIONS`) or a callable."""
    if callable(activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a callable; got {activation!r}"
    )


def check_int(name: str, value: Any, low: int = 1) -> None:
    """``value`` is an ``int >= low`` (``TypeError``/``ValueError`` naming ``name`` otherwise)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}: {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}")


def check_ints(name: str, values: Any, *, allow_empty: bool = False) -> None:
    """``values`` is a sequence of positive ints."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of ints; got {type(values).__name__}")
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    for i, v in enumerate(values):
        check_int(f"{name}[{i}]", v)


def check_rate(name: str, value: Any) -> None:
    """``value`` is a number in ``[0, 1)`` (a dropout rate)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
