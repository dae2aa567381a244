"""Optimistic optimizers for min-max games: optimistic gradient descent and optimistic Adam."""

from __future__ import annotations

from typing import Any

import jax
import optax

from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_optimistic_gradient,
)

Extra = optax.GradientTransformationExtraArgs


def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
) -> Extra:
    r"""Optimistic gradient descent (Mokhtari et al., 2019).

    $$
    \theta_{t+1} = \theta_t - \eta_t\big((\alpha + \beta)\,g_t - \beta\,g_{t-1}\big)
    $$

    On the bilinear game $\min_x \max_y xy$ gradient descent-ascent spirals outwards; this
    converges.

    Args:
        learning_rate: $\eta \ge 0$: a number, array or schedule.
        alpha: $\alpha$: a number or array (optax's type says schedule, but its update cannot
            use one; gdjax refuses a function).
        beta: $\beta$: a number or array.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> def run(opt, steps=100):  # min over x, max over y of x * y, from (1, 1)
        ...     def step(carry, _):
        ...         xy, state = carry
        ...         u, state = opt.update(jnp.array([xy[1], -xy[0]]), state, xy)
        ...         return (gdjax.apply_updates(xy, u), state), None
        ...     xy = jnp.ones(2)
        ...     return float(jnp.linalg.norm(jax.lax.scan(step, (xy, opt.init(xy)), length=steps)[0][0]))
        >>> run(gdjax.optimistic_gradient_descent(0.3)) < 0.01, run(gdjax.sgd(0.3)) > 100
        (True, True)
    """
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


def optimistic_adam(
    learning_rate: float | jax.Array,
    optimism: float | jax.Array | None = None,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-08,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> Extra:
    r"""Optimistic Adam (Daskalakis et al., 2018), optax's first interface.

    With Adam's (by default NAdam's) normalized step $r_t = \hat m_t/(\sqrt{\hat v_t} + \epsilon)$,

    $$
    \theta_{t+1} = \theta_t - \alpha\, r_t - o\,(r_t - r_{t-1}), \qquad r_0 := r_1
    $$

    The learning rate $\alpha$ enters as the optimistic transformation's ``alpha`` (read it
    with ``get_hyperparam(state, "alpha")``; ``"beta"`` is the optimism $o$). As in optax, a
    schedule is refused (use `optimistic_adam_v2`).

    Args:
        learning_rate: $\alpha$: a number or array.
        optimism: $o$; ``None`` means $o = \alpha$, as in the paper.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        nesterov: NAdam's moment (optax's default); a Python bool.
    """
    if callable(learning_rate):
        raise TypeError(
            "optimistic_adam's learning_rate must be a number or an array, not a schedule "
            "(as in optax); use optimistic_adam_v2 for a scheduled learning rate"
        )
    if optimism is None:
        optimism = learning_rate
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
        scale(-1.0),
    )


def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 1.0,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-08,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> Extra:
    r"""Optimistic Adam with optax's second interface: a learning rate and two optimism weights.

    $$
    \theta_{t+1} = \theta_t - \eta_t\big((\alpha + \beta)\,r_t - \beta\,r_{t-1}\big), \qquad
    r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
    $$

    Args:
        learning_rate: $\eta \ge 0$: a number, array or schedule.
        alpha: $\alpha$.
        beta: $\beta$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        nesterov: NAdam's moment; a Python bool.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )
