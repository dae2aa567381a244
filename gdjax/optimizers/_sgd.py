"""Plain, momentum and Nesterov gradient descent (optax's ``sgd``, and the documents' forms)."""

from __future__ import annotations

from typing import Any

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    heavy_ball,
    scale_by_learning_rate,
    trace,
)

Extra = optax.GradientTransformationExtraArgs


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> Extra:
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum, as in optax.

    $$
    v_t = \gamma v_{t-1} + g_t, \qquad \theta_{t+1} = \theta_t - \alpha_t v_t
    $$

    (no momentum: $\theta_{t+1} = \theta_t - \alpha_t g_t$, the update rule
    $\theta = \theta - \alpha\nabla J(\theta)$ of the source documents). Whether it is
    batch, stochastic or mini-batch gradient descent depends only on the data each gradient
    is computed from.

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        momentum: $\gamma \in [0, 1]$, or ``None`` for plain gradient descent.
        nesterov: Nesterov accelerated gradient (needs ``momentum``); a Python bool.
        accumulator_dtype: dtype of the momentum buffer.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.sgd(0.1, momentum=0.9)
        >>> def step(_, carry):  # one update; 100 of them run as one compiled loop below
        ...     params, state = carry
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     return gdjax.apply_updates(params, updates), state
        >>> params = jnp.array([1.0, -2.0])
        >>> params, _ = jax.lax.fori_loop(0, 100, step, (params, opt.init(params)))
        >>> bool(jnp.abs(params).max() < 1e-2)
        True
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.static_bool("nesterov", nesterov)
    if momentum is None:
        if nesterov:
            raise ValueError("nesterov=True needs a momentum value in [0, 1]; got momentum=None")
        return chain(scale_by_learning_rate(learning_rate))
    _checks.momentum("momentum", momentum)
    return chain(
        trace(decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        scale_by_learning_rate(learning_rate),
    )


def momentum(learning_rate: ScalarOrSchedule, beta: float | jax.Array = 0.9) -> Extra:
    r"""Heavy-ball momentum in the source documents' form.

    $$
    v_t = \beta v_{t-1} + \alpha_t \nabla J(\theta_t), \qquad \theta_{t+1} = \theta_t - v_t
    $$

    Identical to ``sgd(learning_rate, momentum=beta)`` for a constant learning rate; under a
    schedule a change of $\alpha$ acts through the velocity (see `heavy_ball`).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        beta: $\beta \in [0, 1]$ (the documents' $\gamma$), typically 0.9.
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.momentum("beta", beta)
    return chain(heavy_ball(learning_rate, beta))


def nesterov(learning_rate: ScalarOrSchedule, beta: float | jax.Array = 0.9) -> Extra:
    r"""Nesterov accelerated gradient (NAG).

    The gradient is evaluated at the look-ahead point $\theta_t - \beta v_{t-1}$:

    $$
    v_t = \beta v_{t-1} + \alpha_t \nabla J(\theta_t - \beta v_{t-1}), \qquad
    \theta_{t+1} = \theta_t - v_t
    $$

    implemented in the equivalent form that only needs $\nabla J(\theta_t)$
    (Sutskever et al., 2013); equal to ``sgd(lr, momentum=beta, nesterov=True)`` for a constant
    learning rate.

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        beta: $\beta \in [0, 1]$.
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.momentum("beta", beta)
    return chain(heavy_ball(learning_rate, beta, nesterov=True))
