"""Moment updates shared by the newer adaptive transformations (internal).

Squares are $|g|^2$ (``g * conj(g)``), so complex gradients get optax's treatment.
``None`` gradient leaves pass through.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gdjax.tree_utils import is_none


def abs_sq(x: jax.Array) -> jax.Array:
    r"""$|x|^2$: ``x * conj(x)`` as a real array for complex ``x``, ``x * x`` otherwise."""
    if jnp.iscomplexobj(x):
        return (x * jnp.conj(x)).real
    return x * x


def first_moment(updates: Any, moments: Any, decay: Any) -> Any:
    r"""$(1-\beta)\,g + \beta\,m$, in the moment's dtype."""
    return jax.tree.map(
        lambda g, m: None if g is None else ((1 - decay) * g + decay * m).astype(m.dtype),
        updates,
        moments,
        is_leaf=is_none,
    )


def second_moment(updates: Any, moments: Any, decay: Any) -> Any:
    r"""$(1-\beta)\,|g|^2 + \beta\,v$, in the moment's dtype."""
    return jax.tree.map(
        lambda g, v: None if g is None else ((1 - decay) * abs_sq(g) + decay * v).astype(v.dtype),
        updates,
        moments,
        is_leaf=is_none,
    )
