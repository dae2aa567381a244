"""Layer-wise optimizers: LARS, LAMB and Fromage scale each layer's step by its own size."""

from __future__ import annotations

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    add_decayed_weights,
    masked,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_trust_ratio,
    trace,
)
from gdjax.transforms.regularization import Mask, _add_scaled_params

Extra = optax.GradientTransformationExtraArgs


def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask = True,
    trust_coefficient: float | jax.Array = 0.001,
    eps: float | jax.Array = 0.0,
    trust_ratio_mask: Mask = True,
    momentum: float | jax.Array = 0.9,
    nesterov: bool = False,
) -> Extra:
    r"""LARS (You et al., 2017): momentum SGD with a per-layer trust ratio, for large batches.

    For each layer $i$ (parameter array):

    $$
    d_i = g_i + \lambda\theta_i, \qquad
    v_t = \gamma v_{t-1} + \alpha_t\, \frac{\eta\,\lVert\theta_i\rVert}{\lVert d_i\rVert + \epsilon}\, d_i,
    \qquad \theta_{t+1} = \theta_t - v_t
    $$

    (the trust ratio is 1 where a norm is 0; the masks select the layers that decay and those
    that get a trust ratio, typically not biases and normalization scales).

    Args:
        learning_rate: $\alpha \ge 0$.
        weight_decay: $\lambda \ge 0$, added to the gradient before the trust ratio.
        weight_decay_mask: which parameters decay (``True``: all).
        trust_coefficient: $\eta \ge 0$.
        eps: $\epsilon \ge 0$.
        trust_ratio_mask: which parameters get the trust ratio (``True``: all).
        momentum: $\gamma \in [0, 1]$.
        nesterov: Nesterov momentum; a Python bool.
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        masked(
            scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask
        ),
        scale_by_learning_rate(learning_rate),
        trace(decay=momentum, nesterov=nesterov),
    )


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
) -> Extra:
    r"""LAMB (You et al., 2019): AdamW's step rescaled per layer by a trust ratio.

    For each layer $i$, with Adam's bias-corrected moments:

    $$
    r_i = \frac{\hat m_i}{\sqrt{\hat v_i} + \epsilon} + \lambda\theta_i, \qquad
    \theta_{i} \leftarrow \theta_i - \alpha_t \frac{\lVert\theta_i\rVert}{\lVert r_i\rVert}\, r_i
    $$

    (factor 1 where a norm is 0).

    Args:
        learning_rate: $\alpha \ge 0$.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon$ inside the root.
        weight_decay: $\lambda \ge 0$ (decoupled, before the trust ratio).
        mask: which parameters decay.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


def fromage(learning_rate: ScalarOrSchedule, min_norm: float | jax.Array = 1e-6) -> Extra:
    r"""Fromage (Bernstein et al., 2020): steps relative to each layer's size, then a shrink.

    For each layer $i$ (norms floored at ``min_norm``):

    $$
    \theta_i \leftarrow \frac{1}{\sqrt{1 + \alpha_t^2}}
    \left(\theta_i - \alpha_t \frac{\lVert\theta_i\rVert}{\lVert g_i\rVert}\, g_i\right)
    $$

    The shrink keeps the layer's norm from growing: the step is orthogonal-ish to large
    weights, and $\sqrt{1+\alpha^2}$ undoes the growth it would cause. A scheduled learning
    rate is recorded as the effective step $\alpha_t/\sqrt{1+\alpha_t^2}$ (optax's
    composition).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule (typically 0.01).
        min_norm: floor of both norms, $\ge 0$.
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.non_negative("min_norm", min_norm)
    if callable(learning_rate):

        def shrink(count):
            return 1 / (1 + learning_rate(count) ** 2) ** 0.5

        step = lambda count: shrink(count) * learning_rate(count)  # noqa: E731
        decay = lambda count: shrink(count) - 1  # noqa: E731
    else:
        factor = 1 / (1 + learning_rate**2) ** 0.5
        step, decay = learning_rate * factor, factor - 1
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        _add_scaled_params(decay),
    )
