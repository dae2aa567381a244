r"""More adaptive scalings: AdaBelief, Adan, Lion and Adafactor's factored second moment.

Like `gdjax.transforms.adaptive` these rescale the gradient; follow them with
`scale_by_learning_rate`. Each has optax's name, arguments, defaults and state fields, and
squared gradients of complex parameters are squared moduli $|g|^2$.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
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
from gdjax.tree_utils import tree_map_none, tree_zeros_like


def _nesterov_mean(mu: Any, updates: Any, b1: Any, count: jax.Array) -> Any:
    r"""NAdam's look-ahead first moment $\beta_1\hat m_{t+1} + (1-\beta_1)\hat g_t$."""
    return tree_map_none(
        lambda m, g: b1 * m + (1 - b1) * g,
        bias_correct(mu, b1, increment(count)),
        bias_correct(updates, b1, count),
    )


class ScaleByBeliefState(NamedTuple):
    """State of `scale_by_belief`: step count, EMA of gradients, EMA of squared surprise."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_belief(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""AdaBelief (Zhuang et al., 2020): Adam whose second moment is the "belief" in the gradient.

    The second moment averages the squared deviation of the gradient from its running mean,
    so steps are large where gradients agree with their prediction:

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    s_t = \beta_2 s_{t-1} + (1-\beta_2)|g_t - m_t|^2 + \epsilon_{root}, \\
    u_t = \frac{m_t/(1-\beta_1^t)}{\sqrt{s_t/(1-\beta_2^t)} + \epsilon}
    $$

    ($\epsilon_{root}$ is added to the stored $s_t$ every step, as in optax.) With
    ``nesterov=True`` the first moment is NAdam's look-ahead, as in `scale_by_adam`.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$, outside the root.
        eps_root: $\epsilon_{root} \ge 0$, added to $s_t$.
        nesterov: NAdam's look-ahead; a Python bool.
    """
    _checks.decay_rate("b1", b1)
    _checks.decay_rate("b2", b2)
    _checks.non_negative("eps", eps)
    _checks.non_negative("eps_root", eps_root)
    _checks.static_bool("nesterov", nesterov)

    def init_fn(params):
        return ScaleByBeliefState(zero_count(), tree_zeros_like(params), tree_zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.mu)
        updates = as_arrays(updates)
        mu = ema(updates, state.mu, b1, 1)
        surprise = tree_map_none(lambda g, m: g - m, updates, mu)
        nu = tree_map_none(lambda s: s + eps_root, ema(surprise, state.nu, b2, 2))
        count = increment(state.count)
        mu_hat = _nesterov_mean(mu, updates, b1, count) if nesterov else bias_correct(mu, b1, count)
        nu_hat = bias_correct(nu, b2, count)
        out = tree_map_none(
            lambda g, m, v: (m / (jnp.sqrt(v) + eps)).astype(g.dtype), updates, mu_hat, nu_hat
        )
        return out, ScaleByBeliefState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByAdanState(NamedTuple):
    """State of `scale_by_adan` (optax's field names).

    Attributes:
        m: EMA of gradients.
        v: EMA of gradient differences $g_t - g_{t-1}$.
        n: EMA of the squared Nesterov-corrected gradient.
        g: the previous gradient.
        t: step count.
    """

    m: Any
    v: Any
    n: Any
    g: Any
    t: jax.Array


