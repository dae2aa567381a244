"""Adaptive optimizers beyond Adam: RAdam, Yogi, NovoGrad and SM3."""

from __future__ import annotations

import jax
import optax

from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    scale_by_learning_rate,
    scale_by_novograd,
    scale_by_radam,
    scale_by_sm3,
    scale_by_yogi,
)

Extra = optax.GradientTransformationExtraArgs


def radam(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    threshold: float | jax.Array = 5.0,
    *,
    nesterov: bool = False,
) -> Extra:
    r"""Rectified Adam (Liu et al., 2020).

    $$
    \theta_{t+1} = \theta_t - \alpha_t \begin{cases}
    r_t\,\hat m_t / (\sqrt{\hat v_t} + \epsilon) & \rho_t \ge \tau \\
    \hat m_t & \text{otherwise}
    \end{cases}
    $$

    with the rectification $r_t$ and the length $\rho_t$ of the approximated simple moving
    average given in `scale_by_radam`: Adam once the variance of its adaptive step is
    tractable, bias-corrected momentum SGD before.

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon$ inside the root.
        threshold: $\tau$.
        nesterov: NAdam's moment; a Python bool.
    """
    return chain(
        scale_by_radam(b1, b2, eps, eps_root, threshold, nesterov=nesterov),
        scale_by_learning_rate(learning_rate),
    )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-3,
) -> Extra:
    r"""Yogi (Zaheer et al., 2018): Adam with an additive second-moment update.

    $$
    v_t = v_{t-1} - (1-\beta_2)\operatorname{sign}(v_{t-1} - g_t^2)\,g_t^2, \qquad
    \theta_{t+1} = \theta_t - \alpha_t \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
    $$

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$ (larger than Adam's: $10^{-3}$).
    """
    return chain(scale_by_yogi(b1=b1, b2=b2, eps=eps), scale_by_learning_rate(learning_rate))


def novograd(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-6,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
) -> Extra:
    r"""NovoGrad (Ginsburg et al., 2019): momentum of layer-normalized gradients.

    Per parameter array $l$,

    $$
    \nu^l_t = \beta_2 \nu^l_{t-1} + (1-\beta_2)\|g^l_t\|^2, \quad
    m^l_t = \beta_1 m^l_{t-1} + \frac{g^l_t}{\sqrt{\nu^l_t} + \epsilon} + \lambda\theta^l_t, \quad
    \theta^l_{t+1} = \theta^l_t - \alpha_t m^l_t
    $$

    with $\nu^l_1 = \|g^l_1\|^2$ (see `scale_by_novograd`).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$.
        eps_root: $\epsilon$ inside the root.
        weight_decay: $\lambda \ge 0$: a number or array.
    """
    return chain(
        scale_by_novograd(b1=b1, b2=b2, eps=eps, eps_root=eps_root, weight_decay=weight_decay),
        scale_by_learning_rate(learning_rate),
    )


def sm3(learning_rate: ScalarOrSchedule, momentum: float | jax.Array = 0.9) -> Extra:
    r"""SM3 (Anil et al., 2019): AdaGrad-like steps with one accumulator per row and column.

    $$
    \nu_t(i) = g_t(i)^2 + \min_{a} \mu^{(a)}_{t-1}(i_a), \quad
    m_t = \gamma m_{t-1} + (1-\gamma)\frac{g_t}{\sqrt{\nu_t}}, \quad
    \theta_{t+1} = \theta_t - \alpha_t m_t
    $$

    with $\mu^{(a)}_t$ the maxima of $\nu_t$ along axis $a$ (see `scale_by_sm3`): an
    $n \times m$ matrix costs $n + m$ accumulators instead of $nm$.

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule (optax takes a number).
        momentum: $\gamma \in [0, 1)$.
    """
    return chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate))
