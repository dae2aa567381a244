"""Optimizers that step by the gradient's sign: signSGD, Signum and Rprop."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import scale, scale_by_learning_rate, scale_by_rprop, scale_by_sign
from gdjax.transforms._common import check_updates, increment, zero_count
from gdjax.transforms._moments import first_moment
from gdjax.tree_utils import tree_zeros_like

Extra = optax.GradientTransformationExtraArgs


class _EmaState(NamedTuple):
    """Signum's momentum: an EMA of gradients without bias correction (optax's ``EmaState``)."""

    count: jax.Array
    ema: Any


def _gradient_ema(beta: Any, accumulator_dtype: Any) -> optax.GradientTransformation:
    def init_fn(params):
        return _EmaState(zero_count(), tree_zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.ema)
        ema = first_moment(updates, state.ema, beta)
        return jax.tree.map(lambda g, m: m.astype(g.dtype), updates, ema), _EmaState(
            increment(state.count), ema
        )

    return optax.GradientTransformation(init_fn, update_fn)


def sign_sgd(learning_rate: ScalarOrSchedule) -> Extra:
    r"""signSGD (Bernstein et al., 2018): step by the sign of each gradient component.

    $$
    \theta_{t+1} = \theta_t - \alpha_t \operatorname{sign}(g_t)
    $$

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.sign_sgd(0.1)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> u, _ = opt.update({"w": jnp.array([30.0, -0.01])}, opt.init(params), params)
        >>> [round(x, 3) for x in u["w"].tolist()]
        [-0.1, 0.1]
    """
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


def signum(
    learning_rate: ScalarOrSchedule,
    beta: float | jax.Array = 0.9,
    accumulator_dtype: Any = None,
) -> Extra:
    r"""Signum (Bernstein et al., 2018): the sign of a gradient EMA.

    $$
    m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
    \theta_{t+1} = \theta_t - \alpha_t \operatorname{sign}(m_t)
    $$

    (no bias correction: it would not change the sign).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        beta: $\beta \in [0, 1)$.
        accumulator_dtype: dtype of $m$.
    """
    _checks.decay_rate("beta", beta)
    return chain(
        _gradient_ema(beta, accumulator_dtype),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


def rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> Extra:
    r"""Rprop (Riedmiller & Braun, 1993): per-parameter step sizes driven by sign changes.

    $\theta_{t+1} = \theta_t - u_t$ with $u_t$ from `scale_by_rprop`: each step size
    $\Delta$ grows by $\eta^+$ while its gradient keeps its sign and shrinks by $\eta^-$ when it
    flips,

    $$
    u_t = \Delta_t \operatorname{sign}(g_t) \ (0 \text{ right after a flip}), \qquad
    \Delta_0 = \text{learning\_rate}.
    $$

    A full-batch method: mini-batch noise flips signs at random. Unlike ``optax.rprop``
    0.2.8, whose updates lag one step behind (see `scale_by_rprop`), the step taken at $t$
    uses $g_t$.

    Args:
        learning_rate: the initial step size $\Delta_0 \ge 0$ (the state records it as
            ``learning_rate``).
        eta_minus: $\eta^-$.
        eta_plus: $\eta^+$.
        min_step_size: $\Delta_{\min}$.
        max_step_size: $\Delta_{\max}$.
    """
    return chain(
        scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size),
        scale(-1.0),
    )
