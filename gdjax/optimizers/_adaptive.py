"""Adaptive-step optimizers: AdaGrad, RMSprop, Adam and its variants."""

from __future__ import annotations

from typing import Any

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    add_decayed_weights,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)
from gdjax.transforms.regularization import Mask

Extra = optax.GradientTransformationExtraArgs


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: float | jax.Array = 0.1,
    eps: float | jax.Array = 1e-7,
) -> Extra:
    r"""AdaGrad: per-parameter steps shrink with the accumulated squared gradient.

    $$
    G_t = G_{t-1} + g_t^2, \qquad \theta_{t+1} = \theta_t - \frac{\alpha_t}{\sqrt{G_t + \epsilon}}\, g_t
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        initial_accumulator_value: $G_0 \ge 0$.
        eps: $\epsilon > 0$.
    """
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-8,
    initial_scale: float | jax.Array = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: float | jax.Array | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Extra:
    r"""RMSprop, plain or centered, with optional momentum.

    $$
    \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2, \qquad
    \theta_{t+1} = \theta_t - \alpha_t \frac{g_t}{\sqrt{\nu_t + \epsilon}}
    $$

    ``centered=True`` divides by $\sqrt{\nu_t - \mu_t^2 + \epsilon}$ with
    $\mu_t$ the EMA of gradients; ``momentum=γ`` adds a momentum buffer on the step.

    Args:
        learning_rate: $\alpha \ge 0$.
        decay: $\rho \in [0, 1)$.
        eps: $\epsilon > 0$.
        initial_scale: $\nu_0 \ge 0$.
        eps_in_sqrt: put $\epsilon$ inside the root (optax) or outside (PyTorch); a Python
            bool.
        centered: centered RMSprop (Graves, 2013); a Python bool.
        momentum: optional momentum $\gamma \in [0, 1]$.
        nesterov: Nesterov form of that momentum; a Python bool.
        bias_correction: divide the EMAs by $1-\rho^t$ (as Adam does); a Python bool.
    """
    _checks.static_bool("centered", centered)
    _checks.static_bool("nesterov", nesterov)
    scaler = scale_by_stddev if centered else scale_by_rms
    parts = [
        scaler(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
    ]
    if momentum is not None:
        parts.append(trace(decay=momentum, nesterov=nesterov))
    elif nesterov:
        raise ValueError("nesterov=True needs a momentum value in [0, 1]; got momentum=None")
    return chain(*parts)


def adam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> Extra:
    r"""Adam (Kingma & Ba, 2015).

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
    \\ \theta_{t+1} = \theta_t - \alpha_t \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
    $$

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon > 0$.
        eps_root: $\epsilon$ inside the root, $\ge 0$.
        mu_dtype: dtype of the first moment.
        nesterov: NAdam's Nesterov momentum (see `nadam`); a Python bool.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.adam(1e-1)
        >>> params = {"w": jnp.array([1.0, -2.0])}
        >>> state = opt.init(params)
        >>> grads = jax.grad(lambda p: jnp.sum(p["w"] ** 2))(params)
        >>> updates, state = opt.update(grads, state, params)
        >>> [round(x, 4) for x in updates["w"].tolist()]  # first step: -lr * sign(g)
        [-0.1, 0.1]
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nesterov: bool = False,
) -> Extra:
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    $$
    \theta_{t+1} = \theta_t - \alpha_t\left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\theta_t\right)
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon > 0$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        weight_decay: $\lambda \ge 0$: a number, array or schedule.
        mask: which parameters decay (pytree of bools or ``params -> pytree``).
        nesterov: use NAdam's moment (NAdamW); a Python bool.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> Extra:
    r"""NAdam (Dozat, 2016): Adam with Nesterov momentum.

    $$
    \theta_{t+1} = \theta_t - \alpha_t
    \frac{\beta_1 \frac{m_t}{1-\beta_1^{t+1}} + (1-\beta_1)\frac{g_t}{1-\beta_1^t}}
    {\sqrt{\hat v_t} + \epsilon}
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon > 0$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        nesterov: the Nesterov moment (``optax.nadam`` is ``adam`` with this set to ``True``;
            ``False`` gives plain Adam); a Python bool.
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
) -> Extra:
    r"""AMSGrad (Reddi et al., 2018): Adam with a running maximum of the second moment.

    $$
    \hat v^{\max}_t = \max(\hat v^{\max}_{t-1}, \hat v_t), \qquad
    \theta_{t+1} = \theta_t - \alpha_t \frac{\hat m_t}{\sqrt{\hat v^{\max}_t} + \epsilon}
    $$

    with Adam's bias-corrected $\hat m_t$ and $\hat v_t$ (the paper's original form, without
    bias correction: ``bias_correction_mu=False, bias_correction_nu=False``).

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon > 0$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the first moment.
        bias_correction_mu: bias-correct the first moment; a Python bool.
        bias_correction_nu: bias-correct the second moment before the maximum; a Python bool.
    """
    return chain(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu=bias_correction_mu,
            bias_correction_nu=bias_correction_nu,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: float | jax.Array = 0.9,
    eps: float | jax.Array = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask = None,
) -> Extra:
    r"""AdaDelta (Zeiler, 2012).

    $$
    \Delta\theta_t = -\alpha_t\frac{\sqrt{E[\Delta\theta^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t
    $$

    Args:
        learning_rate: $\alpha \ge 0$; ``None`` means 1 (Zeiler's original, no learning
            rate). Note: ``optax.adadelta(None)`` skips the sign flip and so *ascends*; gdjax
            descends.
        rho: $\rho \in [0, 1)$.
        eps: $\epsilon > 0$.
        weight_decay: coupled weight decay $\lambda \ge 0$ added to the gradient.
        weight_decay_mask: which parameters decay.
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
) -> Extra:
    r"""Adamax (Kingma & Ba, 2015): Adam under the infinity norm.

    $$
    u_t = \max(\beta_2 u_{t-1}, |g_t| + \epsilon), \qquad
    \theta_{t+1} = \theta_t - \alpha_t \frac{m_t/(1-\beta_1^t)}{u_t}
    $$

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon > 0$.
    """
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))
