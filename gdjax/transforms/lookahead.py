r"""Lookahead (Zhang et al., 2019): $k$ steps forward with a fast optimizer, one step back.

The parameters are a pair `LookaheadParams` (fast, slow). Gradients are taken at the fast
parameters; every ``sync_period`` steps the slow ones move towards the fast ones and the fast
ones restart from there. Evaluate the model at the slow parameters.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_inner, zero_count


class LookaheadParams(NamedTuple):
    """The parameter pair Lookahead updates.

    Attributes:
        fast: take gradients here.
        slow: evaluate the model here.
    """

    fast: Any
    slow: Any

    @classmethod
    def init_synced(cls, params: Any) -> LookaheadParams:
        """Both copies equal to ``params``."""
        return cls(fast=params, slow=params)


class LookaheadState(NamedTuple):
    """State of `lookahead`.

    Attributes:
        fast_state: the fast optimizer's state.
        steps_since_sync: fast steps since the last synchronization.
    """

    fast_state: Any
    steps_since_sync: jax.Array


def lookahead(
    fast_optimizer: optax.GradientTransformation,
    sync_period: int | jax.Array,
    slow_step_size: float | jax.Array,
    reset_state: bool = False,
) -> optax.GradientTransformation:
    r"""Wrap ``fast_optimizer`` in Lookahead; parameters are `LookaheadParams`.

    With $\phi$ the slow and $\theta$ the fast parameters and $\Delta_t$ the fast optimizer's
    update for $\nabla f(\theta_t)$: $\theta_{t+1} = \theta_t + \Delta_t$, and at every
    $k$-th step (``sync_period``)

    $$
    \phi \leftarrow \phi + \alpha\,(\theta_t + \Delta_t - \phi), \qquad \theta_{t+1} = \phi
    $$

    ($\alpha$ = ``slow_step_size``). The returned updates are a `LookaheadParams` of
    increments for both; apply them unmodified with `gdjax.apply_updates`.

    Args:
        fast_optimizer: the inner optimizer.
        sync_period: $k \ge 1$.
        slow_step_size: $\alpha \in [0, 1]$.
        reset_state: re-initialize the fast optimizer's state at every synchronization; a
            Python bool.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.lookahead(gdjax.sgd(0.1), sync_period=2, slow_step_size=0.5)
        >>> params = gdjax.LookaheadParams.init_synced(jnp.array([1.0]))
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     g = 2 * params.fast  # the gradient of x**2
        ...     u, state = opt.update(g, state, params)
        ...     params = gdjax.apply_updates(params, u)
        >>> [round(x, 4) for x in (params.slow[0].item(), params.fast[0].item())]
        [0.82, 0.82]
    """
    check_inner("fast_optimizer", fast_optimizer)
    _checks.count("sync_period", sync_period, minimum=1)
    _checks.check_range("slow_step_size", slow_step_size, low=0.0, high=1.0)
    _checks.static_bool("reset_state", reset_state)

    def init_fn(params):
        fast = params.fast if isinstance(params, LookaheadParams) else params
        return LookaheadState(fast_optimizer.init(fast), zero_count())

    def update_fn(updates, state, params=None):
        if not (hasattr(params, "fast") and hasattr(params, "slow")):
            raise TypeError(
                "lookahead's update needs params=LookaheadParams(fast, slow); got "
                f"{type(params).__name__}"
            )
        fast_updates, fast_state = fast_optimizer.update(updates, state.fast_state, params.fast)
        sync = state.steps_since_sync == sync_period - 1
        gap = jax.tree.map(lambda f, u, s: f + u - s, params.fast, fast_updates, params.slow)
        slow_updates = jax.tree.map(lambda d: slow_step_size * sync * d, gap)
        fast_updates = jax.tree.map(
            lambda u, d: u - sync * (1 - slow_step_size) * d, fast_updates, gap
        )
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(lambda a, b: jnp.where(sync, b, a), fast_state, fresh)
        return LookaheadParams(fast_updates, slow_updates), LookaheadState(
            fast_state, (state.steps_since_sync + 1) % sync_period
        )

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["LookaheadParams", "LookaheadState", "lookahead"]
