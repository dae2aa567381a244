"""Noisy gradient descent: SGD on gradients with annealed Gaussian noise (optax's ``noisy_sgd``)."""

from __future__ import annotations

import jax
import optax

from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import add_noise, scale_by_learning_rate

Extra = optax.GradientTransformationExtraArgs


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: float | jax.Array = 0.01,
    gamma: float | jax.Array = 0.55,
    key: int | jax.Array | None = None,
    *,
    seed: int | None = None,
) -> Extra:
    r"""Gradient descent with annealed Gaussian gradient noise (Neelakantan et al., 2015).

    $$
    \theta_{t+1} = \theta_t - \alpha_t (g_t + \sigma_t \xi_t), \qquad
    \xi_t \sim \mathcal N(0, I), \quad \sigma_t^2 = \frac{\eta}{(1+t)^\gamma}
    $$

    The noise is drawn as `add_noise` draws it (optax's stream for the same key).

    Args:
        learning_rate: $\alpha \ge 0$.
        eta: $\eta \ge 0$, the initial noise variance.
        gamma: $\gamma \ge 0$, its annealing exponent.
        key: a PRNG key or an int seed (``None``: seed 0).
        seed: optax's older spelling of an integer ``key`` (deprecated).
    """
    return chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate))
