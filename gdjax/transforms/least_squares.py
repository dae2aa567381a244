r"""Gauss-Newton and Levenberg-Marquardt for least-squares objectives given by residuals.

The objective is $f(\theta) = \tfrac12 \lVert r(\theta) \rVert^2$ for a residual function
$r: \theta \mapsto \mathbb{R}^m$ given when the transformation is built. Its Jacobian
$J = \partial r / \partial \theta$ (forward mode when $n \le m$, reverse otherwise) gives the
gradient $J^\top r$ and the Gauss-Newton curvature $J^\top J$, which needs no second
derivatives and is positive semi-definite everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from gdjax import _checks
from gdjax.base import resolve
from gdjax.transforms._extra_args import check_function, require_params

Residuals = Callable[[Any], jax.Array]


def _linearize(residual_fn: Residuals, params: Any):
    """Flat residuals ``r`` (m,), Jacobian ``J`` (m, n), and the unravel function."""
    flat, unravel = ravel_pytree(params)

    def r_flat(x):
        return jnp.ravel(residual_fn(unravel(x)))

    r = r_flat(flat)
    jac = jax.jacfwd(r_flat)(flat) if flat.shape[0] <= r.shape[0] else jax.jacrev(r_flat)(flat)
    return flat, unravel, r, jac, r_flat


def _damped_solve(jac: jax.Array, r: jax.Array, lam: jax.Array) -> jax.Array:
    r"""$(J^\top J + \lambda I)^{-1} J^\top r$ as the least-squares solution of the stacked
    system $[J; \sqrt\lambda I]\,d \approx [r; 0]$ (SVD-based: rank-deficient $J$ is fine)."""
    n = jac.shape[1]
    a = jnp.concatenate([jac, jnp.sqrt(lam) * jnp.eye(n, dtype=jac.dtype)])
    b = jnp.concatenate([r, jnp.zeros(n, r.dtype)])
    return jnp.linalg.lstsq(a, b)[0]


class ScaleByGaussNewtonState(NamedTuple):
    """State of `scale_by_gauss_newton`.

    Attributes:
        count: number of updates.
        damping: the $\\lambda$ of the latest update.
        value: $\\tfrac12\\lVert r\\rVert^2$ at the parameters of the latest update.
    """

    count: jax.Array
    damping: jax.Array
    value: jax.Array


def scale_by_gauss_newton(
    residual_fn: Residuals, damping: float | jax.Array | Callable = 0.0
) -> optax.GradientTransformationExtraArgs:
    r"""The Gauss-Newton direction $d = (J^\top J + \lambda I)^{-1} J^\top r$.

    It minimizes the linearized model $\tfrac12\lVert r + J\delta\rVert^2$ (plus
    $\tfrac{\lambda}{2}\lVert\delta\rVert^2$) at $\delta = -d$, solved in the least-squares sense,
    so a rank-deficient Jacobian gives the minimum-norm step. Returns $d$ (the incoming
    updates are ignored: the gradient is $J^\top r$): chain with a negative scaling or a line
    search (`gdjax.gauss_newton` does).

    Args:
        residual_fn: $r$, ``params -> array`` of residuals (any shape; flattened).
        damping: $\lambda \ge 0$ (a number, array or schedule).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> t = jnp.array([0.0, 1.0, 2.0])
        >>> r = lambda p: p["a"] * t + p["b"] - jnp.array([1.0, 3.0, 5.0])
        >>> opt = gdjax.scale_by_gauss_newton(r)
        >>> p = {"a": jnp.zeros(()), "b": jnp.zeros(())}
        >>> d, _ = opt.update(p, opt.init(p), p)
        >>> {k: round(float(p[k] - d[k]), 4) for k in p}  # linear residuals: one exact step
        {'a': 2.0, 'b': 1.0}
    """
    check_function("residual_fn", residual_fn)
    _checks.non_negative("damping", damping, schedule_ok=True)

    def init_fn(params):
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return ScaleByGaussNewtonState(
            jnp.zeros([], jnp.int32), jnp.zeros([], jnp.float32), jnp.zeros([], dtype)
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        require_params("scale_by_gauss_newton", params)
        _, unravel, r, jac, _ = _linearize(residual_fn, params)
        lam = jnp.asarray(resolve(damping, state.count), jac.dtype)
        d = _damped_solve(jac, r, lam)
        new_state = ScaleByGaussNewtonState(
            count=optax.safe_increment(state.count),
            damping=lam.astype(jnp.float32),
            value=(0.5 * jnp.vdot(r, r)).astype(state.value.dtype),
        )
        return optax.tree.cast_like(unravel(d), updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByLevenbergMarquardtState(NamedTuple):
    """State of `scale_by_levenberg_marquardt`.

    Attributes:
        count: number of updates.
        damping: $\\mu$ for the next update.
        nu: the factor $\\nu$ by which $\\mu$ grows after the next rejected step.
        accepted: whether the latest step was taken.
        gain_ratio: $\\rho$ of the latest step.
        value: $\\tfrac12\\lVert r\\rVert^2$ after the latest update.
    """

    count: jax.Array
    damping: jax.Array
    nu: jax.Array
    accepted: jax.Array
    gain_ratio: jax.Array
    value: jax.Array


def scale_by_levenberg_marquardt(
    residual_fn: Residuals, damping: float | jax.Array = 1e-3
) -> optax.GradientTransformationExtraArgs:
    r"""Levenberg-Marquardt steps with Nielsen's damping update (Madsen, Nielsen, Tingleff 2004).

    $$
    (J^\top J + \mu I)\, h = -J^\top r, \qquad
    \rho = \frac{f(\theta) - f(\theta + h)}{\tfrac12 h^\top(\mu h - J^\top r)}
    $$

    The step is taken when $\rho > 0$, and then
    $\mu \leftarrow \mu \max(\tfrac13, 1 - (2\rho - 1)^3)$, $\nu \leftarrow 2$; otherwise the
    update is zero and $\mu \leftarrow \mu\nu$, $\nu \leftarrow 2\nu$. Large $\mu$ gives short
    gradient-descent steps, small $\mu$ Gauss-Newton steps. The first $\mu$ is ``damping``
    times the largest diagonal entry of $J^\top J$. Returns the update itself.

    Args:
        residual_fn: $r$, ``params -> array`` of residuals.
        damping: $\tau > 0$, the initial damping relative to $\max_i (J^\top J)_{ii}$.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> t = jnp.linspace(0.0, 1.0, 5)
        >>> r = lambda p: jnp.exp(p * t) - jnp.exp(0.5 * t)
        >>> opt = gdjax.scale_by_levenberg_marquardt(r)
        >>> p, state = jnp.array(0.0), opt.init(jnp.array(0.0))
        >>> step = jax.jit(lambda p, state: opt.update(p, state, p))
        >>> for _ in range(10):
        ...     u, state = step(p, state)
        ...     p = gdjax.apply_updates(p, u)
        >>> round(float(p), 4)
        0.5
    """
    check_function("residual_fn", residual_fn)
    _checks.positive("damping", damping)

    def init_fn(params):
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return ScaleByLevenbergMarquardtState(
            count=jnp.zeros([], jnp.int32),
            damping=jnp.zeros([], dtype),
            nu=jnp.asarray(2.0, dtype),
            accepted=jnp.zeros([], bool),
            gain_ratio=jnp.zeros([], dtype),
            value=jnp.zeros([], dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        require_params("scale_by_levenberg_marquardt", params)
        flat, unravel, r, jac, r_flat = _linearize(residual_fn, params)
        dtype = state.damping.dtype
        g = jac.T @ r
        first_mu = damping * jnp.max(jnp.sum(jac * jac, axis=0))
        mu = jnp.where(state.count == 0, first_mu, state.damping).astype(jac.dtype)
        h = -_damped_solve(jac, r, mu)
        f0 = 0.5 * jnp.vdot(r, r)
        r1 = r_flat(flat + h)
        f1 = 0.5 * jnp.vdot(r1, r1)
        predicted = 0.5 * jnp.vdot(h, mu * h - g)
        rho = jnp.where(predicted > 0, (f0 - f1) / predicted, -jnp.inf)
        accept = jnp.isfinite(f1) & (rho > 0)
        mu_ok = mu * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        new_mu = jnp.where(accept, mu_ok, mu * state.nu)
        new_nu = jnp.where(accept, 2.0, 2.0 * state.nu)
        step = jnp.where(accept, h, jnp.zeros_like(h))
        new_state = ScaleByLevenbergMarquardtState(
            count=optax.safe_increment(state.count),
            damping=new_mu.astype(dtype),
            nu=new_nu.astype(dtype),
            accepted=accept,
            gain_ratio=jnp.where(jnp.isfinite(rho), rho, -1.0).astype(dtype),
            value=jnp.where(accept, f1, f0).astype(dtype),
        )
        return optax.tree.cast_like(unravel(step), updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