def scale_by_adan(
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Adan (Xie et al., 2022): adaptive Nesterov momentum from gradient differences.

    With $\Delta_t = g_t - g_{t-1}$ ($\Delta_1 = 0$):

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) \Delta_t, \quad
    n_t = \beta_3 n_{t-1} + (1-\beta_3) |g_t + (1-\beta_2)\Delta_t|^2, \\
    u_t = \frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}
    $$

    with each EMA bias-corrected, $\hat x_t = x_t/(1-\beta^t)$ for its own $\beta$.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        b3: $\beta_3 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
    """
    for name, value in [("b1", b1), ("b2", b2), ("b3", b3)]:
        _checks.decay_rate(name, value)
    _checks.non_negative("eps", eps)
    _checks.non_negative("eps_root", eps_root)

    def init_fn(params):
        zeros = tree_zeros_like(params)
        return ScaleByAdanState(zeros, zeros, zeros, zeros, zero_count())

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.m)
        updates = as_arrays(updates)
        first = state.t == 0
        diff = tree_map_none(lambda g, prev: jnp.where(first, 0, g - prev), updates, state.g)
        m = ema(updates, state.m, b1, 1)
        v = ema(diff, state.v, b2, 1)
        corrected = tree_map_none(lambda g, d: g + (1 - b2) * d, updates, diff)
        n = ema(corrected, state.n, b3, 2)
        t = increment(state.t)
        m_hat, v_hat, n_hat = bias_correct(m, b1, t), bias_correct(v, b2, t), bias_correct(n, b3, t)
        out = tree_map_none(
            lambda g, mh, vh, nh: ((mh + (1 - b2) * vh) / (jnp.sqrt(nh + eps_root) + eps)).astype(
                g.dtype
            ),
            updates,
            m_hat,
            v_hat,
            n_hat,
        )
        previous = tree_map_none(lambda g, prev: g.astype(prev.dtype), updates, state.g)
        return out, ScaleByAdanState(m, v, n, previous, t)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByLionState(NamedTuple):
    """State of `scale_by_lion`: step count and the momentum."""

    count: jax.Array
    mu: Any


LionMode = Literal["hard", "smooth", "refined"]


def scale_by_lion(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    *,
    mode: LionMode = "hard",
    smooth_beta: float | jax.Array = 1.0,
) -> optax.GradientTransformation:
    r"""Lion (Chen et al., 2023): the sign of an interpolated momentum.

    $$
    c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad u_t = \operatorname{sign}(c_t), \qquad
    m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t
    $$

    Every coordinate moves by the same amount, so Lion wants a learning rate 3-10x smaller
    than Adam's. ``mode="smooth"`` uses $\tanh(\beta_s c_t)$ in place of the sign;
    ``mode="refined"`` keeps $c_t$ where $|c_t| < 1$.

    Args:
        b1: $\beta_1 \in [0, 1]$, the interpolation of the update.
        b2: $\beta_2 \in [0, 1]$, the decay of the momentum.
        mu_dtype: dtype of the momentum (default: the parameters').
        mode: ``"hard"`` (the paper's sign), ``"smooth"`` or ``"refined"``; static.
        smooth_beta: $\beta_s$ of ``mode="smooth"``.
    """
    _checks.momentum("b1", b1)
    _checks.momentum("b2", b2)
    _checks.check_hyperparam("smooth_beta", smooth_beta)
    shapes: dict[str, Callable[[jax.Array], jax.Array]] = {
        "hard": jnp.sign,
        "smooth": lambda c: jnp.tanh(smooth_beta * c),
        "refined": lambda c: jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c)),
    }
    if mode not in shapes:
        raise ValueError(f"mode must be 'hard', 'smooth' or 'refined'; got {mode!r}")
    shape = shapes[mode]

    def init_fn(params):
        return ScaleByLionState(zero_count(), tree_zeros_like(params, dtype=mu_dtype))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.mu)
        updates = as_arrays(updates)
        out = tree_map_none(
            lambda g, m: shape((1.0 - b1) * g + b1 * m).astype(g.dtype), updates, state.mu
        )
        mu = ema(updates, state.mu, b2, 1)
        return out, ScaleByLionState(increment(state.count), mu)

    return optax.GradientTransformation(init_fn, update_fn)


class FactoredState(NamedTuple):
    """State of `scale_by_factored_rms` (optax's fields).

    Attributes:
        count: step count.
        v_row: per leaf, the row statistics of a factored leaf (shape without the largest
            dimension), else a one-element placeholder.
        v_col: per leaf, the column statistics (shape without the second largest dimension),
            else a placeholder.
        v: per leaf, the full second moment of a leaf that is not factored, else a placeholder.
    """

    count: jax.Array
    v_row: Any
    v_col: Any
    v: Any


def _decay_rate_pow(i: jax.Array, exponent: float | jax.Array = 0.8) -> jax.Array:
    r"""Adafactor's increasing decay $\hat\beta_i = 1 - (i + 1)^{-c}$ (in float32, as optax)."""
    t = jnp.asarray(i + 1, jnp.float32)
    return 1.0 - t ** (-exponent)


def _static_int(name: str, value: Any) -> int:
    """An int that decides shapes: a Python int or a concrete integer scalar (e.g. from
    ``optax.inject_hyperparams`` outside ``jit``); a traced value is refused by name."""
    concrete_array = (
        isinstance(value, (jax.Array, np.ndarray, np.generic))
        and np.issubdtype(value.dtype, np.integer)
        and np.ndim(value) == 0
        and not _checks.is_traced(value)
    )
    if (isinstance(value, int) and not isinstance(value, bool)) or concrete_array:
        return int(value)
    raise TypeError(
        f"{name} must be a Python int (it decides the state's shapes; under "
        f"optax.inject_hyperparams and jit, list it in static_args); got "
        f"{type(value).__name__}: {value!r}"
    )


def _factored_dims(shape: tuple[int, ...], factored: bool, min_dim: int) -> tuple[int, int] | None:
    """``(second largest axis, largest axis)`` when a leaf is factored, else ``None``.

    Ties go to the later axis (a stable sort of the sizes), as in optax.
    """
    if not factored or len(shape) < 2:
        return None
    by_size = sorted(range(len(shape)), key=lambda axis: shape[axis])
    if shape[by_size[-2]] < min_dim:
        return None
    return by_size[-2], by_size[-1]


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: float | jax.Array = 0.8,
    step_offset: int | jax.Array = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: float | jax.Array = 1e-30,
    decay_rate_fn: Callable[[jax.Array, Any], jax.Array] = _decay_rate_pow,
) -> optax.GradientTransformation:
    r"""Adafactor's second moment (Shazeer & Stern, 2018), factored for large matrices.

    With $\hat\beta_t$ = ``decay_rate_fn(t - step_offset, decay_rate)`` (by default
    $1 - (t - \text{step\_offset} + 1)^{-c}$, computed in float32 as in optax) and
    $G_t = |g_t|^2 + \epsilon$: a leaf whose two largest dimensions are at least
    ``min_dim_size_to_factor`` keeps only row and column averages $R$, $C$ of $G$,

    $$
    R_t = \hat\beta_t R_{t-1} + (1-\hat\beta_t) \operatorname{mean}_{col} G_t, \quad
    C_t = \hat\beta_t C_{t-1} + (1-\hat\beta_t) \operatorname{mean}_{row} G_t, \quad
    u_t = g_t \Big/ \sqrt{\frac{R_t C_t}{\operatorname{mean}(R_t)}}
    $$

    (memory: rows plus columns instead of rows times columns); other leaves keep the full
    $V_t = \hat\beta_t V_{t-1} + (1-\hat\beta_t) G_t$ and $u_t = g_t/\sqrt{V_t}$.

    Args:
        factored: factor large matrices at all; a Python bool.
        decay_rate: the exponent $c$ of the default decay, $\ge 0$.
        step_offset: subtracted from the step count before the decay is computed.
        min_dim_size_to_factor: factor only when the second largest dimension is at least
            this; a Python int (it decides the state's shapes; a concrete integer array is
            taken too).
        epsilon: $\epsilon \ge 0$, added to the squared gradient.
        decay_rate_fn: ``(step, decay_rate) -> decay`` (static).
    """
    _checks.static_bool("factored", factored)
    _checks.non_negative("decay_rate", decay_rate)
    _checks.count("step_offset", step_offset, minimum=None)
    min_dim_size_to_factor = _static_int("min_dim_size_to_factor", min_dim_size_to_factor)
    _checks.non_negative("epsilon", epsilon)
    if not callable(decay_rate_fn):
        raise TypeError(
            f"decay_rate_fn must be a function (step, rate) -> decay; got {decay_rate_fn!r}"
        )

    def dims(p: jax.Array) -> tuple[int, int] | None:
        return _factored_dims(p.shape, factored, min_dim_size_to_factor)

    def placeholder(p: jax.Array) -> jax.Array:
        return jnp.zeros((1,), p.dtype)

    def init_fn(params):
        def v_row(p):
            d = dims(p)
            return placeholder(p) if d is None else jnp.zeros_like(p.sum(axis=d[1]))

        def v_col(p):
            d = dims(p)
            return placeholder(p) if d is None else jnp.zeros_like(p.sum(axis=d[0]))

        def v(p):
            return jnp.zeros_like(p) if dims(p) is None else placeholder(p)

        return FactoredState(
            zero_count(),
            jax.tree.map(v_row, params),
            jax.tree.map(v_col, params),
            jax.tree.map(v, params),
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_factored_rms: update needs `params`")
        check_updates(updates, params)
        updates = as_arrays(updates)
        beta = decay_rate_fn(state.count - step_offset, decay_rate)

        def leaf(g, row, col, full, p):
            g_sq = abs_sq(g) + epsilon
            d = dims(p)
            if d is None:
                new_full = (beta * full + (1.0 - beta) * g_sq).astype(p.dtype)
                return g * new_full**-0.5, row, col, new_full
            d1, d0 = d
            new_row = (beta * row + (1.0 - beta) * jnp.mean(g_sq, axis=d0)).astype(p.dtype)
            new_col = (beta * col + (1.0 - beta) * jnp.mean(g_sq, axis=d1)).astype(p.dtype)
            row_axis = d1 - 1 if d1 > d0 else d1  # d1's position once d0 is reduced away
            row_factor = (new_row / jnp.mean(new_row, axis=row_axis, keepdims=True)) ** -0.5
            col_factor = new_col**-0.5
            out = g * jnp.expand_dims(row_factor, d0) * jnp.expand_dims(col_factor, d1)
            return out, new_row, new_col, full

        leaves, treedef = jax.tree.flatten(updates)
        rest = [treedef.flatten_up_to(t) for t in (state.v_row, state.v_col, state.v, params)]
        results = [leaf(*args) for args in zip(leaves, *rest, strict=True)]
        columns = list(zip(*results, strict=True)) or [(), (), (), ()]
        out, rows, cols, fulls = (treedef.unflatten(c) for c in columns)
        out = jax.tree.map(lambda u, g: u.astype(g.dtype), out, updates)
        return out, FactoredState(increment(state.count), rows, cols, fulls)

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = [
    "FactoredState",
    "ScaleByAdanState",
    "ScaleByBeliefState",
    "ScaleByLionState",
    "scale_by_adan",
    "scale_by_belief",
    "scale_by_factored_rms",
    "scale_by_lion",
]
