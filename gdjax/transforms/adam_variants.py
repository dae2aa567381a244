r"""Adam's relatives that change one piece of it: RAdam, Yogi, ADOPT and AdEMAMix.

All keep Adam's EMAs $m_t$ of the gradient and $v_t$ of its square (with
$\hat m_t = m_t/(1-\beta_1^t)$, $\hat v_t = v_t/(1-\beta_2^t)$); each changes how they are
updated or combined. Follow each with `scale_by_learning_rate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, resolve
from gdjax.transforms._common import bias_correct, check_updates, increment, zero_count
from gdjax.transforms._moments import abs_sq, first_moment, second_moment
from gdjax.transforms.adaptive import ScaleByAdamState
from gdjax.tree_utils import is_none, tree_zeros_like


def _map(fn, *trees: Any) -> Any:
    return jax.tree.map(lambda x, *r: None if x is None else fn(x, *r), *trees, is_leaf=is_none)


def _adam_checks(b1: Any, b2: Any, eps: Any, eps_root: Any) -> None:
    _checks.decay_rate("b1", b1)
    _checks.decay_rate("b2", b2)
    _checks.non_negative("eps", eps)
    _checks.non_negative("eps_root", eps_root)


def scale_by_radam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Rectified Adam (Liu et al., 2020): Adam's step only once its variance is tractable.

    With $\rho_\infty = \frac{2}{1-\beta_2} - 1$ and
    $\rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}$,

    $$
    u_t = \begin{cases}
    r_t\,\dfrac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon} & \rho_t \ge \tau \\
    \hat m_t & \text{otherwise}
    \end{cases}, \qquad
    r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
    $$

    so the first steps are plain (bias-corrected) momentum SGD. ``nesterov=True`` uses NAdam's
    $\hat m_t$ (see `scale_by_adam`).

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        threshold: $\tau$, the smallest $\rho_t$ at which the adaptive step is used.
        nesterov: NAdam's look-ahead moment; a Python bool.
    """
    _adam_checks(b1, b2, eps, eps_root)
    _checks.check_hyperparam("threshold", threshold)
    _checks.static_bool("nesterov", nesterov)

    def init_fn(params):
        return ScaleByAdamState(zero_count(), tree_zeros_like(params), tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        mu = first_moment(updates, state.mu, b1)
        nu = second_moment(updates, state.nu, b2)
        count = increment(state.count)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        b2t = b2**count
        rho = rho_inf - 2 * count * b2t / (1 - b2t)
        rect = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        if nesterov:
            mu_hat = _map(
                lambda m, g: b1 * m + (1 - b1) * g,
                bias_correct(mu, b1, increment(count)),
                bias_correct(updates, b1, count),
            )
        else:
            mu_hat = bias_correct(mu, b1, count)
        nu_hat = bias_correct(nu, b2, count)
        out = _map(
            lambda g, m, v: jnp.where(
                rho >= threshold, rect.astype(m.dtype) * m / (jnp.sqrt(v + eps_root) + eps), m
            ).astype(g.dtype),
            updates,
            mu_hat,
            nu_hat,
        )
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_yogi(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
    eps_root: float | jax.Array = 0.0,
    initial_accumulator_value: float | jax.Array = 1e-6,
) -> optax.GradientTransformation:
    r"""Yogi (Zaheer et al., 2018): an additive second moment that grows no faster than needed.

    $$
    v_t = v_{t-1} - (1-\beta_2)\,\operatorname{sign}(v_{t-1} - g_t^2)\,g_t^2, \qquad
    u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
    $$

    with Adam's $m_t$; both moments start at ``initial_accumulator_value``.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        initial_accumulator_value: $m_0 = v_0 \ge 0$.
    """
    _adam_checks(b1, b2, eps, eps_root)
    _checks.non_negative("initial_accumulator_value", initial_accumulator_value)

    def init_fn(params):
        def full(p):
            return jnp.full_like(p, initial_accumulator_value)

        return ScaleByAdamState(
            zero_count(), jax.tree.map(full, params), jax.tree.map(full, params)
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        mu = first_moment(updates, state.mu, b1)
        nu = _map(
            lambda g, v: (v - (1 - b2) * jnp.sign(v - abs_sq(g)) * abs_sq(g)).astype(v.dtype),
            updates,
            state.nu,
        )
        count = increment(state.count)
        mu_hat, nu_hat = bias_correct(mu, b1, count), bias_correct(nu, b2, count)
        out = _map(
            lambda g, m, v: (m / (jnp.sqrt(v + eps_root) + eps)).astype(g.dtype),
            updates,
            mu_hat,
            nu_hat,
        )
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def _quarter_power(count: jax.Array) -> jax.Array:
    return count**0.25


def scale_by_adopt(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.9999,
    eps: float | jax.Array = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
) -> optax.GradientTransformation:
    r"""ADOPT (Taniguchi et al., 2024): normalize by the *previous* second moment, then average.

    The first call only sets $v_0 = g_0^2$ and returns zeros. Then, for $t \ge 1$,

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1)\,
    \operatorname{clip}\!\left(\frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}, c_t\right), \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad u_t = m_t
    $$

    with $\operatorname{clip}(x, c) = \min(\max(x, -c), c)$ and $c_t$ =
    ``clip_value_fn(t)`` ($t^{1/4}$ by default). Because $g_t$ is divided by a second moment
    that does not contain it, the method converges for any $\beta_2$. ``nesterov=True``
    returns $\beta_1 m_t + (1-\beta_1)\,\operatorname{clip}(\cdot)$ instead of $m_t$.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        mu_dtype: dtype of the first moment.
        nesterov: the look-ahead form; a Python bool.
        use_clipping: clip the normalized gradient (recommended); a Python bool.
        clip_value_fn: step $t$ $\mapsto$ clipping value $c_t$.
    """
    _adam_checks(b1, b2, eps, 0.0)
    _checks.static_bool("nesterov", nesterov)
    _checks.static_bool("use_clipping", use_clipping)
    if not callable(clip_value_fn):
        raise TypeError(f"clip_value_fn must be a function step -> value; got {clip_value_fn!r}")

    def init_fn(params):
        return ScaleByAdamState(
            zero_count(), tree_zeros_like(params, dtype=mu_dtype), tree_zeros_like(params)
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        started = state.count > 0
        b1_now = jnp.where(started, b1, 1.0)
        nu = second_moment(updates, state.nu, jnp.where(started, b2, 0.0))
        clip_value = clip_value_fn(state.count) if use_clipping else None

        def normalized(g, v):
            x = g / jnp.maximum(jnp.sqrt(v), eps)
            return x if clip_value is None else jnp.clip(x, -clip_value, clip_value)

        scaled = _map(normalized, updates, state.nu)
        mu = first_moment(scaled, state.mu, b1_now)
        out = first_moment(scaled, mu, b1_now) if nesterov else mu
        out = _map(lambda g, m: m.astype(g.dtype), updates, out)
        return out, ScaleByAdamState(increment(state.count), mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByAdemamixState(NamedTuple):
    """State of `scale_by_ademamix`.

    Attributes:
        count: steps taken (for the fast EMA's and the second moment's bias correction).
        count_m2: steps taken (for the schedules of ``b3`` and ``alpha``).
        m1: the fast EMA of gradients.
        m2: the slow EMA of gradients.
        nu: the EMA of squared gradients.
    """

    count: jax.Array
    count_m2: jax.Array
    m1: Any
    m2: Any
    nu: Any


def scale_by_ademamix(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 6.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""AdEMAMix (Pagliardini et al., 2024): Adam plus a slow, uncorrected momentum.

    $$
    m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t, \quad
    m^{(2)}_t = \beta_3 m^{(2)}_{t-1} + (1-\beta_3) g_t, \quad
    u_t = \frac{\hat m^{(1)}_t + \alpha\, m^{(2)}_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
    $$

    with Adam's $\hat m^{(1)}_t$ and $\hat v_t$. The slow EMA ($\beta_3$ close to 1) keeps
    gradients from thousands of steps ago; the paper warms up $\alpha$ and $\beta_3$ with
    schedules, which ``alpha`` and ``b3`` accept (evaluated at ``count_m2``).

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        b3: $\beta_3 \in [0, 1)$: a number, array or schedule.
        alpha: the slow EMA's weight $\alpha \ge 0$: a number, array or schedule.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        mu_dtype: dtype of the three moments.
    """
    _adam_checks(b1, b2, eps, eps_root)
    _checks.decay_rate("b3", b3, schedule_ok=True)
    _checks.non_negative("alpha", alpha, schedule_ok=True)

    def init_fn(params):
        def zeros():
            return tree_zeros_like(params, dtype=mu_dtype)

        return ScaleByAdemamixState(zero_count(), zero_count(), zeros(), zeros(), zeros())

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        b3_now, alpha_now = resolve(b3, state.count_m2), resolve(alpha, state.count_m2)
        m1 = first_moment(updates, state.m1, b1)
        m2 = first_moment(updates, state.m2, b3_now)
        nu = second_moment(updates, state.nu, b2)
        count = increment(state.count)
        m1_hat, nu_hat = bias_correct(m1, b1, count), bias_correct(nu, b2, count)
        out = _map(
            lambda g, a, b, v: ((a + alpha_now * b) / (jnp.sqrt(v + eps_root) + eps)).astype(
                g.dtype
            ),
            updates,
            m1_hat,
            m2,
            nu_hat,
        )
        return out, ScaleByAdemamixState(count, increment(state.count_m2), m1, m2, nu)

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = [
    "ScaleByAdemamixState",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_radam",
    "scale_by_yogi",
]
