r"""Constraints on updates and parameters: replace NaNs by zeros, keep parameters non-negative."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax.transforms._common import as_arrays, check_params
from gdjax.tree_utils import tree_map_none


class ZeroNansState(NamedTuple):
    """State of `zero_nans`: per leaf, whether the latest update held a NaN."""

    found_nan: Any


def zero_nans() -> optax.GradientTransformation:
    r"""Replace NaN entries of the update by 0, and record per leaf whether there were any.

    $$
    u \leftarrow \begin{cases} 0 & u \text{ is NaN} \\ u & \text{otherwise} \end{cases}
    $$

    Infinities pass unchanged (see `apply_if_finite` to skip such steps).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.zero_nans()
        >>> u, state = opt.update({"w": jnp.array([1.0, jnp.nan])}, opt.init({"w": jnp.zeros(2)}))
        >>> u["w"].tolist(), bool(state.found_nan["w"])
        ([1.0, 0.0], True)
    """

    def init_fn(params):
        return ZeroNansState(jax.tree.map(lambda _: jnp.array(False), params))

    def update_fn(updates, state, params=None):
        del state
        check_params(updates, params)
        updates = as_arrays(updates)
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        cleaned = tree_map_none(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return cleaned, ZeroNansState(found)

    return optax.GradientTransformation(init_fn, update_fn)


def keep_params_nonnegative() -> optax.GradientTransformation:
    r"""Project onto $\theta \ge 0$: where a step would make a parameter negative, stop it at 0.

    $$
    u \leftarrow \begin{cases} -\theta & \theta + u < 0 \\ u & \text{otherwise} \end{cases}
    $$

    Put it last in a chain (after the learning rate), so that $u$ is the step actually taken.
    The parameters must start non-negative.
    """

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "keep_params_nonnegative: update needs `params`: call update(grads, state, params)"
            )
        check_params(updates, params)
        updates = as_arrays(updates)
        out = tree_map_none(
            lambda u, p: jnp.where(p + u < 0.0, -p, u).astype(u.dtype), updates, params
        )
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


__all__ = ["ZeroNansState", "keep_params_nonnegative", "zero_nans"]
