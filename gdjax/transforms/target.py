r"""Slow copies of parameters: Polyak averaging and periodically refreshed target networks.

These are functions on parameter trees, not transformations: call them after each step to
keep an evaluation copy (``incremental_update``) or a reinforcement-learning target network
(``periodic_update``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gdjax import _checks
from gdjax.tree_utils import is_none


def incremental_update(new_tensors: Any, old_tensors: Any, step_size: float | jax.Array) -> Any:
    r"""Polyak averaging: $\bar\theta \leftarrow \tau\,\theta + (1-\tau)\,\bar\theta$.

    Args:
        new_tensors: the online parameters $\theta$.
        old_tensors: the running average $\bar\theta$.
        step_size: $\tau \in [0, 1]$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> gdjax.incremental_update(jnp.array([1.0]), jnp.array([0.0]), 0.25).tolist()
        [0.25]
    """
    _checks.check_range("step_size", step_size, low=0.0, high=1.0)
    return jax.tree.map(
        lambda new, old: None if new is None else step_size * new + (1.0 - step_size) * old,
        new_tensors,
        old_tensors,
        is_leaf=is_none,
    )


def periodic_update(
    new_tensors: Any, old_tensors: Any, steps: jax.Array | int, update_period: jax.Array | int
) -> Any:
    r"""Target network: $\bar\theta \leftarrow \theta$ when $t \bmod K = 0$, else unchanged.

    Args:
        new_tensors: the online parameters $\theta$.
        old_tensors: the target parameters $\bar\theta$.
        steps: $t$, the online network's step count (may be traced).
        update_period: $K \ge 1$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> [gdjax.periodic_update(jnp.ones(1), jnp.zeros(1), t, 3).tolist() for t in (2, 3)]
        [[0.0], [1.0]]
    """
    _checks.count("update_period", update_period, minimum=1)
    refresh = jnp.mod(steps, update_period) == 0
    return jax.tree.map(lambda new, old: jnp.where(refresh, new, old), new_tensors, old_tensors)


__all__ = ["incremental_update", "periodic_update"]
