"""Optimizers that set their own step size: Polyak SGD, DoG and Prodigy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, as_state_value, chain, resolve
from gdjax.optimizers._sgd import sgd
from gdjax.transforms import (
    ProdigyState,
    add_decayed_weights,
    scale_by_dog,
    scale_by_learning_rate,
    scale_by_polyak,
)
from gdjax.transforms._common import check_updates, increment, zero_count
from gdjax.tree_utils import is_none, tree_zeros_like

Extra = optax.GradientTransformationExtraArgs


def polyak_sgd(
    max_learning_rate: float | jax.Array = 1.0,
    scaling: ScalarOrSchedule = 1.0,
    f_min: float | jax.Array = 0.0,
    eps: float | jax.Array = 0.0,
    variant: str = "sps",
) -> Extra:
    r"""SGD with Polyak's step size (Loizou et al., 2021); ``update`` needs ``value=loss``.

    $$
    \theta_{t+1} = \theta_t - s_t \min\left(\frac{f(\theta_t) - f^\star}
    {s_t^2\|g_t\|^2 + \epsilon}, \gamma_{\max}\right) g_t
    $$

    where $s_t$ is ``scaling`` (the step is computed on $s_t g_t$, as in optax; $s = 1$ gives
    the textbook rule). ``variant="sps+"`` clips the gap $f - f^\star$ at 0. The training
    engine (`gdjax.fit`) does not pass the loss to the optimizer, so use it in a loop of your
    own.

    Args:
        max_learning_rate: $\gamma_{\max} \ge 0$.
        scaling: $s \ge 0$: a number, array or schedule (recorded as ``learning_rate``).
        f_min: $f^\star$, a lower bound on the loss.
        eps: $\epsilon \ge 0$.
        variant: ``"sps"`` or ``"sps+"``.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda x: jnp.sum(x**2)
        >>> opt = gdjax.polyak_sgd()
        >>> x = jnp.array([1.0, 2.0])
        >>> state = opt.init(x)
        >>> value, grad = jax.value_and_grad(f)(x)
        >>> u, state = opt.update(grad, state, x, value=value)
        >>> gdjax.apply_updates(x, u).tolist()  # Polyak's step halves a quadratic's argument
        [0.5, 1.0]
    """
    return chain(
        sgd(learning_rate=scaling),
        scale_by_polyak(f_min=f_min, max_learning_rate=max_learning_rate, eps=eps, variant=variant),
    )


def dog(
    learning_rate: ScalarOrSchedule = 1.0,
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], float | jax.Array] = (
        "heuristic",
        1e-6,
    ),
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array | None = None,
    mask: Any | Callable[[Any], Any] | None = None,
) -> Extra:
    r"""DoG, distance over gradients (Ivgi et al., 2023): SGD with a parameter-free step size.

    $$
    \eta_t = \frac{\max(r_\epsilon, \max_{k \le t}\|\theta_k - \theta_0\|)}
    {\sqrt{\sum_{k \le t}\|g_k\|^2 + \epsilon}}, \qquad
    \theta_{t+1} = \theta_t - \alpha_t\,\eta_t\,(g_t + \lambda\theta_t)
    $$

    $\alpha_t$ (``learning_rate``) is a multiplier, 1 by default; see `scale_by_dog` for
    ``init_step``. ``init`` must see the real parameters (they are $\theta_0$).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        init_step: ``(kind, value)``: ``("heuristic", a)``, ``("distance", r)`` or
            ``("learning_rate", e)``.
        eps: $\epsilon \ge 0$.
        weight_decay: $\lambda$, added to the gradient (``None``: none).
        mask: which parameters decay.
    """
    parts = [] if weight_decay is None else [add_decayed_weights(weight_decay, mask)]
    return chain(*parts, scale_by_dog(init_step, eps), scale_by_learning_rate(learning_rate))


def _tree_sum(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return sum(leaves[1:], leaves[0]) if leaves else jnp.zeros([])


def prodigy(
    learning_rate: ScalarOrSchedule = 1.0,
    betas: tuple[float | jax.Array, float | jax.Array] = (0.9, 0.999),
    beta3: float | jax.Array | None = None,
    eps: float | jax.Array = 1e-8,
    estim_lr0: float | jax.Array = 1e-6,
    estim_lr_coef: float | jax.Array = 1.0,
    weight_decay: float | jax.Array = 0.0,
    safeguard_warmup: bool = False,
) -> Extra:
    r"""Prodigy (Mishchenko & Defazio, 2023): Adam whose learning rate $d_t$ estimates itself.

    With $\gamma_t$ = ``learning_rate`` (a multiplier, best a schedule from 1 down),
    Adam's bias corrections folded in as
    $\lambda_t = \gamma_t d_t \sqrt{1-\beta_2^t}/(1-\beta_1^t)$ and $\beta_3 = \sqrt{\beta_2}$
    by default:

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1) d_t g_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) d_t^2 g_t^2,
    $$

    $$
    r_t = \beta_3 r_{t-1} + \frac{d_t}{d_0}\lambda_t \langle g_t, \theta_0 - \theta_t\rangle, \quad
    s_t = \beta_3 s_{t-1} + \frac{d_t}{d_0}\lambda_t g_t, \quad
    d_{t+1} = \max\Big(d_t, c\,\frac{r_t}{\|s_t\|_1}\Big),
    $$

    $$
    \theta_{t+1} = \theta_t - \lambda_t\Big(\frac{m_t}{\sqrt{v_t} + d_{t+1}\epsilon}
    + w\,\theta_t\Big)
    $$

    The paper's $(1-\beta_3)$ factors cancel in $r_t/\|s_t\|_1$; $\epsilon$ is scaled by the new
    estimate $d_{t+1}$, as in the authors' code and optax (the paper writes $d_t$).
    ``safeguard_warmup=True`` leaves $\gamma_t$ out of $s_t$ (for warm-up schedules).
    ``update`` needs ``params``.

    Args:
        learning_rate: $\gamma_t \ge 0$: a number, array or schedule (1 by default).
        betas: $(\beta_1, \beta_2)$, each in $[0, 1)$.
        beta3: $\beta_3 \in [0, 1)$; ``None`` means $\sqrt{\beta_2}$.
        eps: $\epsilon \ge 0$.
        estim_lr0: $d_0 > 0$, an underestimate of the distance to the solution.
        estim_lr_coef: $c > 0$.
        weight_decay: $w \ge 0$, decoupled (AdamW's).
        safeguard_warmup: see above; a Python bool.
    """
    if not (isinstance(betas, tuple) and len(betas) == 2):
        raise TypeError(f"betas must be a pair (beta1, beta2); got {betas!r}")
    beta1, beta2 = betas
    _checks.decay_rate("betas[0]", beta1)
    _checks.decay_rate("betas[1]", beta2)
    if beta3 is None:
        beta3 = beta2**0.5
    _checks.decay_rate("beta3", beta3)
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.non_negative("eps", eps)
    _checks.positive("estim_lr0", estim_lr0)
    _checks.positive("estim_lr_coef", estim_lr_coef)
    _checks.non_negative("weight_decay", weight_decay)
    _checks.static_bool("safeguard_warmup", safeguard_warmup)

    def init_fn(params):
        dtype = optax.tree.dtype(params, "lowest")
        zeros = tree_zeros_like(params)
        return ProdigyState(
            zeros,
            tree_zeros_like(params),
            tree_zeros_like(params),
            params,
            jnp.asarray(estim_lr0, dtype),
            jnp.zeros([], dtype),
            zero_count(),
            as_state_value(resolve(learning_rate, 0)),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args  # an ExtraArgs transformation ignores what it does not read
        if params is None:
            raise ValueError("prodigy needs params: call update(grads, state, params)")
        check_updates(updates, state.exp_avg)
        count = increment(state.count)
        gamma = resolve(learning_rate, state.count)
        d = state.estim_lr
        bc = ((1 - beta2**count) ** 0.5) / (1 - beta1**count)
        dlr = jnp.asarray(d * gamma * bc, d.dtype)
        dg = jax.tree.map(lambda g: d * g, updates)
        inner = _tree_sum(
            jax.tree.map(lambda g, p0, p: jnp.vdot(g, p0 - p), updates, state.params0, params)
        )
        exp_avg = jax.tree.map(lambda m, x: beta1 * m + (1 - beta1) * x, state.exp_avg, dg)
        exp_avg_sq = jax.tree.map(
            lambda v, x: beta2 * v + (1 - beta2) * x * x, state.exp_avg_sq, dg
        )
        weight = d if safeguard_warmup else dlr
        grad_sum = jax.tree.map(lambda s, x: beta3 * s + weight * x / estim_lr0, state.grad_sum, dg)
        numerator = beta3 * state.numerator_weighted + (d / estim_lr0) * dlr * inner
        denominator = _tree_sum(jax.tree.map(lambda s: jnp.sum(jnp.abs(s)), grad_sum))
        estim_lr = jnp.maximum(d, estim_lr_coef * numerator / denominator)
        out = jax.tree.map(
            lambda g, m, v, p: (
                None
                if g is None
                else (-weight_decay * dlr * p - dlr * m / (jnp.sqrt(v) + estim_lr * eps)).astype(
                    g.dtype
                )
            ),
            updates,
            exp_avg,
            exp_avg_sq,
            params,
            is_leaf=is_none,
        )
        return out, ProdigyState(
            exp_avg,
            exp_avg_sq,
            grad_sum,
            state.params0,
            estim_lr.astype(d.dtype),
            numerator.astype(d.dtype),
            count,
            as_state_value(gamma),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
