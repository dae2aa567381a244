r"""Adaptive per-parameter step sizes: AdaGrad, RMSprop, Adam and its relatives.

Each transformation rescales the gradient elementwise; follow it with
`scale_by_learning_rate` (the named optimizers in `gdjax.optimizers` do).
Squares, square roots and divisions are elementwise. For complex parameters a "squared
gradient" is the squared modulus $|g|^2 = g\bar g$, so second moments stay real and
non-negative (as in optax).

``eps`` may be 0 (as optax allows); a step whose denominator is then 0 gives ``nan`` or ``inf``,
as it does in optax.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import (
    abs_sq,
    as_arrays,
    bias_correct,
    check_updates,
    ema,
    increment,
    zero_count,
)
from gdjax.tree_utils import is_none, tree_zeros_like


def _full_like(params: Any, value: Any) -> Any:
    return jax.tree.map(lambda p: jnp.full_like(p, value), params)


def _map2(fn, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: None if x is None else fn(x, y), a, b, is_leaf=is_none)


class ScaleByRssState(NamedTuple):
    """State of `scale_by_rss`: the accumulated sum of squared gradients."""

    sum_of_squares: Any


def scale_by_rss(
    initial_accumulator_value: float | jax.Array = 0.1, eps: float | jax.Array = 1e-7
) -> optax.GradientTransformation:
    r"""AdaGrad scaling by the root of the accumulated squared gradients (Duchi et al., 2011).

    $$
    G_t = G_{t-1} + |g_t|^2, \qquad u_t = \frac{g_t}{\sqrt{G_t + \epsilon}}
    \quad (u_t = 0 \text{ where } G_t = 0)
    $$

    Args:
        initial_accumulator_value: $G_0 \ge 0$.
        eps: $\epsilon \ge 0$, for numerical stability.
    """
    _checks.non_negative("initial_accumulator_value", initial_accumulator_value)
    _checks.non_negative("eps", eps)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_rss", eps, params)
        return ScaleByRssState(_full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.sum_of_squares)
        updates = as_arrays(updates)
        sos = _map2(lambda g, s: (abs_sq(g) + s).astype(s.dtype), updates, state.sum_of_squares)
        out = _map2(
            lambda g, s: (jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0) * g).astype(g.dtype),
            updates,
            sos,
        )
        return out, ScaleByRssState(sos)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
    """State of `scale_by_rms`: EMA of squared gradients."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """State of `scale_by_rms` with ``bias_correction=True``: a step count and the EMA."""

    count: jax.Array
    nu: Any


def scale_by_rms(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""RMSprop scaling (Tieleman & Hinton, 2012).

    $$
    \nu_t = \rho\,\nu_{t-1} + (1-\rho)\,|g_t|^2, \qquad
    u_t = \frac{g_t}{\sqrt{\nu_t + \epsilon}}
    \quad\bigl(\text{or } \tfrac{g_t}{\sqrt{\nu_t} + \epsilon}
    \text{ with } \texttt{eps\_in\_sqrt=False}\text{, PyTorch's form}\bigr)
    $$

    With ``bias_correction=True`` $\nu_t$ is replaced by $\nu_t / (1-\rho^t)$ (then
    ``scale_by_rms(b2, eps_in_sqrt=False, bias_correction=True)`` is Adam with $\beta_1 = 0$).

    Args:
        decay: $\rho \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        initial_scale: $\nu_0 \ge 0$.
        eps_in_sqrt: where $\epsilon$ goes (optax's default: inside the root); a Python bool.
        bias_correction: divide the EMA by $1-\rho^t$ (the state then also counts steps,
            `ScaleByRmsWithCountState`); a Python bool.
    """
    _checks.decay_rate("decay", decay)
    _checks.non_negative("eps", eps)
    _checks.non_negative("initial_scale", initial_scale)
    _checks.static_bool("eps_in_sqrt", eps_in_sqrt)
    _checks.static_bool("bias_correction", bias_correction)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_rms", eps, params)
        nu = _full_like(params, initial_scale)
        return (
            ScaleByRmsWithCountState(zero_count(), nu) if bias_correction else ScaleByRmsState(nu)
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        updates = as_arrays(updates)
        nu = ema(updates, state.nu, decay, 2)
        if bias_correction:
            count = increment(state.count)
            nu_hat = bias_correct(nu, decay, count)
        else:
            nu_hat = nu
        out = _map2(
            lambda g, n: (_inv_root(n, eps, eps_in_sqrt) * g).astype(g.dtype), updates, nu_hat
        )
        if bias_correction:
            return out, ScaleByRmsWithCountState(count, nu)
        return out, ScaleByRmsState(nu)

    return optax.GradientTransformation(init_fn, update_fn)


def _inv_root(n: jax.Array, eps: Any, eps_in_sqrt: bool) -> jax.Array:
    return jax.lax.rsqrt(n + eps) if eps_in_sqrt else 1 / (jnp.sqrt(n) + eps)


class ScaleByStddevState(NamedTuple):
    """State of `scale_by_stddev`: EMAs of gradients and of squared gradients."""

    mu: Any
    nu: Any


class ScaleByStddevWithCountState(NamedTuple):
    """State of `scale_by_stddev` with ``bias_correction=True``: a step count and both EMAs."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_stddev(
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> optax.GradientTransformation:
    r"""Centered RMSprop: divide by an estimate of the gradient's standard deviation (Graves, 2013).

    $$
    \mu_t = \rho\mu_{t-1} + (1-\rho) g_t, \quad
    \nu_t = \rho\nu_{t-1} + (1-\rho) |g_t|^2, \quad
    u_t = \frac{g_t}{\sqrt{\nu_t - |\mu_t|^2 + \epsilon}}
    $$

    With ``bias_correction=True`` both EMAs are divided by $1-\rho^t$ first.

    Args:
        decay: $\rho \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        initial_scale: $\nu_0 \ge 0$.
        eps_in_sqrt: where $\epsilon$ goes; a Python bool.
        bias_correction: divide both EMAs by $1-\rho^t$ (the state then also counts steps,
            `ScaleByStddevWithCountState`); a Python bool.
    """
    _checks.decay_rate("decay", decay)
    _checks.non_negative("eps", eps)
    _checks.non_negative("initial_scale", initial_scale)
    _checks.static_bool("eps_in_sqrt", eps_in_sqrt)
    _checks.static_bool("bias_correction", bias_correction)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_stddev", eps, params)
        mu, nu = tree_zeros_like(params), _full_like(params, initial_scale)
        if bias_correction:
            return ScaleByStddevWithCountState(zero_count(), mu, nu)
        return ScaleByStddevState(mu, nu)

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        updates = as_arrays(updates)
        mu = ema(updates, state.mu, decay, 1)
        nu = ema(updates, state.nu, decay, 2)
        if bias_correction:
            count = increment(state.count)
            mu_hat, nu_hat = bias_correct(mu, decay, count), bias_correct(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        var = _map2(lambda n, m: n - abs_sq(m), nu_hat, mu_hat)
        out = _map2(lambda g, v: (_inv_root(v, eps, eps_in_sqrt) * g).astype(g.dtype), updates, var)
        if bias_correction:
            return out, ScaleByStddevWithCountState(count, mu, nu)
        return out, ScaleByStddevState(mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByAdamState(NamedTuple):
    """State of `scale_by_adam` and `scale_by_adamax`.

    Attributes:
        count: number of updates applied (for bias correction).
        mu: first moment (EMA of gradients).
        nu: second moment (EMA of squared gradients; for Adamax, the infinity norm).
    """

    count: jax.Array
    mu: Any
    nu: Any


def _adam_checks(b1: Any, b2: Any, eps: Any, eps_root: Any) -> None:
    _checks.decay_rate("b1", b1)
    _checks.decay_rate("b2", b2)
    _checks.non_negative("eps", eps)
    _checks.non_negative("eps_root", eps_root)


def scale_by_adam(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Adam's moment estimates with bias correction (Kingma & Ba, 2015).

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2, \\
    \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad
    u_t = \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_{root}} + \epsilon}
    $$

    With ``nesterov=True`` (NAdam, Dozat 2016) $\hat m_t$ is replaced by
    $\beta_1 \frac{m_t}{1-\beta_1^{t+1}} + (1-\beta_1)\frac{g_t}{1-\beta_1^t}$.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$, outside the root.
        eps_root: $\epsilon_{root} \ge 0$, inside the root.
        mu_dtype: dtype of the first moment (default: the parameters').
        nesterov: NAdam's look-ahead; a Python bool.
    """
    _adam_checks(b1, b2, eps, eps_root)
    _checks.static_bool("nesterov", nesterov)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_adam", eps, params)
        return ScaleByAdamState(
            zero_count(), tree_zeros_like(params, dtype=mu_dtype), tree_zeros_like(params)
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        updates = as_arrays(updates)
        mu = ema(updates, state.mu, b1, 1)
        nu = ema(updates, state.nu, b2, 2)
        count = increment(state.count)
        if nesterov:
            mu_hat = _map2(
                lambda m, g: b1 * m + (1 - b1) * g,
                bias_correct(mu, b1, increment(count)),
                bias_correct(updates, b1, count),
            )
        else:
            mu_hat = bias_correct(mu, b1, count)
        nu_hat = bias_correct(nu, b2, count)
        out = jax.tree.map(
            lambda g, m, v: (
                None if g is None else (m / (jnp.sqrt(v + eps_root) + eps)).astype(g.dtype)
            ),
            updates,
            mu_hat,
            nu_hat,
            is_leaf=is_none,
        )
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    """State of `scale_by_amsgrad`; ``nu_max`` is the running maximum of $\\hat v$."""

    count: jax.Array
    mu: Any
    nu: Any
    nu_max: Any


def scale_by_amsgrad(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> optax.GradientTransformation:
    r"""AMSGrad (Reddi et al., 2018): Adam with a non-decreasing second moment.

    $$
    \hat v^{\max}_t = \max(\hat v^{\max}_{t-1}, \hat v_t), \qquad
    u_t = \frac{\hat m_t}{\sqrt{\hat v^{\max}_t + \epsilon_{root}} + \epsilon}
    $$

    with Adam's bias-corrected $\hat m_t = m_t/(1-\beta_1^t)$ and $\hat v_t = v_t/(1-\beta_2^t)$;
    the paper's original form uses $m_t$ and $v_t$ uncorrected
    (``bias_correction_mu=False, bias_correction_nu=False``).

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        mu_dtype: dtype of the first moment.
        bias_correction_mu: bias-correct the first moment; a Python bool.
        bias_correction_nu: bias-correct the second moment before the running maximum; a
            Python bool.
    """
    _adam_checks(b1, b2, eps, eps_root)
    _checks.static_bool("bias_correction_mu", bias_correction_mu)
    _checks.static_bool("bias_correction_nu", bias_correction_nu)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_amsgrad", eps, params)
        zeros = tree_zeros_like(params)
        return ScaleByAmsgradState(
            zero_count(), tree_zeros_like(params, dtype=mu_dtype), zeros, zeros
        )

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        updates = as_arrays(updates)
        mu = ema(updates, state.mu, b1, 1)
        nu = ema(updates, state.nu, b2, 2)
        count = increment(state.count)
        mu_hat = bias_correct(mu, b1, count) if bias_correction_mu else mu
        nu_eff = bias_correct(nu, b2, count) if bias_correction_nu else nu
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu_eff)
        out = jax.tree.map(
            lambda g, m, v: (
                None if g is None else (m / (jnp.sqrt(v + eps_root) + eps)).astype(g.dtype)
            ),
            updates,
            mu_hat,
            nu_max,
            is_leaf=is_none,
        )
        return out, ScaleByAmsgradState(count, mu, nu, nu_max)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_adamax(
    b1: float | jax.Array = 0.9, b2: float | jax.Array = 0.999, eps: float | jax.Array = 1e-8
) -> optax.GradientTransformation:
    r"""Adamax (Kingma & Ba, 2015): Adam with the infinity norm in place of the second moment.

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    u_t^{\infty} = \max(\beta_2 u^{\infty}_{t-1}, |g_t| + \epsilon), \quad
    u_t = \frac{m_t / (1-\beta_1^t)}{u^{\infty}_t}
    $$

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
    """
    _adam_checks(b1, b2, eps, 0.0)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_adamax", eps, params)
        return ScaleByAdamState(zero_count(), tree_zeros_like(params), tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        updates = as_arrays(updates)
        count = increment(state.count)
        mu = ema(updates, state.mu, b1, 1)
        nu = _map2(
            lambda g, n: jnp.maximum(jnp.abs(g) + eps, b2 * n).astype(n.dtype), updates, state.nu
        )
        mu_hat = bias_correct(mu, b1, count)
        out = jax.tree.map(
            lambda g, m, n: None if g is None else (m / n).astype(g.dtype),
            updates,
            mu_hat,
            nu,
            is_leaf=is_none,
        )
        return out, ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    """State of `scale_by_adadelta`: EMAs of squared gradients and squared updates."""

    e_g: Any
    e_x: Any


def scale_by_adadelta(
    rho: float | jax.Array = 0.9, eps: float | jax.Array = 1e-6
) -> optax.GradientTransformation:
    r"""AdaDelta (Zeiler, 2012): unit-consistent steps without a global learning rate.

    $$
    E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) |g_t|^2, \quad
    u_t = \frac{\sqrt{E[\Delta\theta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t,
    \quad E[\Delta\theta^2]_t = \rho E[\Delta\theta^2]_{t-1} + (1-\rho) |u_t|^2
    $$

    For real parameters this is ``optax.scale_by_adadelta``. For complex ones gdjax averages
    the squared moduli $|g|^2$ and $|u|^2$, as every other adaptive method does; optax 0.2.8
    squares the complex numbers themselves ($g^2$), whose averages are complex and whose steps
    are not a rescaled gradient. This is a deliberate difference.

    Args:
        rho: $\rho \in [0, 1)$.
        eps: $\epsilon \ge 0$.
    """
    _checks.decay_rate("rho", rho)
    _checks.non_negative("eps", eps)

    def init_fn(params):
        _checks.warn_if_eps_vanishes("scale_by_adadelta", eps, params)
        return ScaleByAdaDeltaState(tree_zeros_like(params), tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.e_g)
        updates = as_arrays(updates)
        e_g = ema(updates, state.e_g, rho, 2)
        out = jax.tree.map(
            lambda g, eg, ex: (
                None if g is None else (jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps) * g).astype(g.dtype)
            ),
            updates,
            e_g,
            state.e_x,
            is_leaf=is_none,
        )
        e_x = ema(out, state.e_x, rho, 2)
        return out, ScaleByAdaDeltaState(e_g, e_x)

    return optax.GradientTransformation(init_fn, update_fn)
