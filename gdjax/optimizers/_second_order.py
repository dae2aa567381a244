r"""Beyond first order: Newton, Hessian-free, Gauss-Newton, Levenberg-Marquardt, L-BFGS,
simulated annealing and perturbed gradient descent.

All but `perturbed_gd` need the objective: they read the extra arguments ``value``, ``grad``
and ``value_fn`` (`optax.lbfgs`'s names), which `gdjax.minimize` passes, and `gdjax.fit`
too (full batch: ``batch_size=None``). By hand::

    value, grad = jax.value_and_grad(f)(params)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, chain
from gdjax.transforms import (
    add_noise,
    metropolis,
    scale,
    scale_by_gauss_newton,
    scale_by_hessian_free,
    scale_by_lbfgs,
    scale_by_learning_rate,
    scale_by_levenberg_marquardt,
    scale_by_newton,
    scale_by_zoom_linesearch,
)

Extra = optax.GradientTransformationExtraArgs
Linesearch = optax.GradientTransformation | None

#: The default line search of `lbfgs`, `newton` and `gauss_newton`: optax.lbfgs's settings
#: (20 evaluations, first trial step 1), gdjax's safer failure handling.
ZOOM = scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


def _scaled(direction: optax.GradientTransformation, learning_rate, linesearch) -> Extra:
    """``direction``, then ``-learning_rate`` (or ``-1``), then the line search if any."""
    if learning_rate is None:
        step = scale(-1.0)
    else:
        _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
        step = scale_by_learning_rate(learning_rate)
    if linesearch is None:
        return chain(direction, step)
    if not (callable(getattr(linesearch, "init", None)) and callable(linesearch.update)):
        raise TypeError(
            "linesearch must be a GradientTransformation (e.g. gdjax.scale_by_zoom_linesearch("
            f"20)) or None; got {linesearch!r}"
        )
    return chain(direction, step, linesearch)


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Linesearch = ZOOM,
) -> Extra:
    r"""L-BFGS with a zoom line search: `optax.lbfgs`, step for step, without its divergence.

    $$
    \theta_{k+1} = \theta_k - \eta_k P_k \nabla f(\theta_k)
    $$

    with $P_k$ the L-BFGS inverse-Hessian approximation (`scale_by_lbfgs`) and $\eta_k$ from
    the strong-Wolfe zoom line search (`scale_by_zoom_linesearch`; times ``learning_rate`` if
    given). On problems where optax's line search succeeds, the iterates are optax's to
    rounding (tested). Where it fails, optax may take a step that raises the objective and
    its preconditioner may lose positive definiteness (optax issues #1201, #1298); here the
    objective never increases: pairs without positive curvature are skipped, a failed search
    takes no uphill step, and the memory restarts when the direction stops descending.

    Args:
        learning_rate: optional extra factor (number, array or schedule); ``None``: 1.
        memory_size: $m$, the number of stored pairs (a Python int).
        scale_init_precond: scale the initial inverse Hessian by $s^\top y / y^\top y$.
        linesearch: a line search transformation, or ``None`` for fixed steps.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> f = lambda w: jnp.sum((w - jnp.array([1.0, -2.0])) ** 2 * jnp.array([1.0, 50.0]))
        >>> res = gdjax.minimize(f, jnp.zeros(2), method=gdjax.lbfgs(), tol=1e-5)
        >>> bool(res.converged), [round(float(v), 3) for v in res.params]
        (True, [1.0, -2.0])
    """
    direction = scale_by_lbfgs(memory_size=memory_size, scale_init_precond=scale_init_precond)
    return _scaled(direction, learning_rate, linesearch)


def newton(
    learning_rate: ScalarOrSchedule | None = None,
    damping: float | jax.Array | Callable = 0.0,
    linesearch: Linesearch = ZOOM,
    *,
    max_params: int = 5000,
) -> Extra:
    r"""Newton's method with the exact Hessian, damping and a line search.

    $$
    \theta_{k+1} = \theta_k - \eta_k (\nabla^2 f(\theta_k) + \lambda I)^{-1} \nabla f(\theta_k)
    $$

    The line search tries $\eta = 1$ first, so near a minimum the steps are pure Newton steps
    and convergence is quadratic. Where the damped Hessian is not positive definite the
    direction is saddle-free Newton's (`scale_by_newton`). For at most ``max_params``
    parameters.

    Args:
        learning_rate: optional factor on the step (``None``: 1).
        damping: $\lambda \ge 0$ (number, array or schedule).
        linesearch: a line search transformation, or ``None`` for fixed steps.
        max_params: the largest parameter count accepted.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.newton(damping=1e-4)  # run it with gdjax.minimize(f, params, method=opt)
        >>> opt.init(jnp.zeros(3))[0].positive_definite
        Array(True, dtype=bool)
        >>> gdjax.newton().init(jnp.zeros(6000))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: scale_by_newton: the parameters have 6,000 entries, ... Use gdjax.hessian_free ...
    """
    direction = scale_by_newton(damping, max_params=max_params)
    return _scaled(direction, learning_rate, linesearch)


def hessian_free(
    damping: float | jax.Array = 1.0,
    *,
    cg_max_steps: int | jax.Array = 50,
    cg_tol: float | jax.Array = 1e-4,
    warm_start: float | jax.Array = 0.95,
    adapt_damping: bool = True,
) -> Extra:
    r"""Hessian-free Newton (Newton-CG with Martens' damping), for models of any size.

    $$
    \theta_{k+1} = \theta_k + t_k d_k, \qquad (\nabla^2 f(\theta_k) + \lambda_k I) d_k \approx
    -\nabla f(\theta_k)
    $$

    solved by conjugate gradient on Hessian-vector products (`scale_by_hessian_free`); no
    Hessian is formed, memory is a few copies of the parameters.

    Args:
        damping: initial $\lambda > 0$.
        cg_max_steps: CG iterations per step.
        cg_tol: CG's relative residual tolerance.
        warm_start: decay of the previous CG solution used as the next start.
        adapt_damping: Martens' Levenberg-Marquardt rule for $\lambda$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.hessian_free(damping=1e-3, cg_max_steps=20)
        >>> state = opt.init({"w": jnp.zeros(3)})  # run it with gdjax.minimize(f, params, method=opt)
        >>> round(float(state[0].damping), 6)
        0.001
    """
    return chain(
        scale_by_hessian_free(
            damping,
            cg_max_steps=cg_max_steps,
            cg_tol=cg_tol,
            warm_start=warm_start,
            adapt_damping=adapt_damping,
        )
    )


def gauss_newton(
    residual_fn: Callable[[Any], jax.Array],
    learning_rate: ScalarOrSchedule | None = None,
    damping: float | jax.Array | Callable = 0.0,
    linesearch: Linesearch = ZOOM,
) -> Extra:
    r"""Gauss-Newton for $f(\theta) = \tfrac12\lVert r(\theta)\rVert^2$, with a line search.

    $$
    \theta_{k+1} = \theta_k - \eta_k (J_k^\top J_k + \lambda I)^{-1} J_k^\top r(\theta_k)
    $$

    The line search evaluates ``value_fn`` (give the matching objective to
    `gdjax.minimize`); with ``linesearch=None`` and a ``learning_rate`` only the residuals
    are used.

    Args:
        residual_fn: $r$, ``params -> array``.
        learning_rate: optional factor on the step (``None``: 1).
        damping: $\lambda \ge 0$.
        linesearch: a line search transformation, or ``None``.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> t = jnp.linspace(0.0, 2.0, 8)
        >>> r = lambda p: p[0] * jnp.exp(-p[1] * t) - 2.0 * jnp.exp(-1.5 * t)
        >>> opt = gdjax.gauss_newton(r, learning_rate=1.0, linesearch=None)  # pure Gauss-Newton
        >>> p, state = jnp.array([1.0, 1.0]), opt.init(jnp.array([1.0, 1.0]))
        >>> step = jax.jit(lambda p, state: opt.update(p, state, p))
        >>> for _ in range(6):
        ...     u, state = step(p, state)
        ...     p = p + u
        >>> [round(float(v), 3) for v in p]
        [2.0, 1.5]
    """
    return _scaled(scale_by_gauss_newton(residual_fn, damping), learning_rate, linesearch)


def levenberg_marquardt(
    residual_fn: Callable[[Any], jax.Array], damping: float | jax.Array = 1e-3
) -> Extra:
    r"""Levenberg-Marquardt for $f(\theta) = \tfrac12\lVert r(\theta)\rVert^2$.

    $$
    \theta_{k+1} = \theta_k + h_k, \qquad (J_k^\top J_k + \mu_k I)\, h_k = -J_k^\top r(\theta_k)
    $$

    when the gain ratio is positive (else $h_k = 0$ and $\mu$ grows), with Nielsen's update of
    $\mu$ (`scale_by_levenberg_marquardt`). Needs only the residuals.

    Args:
        residual_fn: $r$, ``params -> array``.
        damping: $\tau > 0$: the first $\mu$ is $\tau \max_i (J^\top J)_{ii}$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> r = lambda p: jnp.array([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])  # Rosenbrock
        >>> opt = gdjax.levenberg_marquardt(r)
        >>> state = opt.init(jnp.zeros(2))  # run it with gdjax.minimize(f, params, method=opt)
        >>> state[0].nu
        Array(2., dtype=float32)
    """
    return chain(scale_by_levenberg_marquardt(residual_fn, damping))


def simulated_annealing(
    temperature: ScalarOrSchedule,
    proposal_scale: ScalarOrSchedule,
    key: int | jax.Array = 0,
) -> Extra:
    r"""Simulated annealing: Metropolis steps under a falling temperature, no gradient used.

    $$
    \theta' = \theta_k + \sigma_k \xi_k, \qquad
    \theta_{k+1} = \begin{cases} \theta' & \text{with probability }
    \min(1, e^{-(f(\theta') - f(\theta_k))/T_k}) \\ \theta_k & \text{otherwise} \end{cases}
    $$

    ``temperature`` and ``proposal_scale`` accept any `gdjax.schedules` schedule
    (``exponential_decay`` is the classical geometric cooling). The state keeps the best point
    seen (`gdjax.minimize` returns it). Keyed: the same key gives the same run.

    Args:
        temperature: $T_k > 0$ (number, array or schedule).
        proposal_scale: $\sigma_k > 0$ (number, array or schedule).
        key: PRNG key or integer seed.

    Examples:
        >>> import gdjax
        >>> cool = gdjax.schedules.exponential_decay(10.0, transition_steps=3000, decay_rate=1e-3)
        >>> sa = gdjax.simulated_annealing(temperature=cool, proposal_scale=0.3, key=0)
        >>> [round(float(cool(k)), 3) for k in (0, 1500, 3000)]  # T_k: 10 -> 0.01
        [10.0, 0.316, 0.01]
    """
    return chain(metropolis(temperature, proposal_scale, key))


def perturbed_gd(
    learning_rate: ScalarOrSchedule,
    threshold: float | jax.Array,
    radius: float | jax.Array,
    key: int | jax.Array = 0,
) -> Extra:
    r"""Perturbed gradient descent (Jin et al., 2017): noise only where the gradient vanishes.

    $$
    \theta_{k+1} = \theta_k - \alpha \left(\nabla f(\theta_k) + r\,\xi_k\,
    [\lVert\nabla f(\theta_k)\rVert < g_{\mathrm{thr}}]\right), \qquad \xi_k \sim \mathcal N(0, I)
    $$

    Away from critical points it is plain gradient descent; near one (a saddle, where exact
    gradient descent can stall forever) the noise pushes the iterate onto a direction of
    negative curvature, along which gradient descent then escapes. Built from
    `add_noise` (``below_norm``) and `scale_by_learning_rate`.

    Args:
        learning_rate: $\alpha$ (number, array or schedule).
        threshold: $g_{\mathrm{thr}} \ge 0$.
        radius: $r \ge 0$, the noise's standard deviation (in gradient units).
        key: PRNG key or integer seed.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.perturbed_gd(0.05, threshold=1e-3, radius=1e-2, key=0)
        >>> g = jnp.array([0.5, 0.0])  # far from critical: a plain gradient step
        >>> u, _ = opt.update(g, opt.init(g), g)
        >>> bool(jnp.all(u == -0.05 * g))
        True
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.non_negative("threshold", threshold)
    _checks.non_negative("radius", radius)
    return chain(
        add_noise(radius**2, 0.0, key, below_norm=threshold),
        scale_by_learning_rate(learning_rate),
    )


__all__ = [
    "gauss_newton",
    "hessian_free",
    "lbfgs",
    "levenberg_marquardt",
    "newton",
    "perturbed_gd",
    "simulated_annealing",
]
