"""More adaptive optimizers: AdaBelief, Adafactor, AdamaxW, Adan, Lion, NAdamW (optax's)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    add_decayed_weights,
    clip_by_block_rms,
    ema,
    scale,
    scale_by_adam,
    scale_by_adamax,
    scale_by_adan,
    scale_by_belief,
    scale_by_factored_rms,
    scale_by_learning_rate,
    scale_by_lion,
    scale_by_param_block_rms,
)
from gdjax.transforms.regularization import Mask

Extra = optax.GradientTransformationExtraArgs


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-16,
    eps_root: float | jax.Array = 1e-16,
    *,
    nesterov: bool = False,
) -> Extra:
    r"""AdaBelief (Zhuang et al., 2020): Adam with the variance of the gradient's surprise.

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    s_t = \beta_2 s_{t-1} + (1-\beta_2)|g_t - m_t|^2 + \epsilon_{root}, \\
    \theta_{t+1} = \theta_t - \alpha_t \frac{m_t/(1-\beta_1^t)}{\sqrt{s_t/(1-\beta_2^t)} + \epsilon}
    $$

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        nesterov: NAdam's look-ahead first moment; a Python bool.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.adabelief(0.1)
        >>> def step(_, carry):  # one update; 200 of them run as one compiled loop below
        ...     params, state = carry
        ...     grads = jax.grad(lambda p: jnp.sum(p**2))(params)
        ...     updates, state = opt.update(grads, state, params)
        ...     return gdjax.apply_updates(params, updates), state
        >>> params = jnp.array([1.0, -2.0])
        >>> params, _ = jax.lax.fori_loop(0, 200, step, (params, opt.init(params)))
        >>> bool(jnp.abs(params).max() < 0.1)
        True
    """
    return chain(
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adafactor(
    learning_rate: ScalarOrSchedule | None = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: float | jax.Array = 0.8,
    decay_offset: int | jax.Array = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: float | jax.Array | None = 1.0,
    momentum: float | jax.Array | None = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: ScalarOrSchedule | None = None,
    eps: float | jax.Array = 1e-30,
    factored: bool = True,
    weight_decay_mask: Mask = None,
) -> Extra:
    r"""Adafactor (Shazeer & Stern, 2018): Adam-like steps with a factored second moment.

    For matrices at least ``min_dim_size_to_factor`` on their two largest sides only row and
    column averages of $|g|^2$ are kept (see `scale_by_factored_rms`), so the optimizer state
    is about the size of the rows plus the columns. The step is then clipped to a root mean
    square of at most $d$ (`clip_by_block_rms`), scaled by $\alpha_t$ and, with
    ``multiply_by_parameter_scale``, by the parameter block's root mean square $\max(\text{RMS}(\theta), 10^{-3})$:

    $$
    \hat u_t = \frac{g_t}{\sqrt{\hat V_t}}, \qquad
    \theta_{t+1} = \theta_t - \alpha_t\, \max(\text{RMS}(\theta_t), 10^{-3})\,
    \frac{\hat u_t}{\max(1, \text{RMS}(\hat u_t)/d)}
    $$

    (optionally followed by an EMA of the steps, ``momentum``, and decoupled weight decay
    ``weight_decay_rate``). With ``learning_rate=None`` there is no $\alpha_t$: the relative
    step size of the paper.

    Args:
        learning_rate: $\alpha$, or ``None`` (the step is then relative to the parameter
            scale only).
        min_dim_size_to_factor: factor matrices whose second largest side is at least this;
            a Python int.
        decay_rate: the exponent $c$ of the second moment's decay $1 - (t+1)^{-c}$.
        decay_offset: step offset of that decay (for fine-tuning).
        multiply_by_parameter_scale: scale steps by the parameter block's RMS; a Python bool.
        clipping_threshold: $d \ge 0$, or ``None`` for no clipping.
        momentum: EMA decay of the steps in $[0, 1)$, or ``None`` (none).
        dtype_momentum: dtype of that EMA.
        weight_decay_rate: decoupled weight decay, or ``None``.
        eps: $\epsilon$ added to $|g|^2$.
        factored: factor at all; a Python bool.
        weight_decay_mask: which parameters decay.
    """
    _checks.static_bool("multiply_by_parameter_scale", multiply_by_parameter_scale)
    parts = [scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)]
    if clipping_threshold is not None:
        parts.append(clip_by_block_rms(clipping_threshold))
    if learning_rate is not None:
        parts.append(scale_by_learning_rate(learning_rate, flip_sign=False))
    if multiply_by_parameter_scale:
        parts.append(scale_by_param_block_rms())
    if momentum is not None:
        parts.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    parts.append(scale(-1))
    return chain(*parts)


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
) -> Extra:
    r"""AdamaxW: Adamax with decoupled weight decay (Loshchilov & Hutter, 2019).

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \max(\beta_2 v_{t-1}, |g_t| + \epsilon), \quad
    \theta_{t+1} = \theta_t - \alpha_t\left(\frac{m_t/(1-\beta_1^t)}{v_t} + \lambda\theta_t\right)
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        weight_decay: $\lambda \ge 0$: a number, array or schedule.
        mask: which parameters decay.
    """
    return chain(
        scale_by_adamax(b1, b2, eps),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def adan(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.98,
    b2: float | jax.Array = 0.92,
    b3: float | jax.Array = 0.99,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
) -> Extra:
    r"""Adan (Xie et al., 2022): adaptive Nesterov momentum from gradient differences.

    With $\Delta_t = g_t - g_{t-1}$ and each EMA bias-corrected ($\hat x = x/(1-\beta^t)$):

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2)\Delta_t, \quad
    n_t = \beta_3 n_{t-1} + (1-\beta_3)|g_t + (1-\beta_2)\Delta_t|^2, \\
    \theta_{t+1} = \theta_t - \alpha_t\left(
    \frac{\hat m_t + (1-\beta_2)\hat v_t}{\sqrt{\hat n_t + \epsilon_{root}} + \epsilon}
    + \lambda\theta_t\right)
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        b3: $\beta_3 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon_{root} \ge 0$.
        weight_decay: $\lambda \ge 0$ (decoupled).
        mask: which parameters decay.
    """
    return chain(
        scale_by_adan(b1, b2, b3, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def lion(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.99,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Mask = None,
) -> Extra:
    r"""Lion (Chen et al., 2023): a step of the same size in every coordinate.

    $$
    \theta_{t+1} = \theta_t - \alpha_t\left(\operatorname{sign}\big(\beta_1 m_{t-1} + (1-\beta_1) g_t\big)
    + \lambda\theta_t\right), \qquad m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t
    $$

    Use a learning rate 3-10x smaller (and a weight decay as many times larger) than for
    AdamW.

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1]$.
        b2: $\beta_2 \in [0, 1]$.
        mu_dtype: dtype of the momentum.
        weight_decay: $\lambda \ge 0$ (decoupled).
        mask: which parameters decay.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.lion(0.1, weight_decay=0.0)
        >>> w = jnp.array([1.0, -2.0])
        >>> u, _ = opt.update(jnp.array([0.3, -5.0]), opt.init(w), w)
        >>> u.tolist()  # -lr * sign(g), whatever the gradient's size
        [-0.10000000149011612, 0.10000000149011612]
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = True,
) -> Extra:
    r"""NAdamW: NAdam's Nesterov moment with AdamW's decoupled weight decay (``adamw(nesterov=True)``).

    $$
    \theta_{t+1} = \theta_t - \alpha_t\left(
    \frac{\beta_1 \frac{m_t}{1-\beta_1^{t+1}} + (1-\beta_1)\frac{g_t}{1-\beta_1^t}}
    {\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\theta_t\right)
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        weight_decay: $\lambda \ge 0$ (decoupled).
        mask: which parameters decay.
        nesterov: the Nesterov moment (``False`` gives AdamW); a Python bool.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
