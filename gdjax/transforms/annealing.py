r"""Simulated annealing's move: a Metropolis step, gradient-free, keyed and reproducible."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import resolve
from gdjax.transforms._extra_args import require_params, require_value_fn


class MetropolisState(NamedTuple):
    """State of `metropolis`.

    Attributes:
        count: number of proposals made.
        rng_key: the key the next proposal is drawn from.
        value: the objective at the point the latest update leads to (the chain's position).
        best_params: the lowest point seen so far.
        best_value: its value.
        accepted: whether the latest proposal was accepted.
        num_accepted: accepted proposals in total.
        temperature: the temperature used by the latest proposal.
        proposal_scale: the proposal's standard deviation used by the latest proposal.
    """

    count: jax.Array
    rng_key: jax.Array
    value: jax.Array
    best_params: Any
    best_value: jax.Array
    accepted: jax.Array
    num_accepted: jax.Array
    temperature: jax.Array
    proposal_scale: jax.Array


def metropolis(
    temperature: float | jax.Array | Callable,
    proposal_scale: float | jax.Array | Callable,
    key: int | jax.Array = 0,
) -> optax.GradientTransformationExtraArgs:
    r"""One Metropolis step per update: propose, then accept with Boltzmann probability.

    $$
    \theta' = \theta + \sigma_t \xi, \quad \xi \sim \mathcal N(0, I), \qquad
    P(\text{accept}) = \min\left(1, \exp\left(-\frac{f(\theta') - f(\theta)}{T_t}\right)\right)
    $$

    The update is $\theta' - \theta$ if accepted, else zero. The incoming gradient is ignored:
    only ``value_fn`` ($f$) is used, and ``value`` ($f(\theta)$) when given. A proposal whose
    value is not finite is rejected. The state keeps the best point seen. Randomness comes
    from ``key`` (split once per update), or from an extra argument ``key`` passed to
    ``update`` (`gdjax.minimize` passes one per step when given a key), so a run is
    reproducible bit for bit.

    Args:
        temperature: $T_t > 0$: a number, an array, or a schedule (any `gdjax.schedules`
            schedule; a decaying one anneals).
        proposal_scale: $\sigma_t > 0$: a number, an array or a schedule.
        key: a PRNG key (also traced, so ``jax.vmap`` over keys runs independent chains) or
            an integer seed.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda x: jnp.sum(x**2)
        >>> opt = gdjax.metropolis(temperature=0.1, proposal_scale=0.5, key=0)
        >>> step = jax.jit(lambda x, state: opt.update(None, state, x, value_fn=f))
        >>> x = jnp.array([2.0, -1.0])
        >>> state = opt.init(x)
        >>> for _ in range(200):
        ...     u, state = step(x, state)
        ...     x = gdjax.apply_updates(x, u)
        >>> bool(state.best_value < 0.1)
        True
    """
    _checks.positive("temperature", temperature, schedule_ok=True)
    _checks.positive("proposal_scale", proposal_scale, schedule_ok=True)
    if isinstance(key, bool) or not isinstance(key, (int, jax.Array)):
        raise TypeError(f"key must be an int seed or a jax.random key; got {key!r}")

    def init_fn(params):
        rng = jax.random.key(key) if isinstance(key, int) else key
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return MetropolisState(
            count=jnp.zeros([], jnp.int32),
            rng_key=rng,
            value=jnp.asarray(jnp.inf, dtype),
            best_params=params,
            best_value=jnp.asarray(jnp.inf, dtype),
            accepted=jnp.zeros([], bool),
            num_accepted=jnp.zeros([], jnp.int32),
            temperature=jnp.zeros([], jnp.float32),
            proposal_scale=jnp.zeros([], jnp.float32),
        )

    def update_fn(updates, state, params=None, *, value=None, value_fn=None, **extra_args):
        del updates
        require_params("metropolis", params)
        value_fn = require_value_fn("metropolis", value_fn)
        dtype = state.best_value.dtype
        t = resolve(temperature, state.count)
        sigma = resolve(proposal_scale, state.count)
        rng, step_key = jax.random.split(state.rng_key)
        if extra_args.get("key") is not None:
            step_key = extra_args["key"]
        noise_key, accept_key = jax.random.split(step_key)
        noise = optax.tree.random_like(noise_key, params, jax.random.normal)
        move = jax.tree.map(lambda n, p: (sigma * n).astype(p.dtype), noise, params)
        proposal = optax.apply_updates(params, move)
        f0 = jnp.asarray(value_fn(params) if value is None else value, dtype)
        f1 = jnp.asarray(value_fn(proposal), dtype)
        u = jax.random.uniform(accept_key, dtype=dtype)
        # u < exp(-(f1 - f0)/T), written with log(u) so that no exp overflows
        accept = jnp.isfinite(f1) & (jnp.log(u) * t < f0 - f1)
        update = jax.tree.map(lambda m: jnp.where(accept, m, jnp.zeros_like(m)), move)
        here = jnp.where(accept, f1, f0)
        start = state.count == 0
        prev_best = jnp.where(start, f0, state.best_value)
        prev_best_params = optax.tree.where(start, params, state.best_params)
        better = jnp.isfinite(here) & (here < prev_best)
        new_state = MetropolisState(
            count=optax.safe_increment(state.count),
            rng_key=rng,
            value=here,
            best_params=optax.tree.where(
                better, optax.tree.where(accept, proposal, params), prev_best_params
            ),
            best_value=jnp.where(better, here, prev_best),
            accepted=accept,
            num_accepted=state.num_accepted + accept.astype(jnp.int32),
            temperature=jnp.asarray(t, jnp.float32),
            proposal_scale=jnp.asarray(sigma, jnp.float32),
        )
        return update, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
