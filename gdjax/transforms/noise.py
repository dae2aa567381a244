r"""Gradient noise: perturbed gradient descent, used to escape saddle points."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import as_state_value
from gdjax.transforms._common import as_arrays, check_params, increment, zero_count
from gdjax.tree_utils import tree_global_norm


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
    eta: float | jax.Array,
    gamma: float | jax.Array,
    key: int | jax.Array | None = None,
    *,
    seed: int | None = None,
    below_norm: float | jax.Array | None = None,
) -> optax.GradientTransformation:
    r"""Add annealed Gaussian noise to the gradient (Neelakantan et al., 2015).

    $$
    g_t \leftarrow g_t + \sigma_t\,\xi_t, \quad \xi_t \sim \mathcal{N}(0, I), \qquad
    \sigma_t^2 = \frac{\eta}{(1 + t)^{\gamma}}, \quad t = 0, 1, \dots
    $$

    The noise is drawn exactly as ``optax.add_noise`` draws it (same key, same stream, in each
    gradient leaf's dtype), so for the same ``key`` the two add identical noise.

    With ``below_norm=r`` noise is added only at steps where $\lVert g_t \rVert < r$:
    perturbed gradient descent (Jin et al., 2017), which kicks the iterate off a saddle point
    (where the gradient vanishes) and otherwise leaves gradient descent unchanged.

    Args:
        eta: $\eta \ge 0$, the initial variance.
        gamma: $\gamma \ge 0$, the annealing exponent.
        key: a PRNG key (also a traced one) or an integer seed; ``None`` means seed 0.
        seed: optax's older spelling of an integer ``key`` (deprecated there and here); give
            ``key`` or ``seed``, not both.
        below_norm: optional gradient-norm threshold for perturbed gradient descent.
    """
    _checks.non_negative("eta", eta)
    _checks.non_negative("gamma", gamma)
    if below_norm is not None:
        _checks.non_negative("below_norm", below_norm)
    if seed is not None:
        if key is not None:
            raise ValueError("add_noise: give key or seed, not both")
        warnings.warn(
            'add_noise: "seed" is deprecated (as in optax); use "key"',
            DeprecationWarning,
            stacklevel=2,
        )
        key = seed
    if key is None:
        key = 0
    if not isinstance(key, (int, jax.Array)) or isinstance(key, bool):
        raise TypeError(f"key must be an int seed or a jax.random key; got {key!r}")

    def init_fn(params):
        del params
        rng = jax.random.PRNGKey(key) if isinstance(key, int) else key
        return AddNoiseState(zero_count(), rng, as_state_value(0.0))

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        count = increment(state.count)
        std = as_state_value(jnp.sqrt(eta / count**gamma))
        if below_norm is not None:
            std = jnp.where(tree_global_norm(updates) < below_norm, std, 0.0).astype(std.dtype)
        rng, sample_key = jax.random.split(state.rng_key)
        # optax's sampler: one key per leaf (None leaves skipped), noise in each leaf's dtype.
        noise = optax.tree.random_like(sample_key, updates, jax.random.normal)
        noisy = jax.tree.map(lambda g, n: (g + std * n).astype(g.dtype), updates, noise)
        return noisy, AddNoiseState(count, rng, std)

    return optax.GradientTransformation(init_fn, update_fn)
