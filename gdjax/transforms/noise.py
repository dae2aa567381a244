r"""Gradient noise: perturbed gradient descent, used to escape saddle points."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import increment, zero_count
from gdjax.tree_utils import is_none, tree_global_norm


class AddNoiseState(NamedTuple):
    """State of `add_noise`.

    Attributes:
        count: number of updates applied.
        rng_key: the key the next noise sample is drawn from.
        noise_std: the standard deviation used by the latest update (0 when it was skipped).
    """

    count: jax.Array
    rng_key: jax.Array
    noise_std: jax.Array


def add_noise(
    eta: float | jax.Array = 0.01,
    gamma: float | jax.Array = 0.55,
    key: int | jax.Array = 0,
    *,
    below_norm: float | jax.Array | None = None,
) -> optax.GradientTransformation:
    r"""Add annealed Gaussian noise to the gradient (Neelakantan et al., 2015).

    $$
    g_t \leftarrow g_t + \mathcal{N}(0, \sigma_t^2), \qquad
    $$

               \sigma_t^2 = \frac{\eta}{(1 + t)^{\gamma}}

    With ``below_norm=r`` noise is added only at steps where $\lVert g_t \rVert < r$:
    perturbed gradient descent (Jin et al., 2017), which kicks the iterate off a saddle point
    (where the gradient vanishes) and otherwise leaves gradient descent unchanged.

    Args:
        eta: $\eta \ge 0$, the initial variance.
        gamma: $\gamma \ge 0$, the annealing exponent.
        key: a PRNG key or an integer seed.
        below_norm: optional gradient-norm threshold for perturbed gradient descent.
    """
    _checks.non_negative("eta", eta)
    _checks.non_negative("gamma", gamma)
    if below_norm is not None:
        _checks.non_negative("below_norm", below_norm)
    if not isinstance(key, (int, jax.Array)) or isinstance(key, bool):
        raise TypeError(f"key must be an int seed or a jax.random key; got {key!r}")

    def init_fn(params):
        del params
        rng = jax.random.PRNGKey(key) if isinstance(key, int) else key
        return AddNoiseState(zero_count(), rng, jnp.zeros([], jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        count = increment(state.count)
        std = jnp.sqrt(eta / count.astype(jnp.float32) ** gamma)
        if below_norm is not None:
            std = jnp.where(tree_global_norm(updates) < below_norm, std, 0.0)
        rng, sample_key = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates, is_leaf=is_none)
        keys = jax.random.split(sample_key, max(len(leaves), 1))
        noisy = [
            None
            if g is None
            else (g + std * jax.random.normal(k, g.shape, jnp.float32)).astype(g.dtype)
            for g, k in zip(leaves, keys, strict=False)
        ]
        return treedef.unflatten(noisy), AddNoiseState(count, rng, std.astype(jnp.float32))

    return optax.GradientTransformation(init_fn, update_fn)
