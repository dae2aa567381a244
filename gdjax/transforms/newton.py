r"""Newton's method: the exact Hessian (small models) and Hessian-free Newton-CG (any size).

Both take the objective through the extra argument ``value_fn`` (``params -> scalar``), which
`gdjax.minimize` and `gdjax.fit` pass; the Hessian is of that function at ``params``.
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
from gdjax.curvature import conjugate_gradient, format_bytes, hessian_bytes, hvp, num_params
from gdjax.transforms._extra_args import require_params, require_value_fn

#: When the damped Hessian is not positive definite, its eigenvalues' magnitudes are floored at
#: this fraction of the largest one before inverting (saddle-free Newton).
_FLOOR = 1e-6


class ScaleByNewtonState(NamedTuple):
    """State of `scale_by_newton`.

    Attributes:
        count: number of updates.
        damping: the $\\lambda$ of the latest update.
        positive_definite: whether $H + \\lambda I$ was positive definite (else the
            saddle-free fallback was used).
        min_eigenvalue: the smallest eigenvalue of $H + \\lambda I$ when it was not positive
            definite (computed only then); 0 otherwise.
        fallbacks: updates that needed the fallback, in total.
    """

    count: jax.Array
    damping: jax.Array
    positive_definite: jax.Array
    min_eigenvalue: jax.Array
    fallbacks: jax.Array


def scale_by_newton(
    damping: float | jax.Array | Callable = 0.0, *, max_params: int = 5000
) -> optax.GradientTransformationExtraArgs:
    r"""Precondition the gradient by the inverse (damped) Hessian: $d = (H + \lambda I)^{-1} g$.

    $H = \nabla^2 f(\theta)$ is formed for the flattened parameters and
    $H + \lambda I = L L^\top$ factored by Cholesky. When that fails ($H + \lambda I$ is not
    positive definite: a saddle, a maximum, or a singular Hessian) the step uses the
    eigendecomposition $H + \lambda I = Q \Lambda Q^\top$ instead,

    $$
    d = Q\,\max(|\Lambda|, \epsilon \max_i|\Lambda_i|)^{-1} Q^\top g, \qquad \epsilon = 10^{-6}
    $$

    (saddle-free Newton, Dauphin et al. 2014): a descent direction that moves away from a saddle
    along negative curvature. The state reports it (``positive_definite``, ``min_eigenvalue``,
    ``fallbacks``); the step is never NaN. Returns $d$: chain with a negative scaling or a
    line search (`gdjax.newton` does).

    Memory is $n^2$ numbers and time $O(n^3)$ for $n$ parameters, so more than ``max_params``
    parameters is an error at ``init`` (use `gdjax.hessian_free`).

    Args:
        damping: $\lambda \ge 0$ (Levenberg-Marquardt regularisation): a number, array or
            schedule.
        max_params: the largest parameter count accepted (a Python int).

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda w: 2.0 * w[0] ** 2 + 0.5 * w[1] ** 2
        >>> w = jnp.array([1.0, 1.0])
        >>> opt = gdjax.scale_by_newton()
        >>> d, _ = jax.jit(lambda w: opt.update(jax.grad(f)(w), opt.init(w), w, value_fn=f))(w)
        >>> w - d  # one Newton step lands on the minimum of a quadratic
        Array([0., 0.], dtype=float32)
    """
    _checks.non_negative("damping", damping, schedule_ok=True)
    if not isinstance(max_params, int) or isinstance(max_params, bool) or max_params < 1:
        raise ValueError(f"max_params must be a Python int >= 1; got {max_params!r}")

    def init_fn(params):
        n = num_params(params)
        if n > max_params:
            itemsize = jax.tree.leaves(params)[0].dtype.itemsize
            raise ValueError(
                f"scale_by_newton: the parameters have {n:,} entries, more than max_params="
                f"{max_params:,}; the exact Hessian would be {n:,} x {n:,} "
                f"({format_bytes(hessian_bytes(n, itemsize))}) and its factorization O(n^3). "
                "Use gdjax.hessian_free (Hessian-vector products, no Hessian formed) or "
                "gdjax.lbfgs, or raise max_params."
            )
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return ScaleByNewtonState(
            count=jnp.zeros([], jnp.int32),
            damping=jnp.zeros([], jnp.float32),
            positive_definite=jnp.ones([], bool),
            min_eigenvalue=jnp.zeros([], dtype),
            fallbacks=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        require_params("scale_by_newton", params)
        value_fn = require_value_fn("scale_by_newton", value_fn)
        flat, unravel = ravel_pytree(params)
        g, _ = ravel_pytree(updates)
        lam = jnp.asarray(resolve(damping, state.count), flat.dtype)
        hess = jax.hessian(lambda x: value_fn(unravel(x)))(flat)
        hess = 0.5 * (hess + hess.T) + lam * jnp.eye(flat.shape[0], dtype=flat.dtype)
        chol = jnp.linalg.cholesky(hess)
        pd = jnp.all(jnp.isfinite(chol))

        def cholesky_step(_):
            d = jax.scipy.linalg.cho_solve((chol, True), g)
            return d, jnp.zeros([], flat.dtype)

        def saddle_free_step(_):
            eig, vec = jnp.linalg.eigh(hess)
            size = jnp.maximum(jnp.abs(eig), _FLOOR * jnp.max(jnp.abs(eig)))
            size = jnp.where(size > 0, size, 1.0)
            return vec @ ((vec.T @ g) / size), eig[0]

        d, min_eig = jax.lax.cond(pd, cholesky_step, saddle_free_step, None)
        new_state = ScaleByNewtonState(
            count=optax.safe_increment(state.count),
            damping=lam.astype(jnp.float32),
            positive_definite=pd,
            min_eigenvalue=min_eig.astype(state.min_eigenvalue.dtype),
            fallbacks=state.fallbacks + (~pd).astype(jnp.int32),
        )
        return optax.tree.cast_like(unravel(d), updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByHessianFreeState(NamedTuple):
    """State of `scale_by_hessian_free`.

    Attributes:
        count: number of updates.
        damping: the Martens damping $\\lambda$ for the next update.
        direction: the latest CG solution (the next CG starts from a decayed copy of it).
        cg_steps: CG iterations of the latest update.
        reduction_ratio: $\\rho$ of the latest update (actual over predicted decrease).
        step_size: the backtracking factor applied to the CG direction (0: no decrease
            found, the update was zero).
    """

    count: jax.Array
    damping: jax.Array
    direction: Any
    cg_steps: jax.Array
    reduction_ratio: jax.Array
    step_size: jax.Array


def scale_by_hessian_free(
    damping: float | jax.Array = 1.0,
    *,
    cg_max_steps: int | jax.Array = 50,
    cg_tol: float | jax.Array = 1e-4,
    warm_start: float | jax.Array = 0.95,
    adapt_damping: bool = True,
    max_backtracking_steps: int = 12,
) -> optax.GradientTransformationExtraArgs:
    r"""Hessian-free Newton (Martens, 2010): conjugate gradient on Hessian-vector products.

    Each update solves the damped Newton system approximately with
    `gdjax.curvature.conjugate_gradient`, using $Hv$ products computed forward-over-reverse
    (no Hessian is formed),

    $$
    (H + \lambda I)\, d = -g, \qquad
    q(d) = g^\top d + \tfrac12 d^\top (H + \lambda I) d,
    $$

    starting from ``warm_start`` times the previous solution and stopping when the relative
    residual is below ``cg_tol``, after ``cg_max_steps`` products, or on negative curvature.
    The step is accepted if $f(\theta + d) < f(\theta)$, otherwise halved until the Armijo
    condition $f(\theta + t d) \le f(\theta) + 10^{-4} t\, g^\top d$ holds (zero after
    ``max_backtracking_steps`` halvings). The damping follows Martens' Levenberg-Marquardt rule
    on the reduction ratio $\rho = (f(\theta + d) - f(\theta)) / q(d)$:

    $$
    \lambda \leftarrow \tfrac32\lambda \ \text{if}\ \rho < \tfrac14, \qquad
    \lambda \leftarrow \tfrac23\lambda \ \text{if}\ \rho > \tfrac34.
    $$

    Returns the update itself (already signed and scaled). Needs ``value_fn`` (and uses
    ``value``, $f(\theta)$, if given).

    Args:
        damping: initial $\lambda > 0$ (a number or array).
        cg_max_steps: CG iterations per update (an int or integer array).
        cg_tol: CG's relative residual tolerance.
        warm_start: decay of the previous solution used as CG's start, in $[0, 1]$.
        adapt_damping: apply the rule above (a Python bool); else $\lambda$ stays fixed.
        max_backtracking_steps: halvings tried when the full step does not decrease $f$.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda w: jnp.sum(jnp.array([1.0, 10.0, 100.0]) * (w - 1.0) ** 2)
        >>> opt = gdjax.scale_by_hessian_free(damping=1e-6)
        >>> w = jnp.zeros(3)
        >>> u, _ = jax.jit(lambda w: opt.update(jax.grad(f)(w), opt.init(w), w, value_fn=f))(w)
        >>> [round(float(v), 4) for v in gdjax.apply_updates(w, u)]
        [1.0, 1.0, 1.0]
    """
    _checks.positive("damping", damping)
    _checks.count("cg_max_steps", cg_max_steps, minimum=1)
    _checks.non_negative("cg_tol", cg_tol)
    _checks.check_range("warm_start", warm_start, low=0.0, high=1.0)
    _checks.static_bool("adapt_damping", adapt_damping)
    _checks.count("max_backtracking_steps", max_backtracking_steps, minimum=0)

    def init_fn(params):
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return ScaleByHessianFreeState(
            count=jnp.zeros([], jnp.int32),
            damping=jnp.asarray(damping, dtype),
            direction=optax.tree.zeros_like(params),
            cg_steps=jnp.zeros([], jnp.int32),
            reduction_ratio=jnp.zeros([], dtype),
            step_size=jnp.zeros([], dtype),
        )

    def update_fn(updates, state, params=None, *, value=None, value_fn=None, **extra_args):
        del extra_args
        require_params("scale_by_hessian_free", params)
        value_fn = require_value_fn("scale_by_hessian_free", value_fn)
        dtype = state.damping.dtype
        grad = updates
        f0 = value_fn(params) if value is None else value
        f0 = jnp.asarray(f0, dtype)
        lam = state.damping

        def matvec(v):
            return optax.tree.add_scale(hvp(value_fn, params, v), lam, v)

        start = optax.tree.scale(warm_start, state.direction)
        # A warm start pointing uphill is worse than none.
        start = optax.tree.where(
            optax.tree.vdot(start, grad) < 0, start, optax.tree.zeros_like(start)
        )
        cg = conjugate_gradient(
            matvec, optax.tree.scale(-1.0, grad), x0=start, max_steps=cg_max_steps, tol=cg_tol
        )
        d = cg.x
        slope = optax.tree.real(optax.tree.vdot(grad, d)).astype(dtype)
        # CG stopped at once on negative curvature (or returned an uphill step): use -g.
        unusable = ~(slope < 0) | ~jnp.isfinite(slope)
        d = optax.tree.where(unusable, optax.tree.scale(-1.0, grad), d)
        slope = jnp.where(unusable, -optax.tree.norm(grad, squared=True).astype(dtype), slope)
        # q(d) = g.d + d.(H + lam I) d / 2 = (g.d - d.r) / 2 at CG's residual r = -g - A d.
        predicted = 0.5 * (slope - optax.tree.real(optax.tree.vdot(d, cg.residual)))
        predicted = jnp.where(unusable, slope, predicted).astype(dtype)

        def value_at(t):
            return jnp.asarray(value_fn(optax.tree.add_scale(params, t, d)), dtype)

        f1 = value_at(jnp.ones([], dtype))
        rho = jnp.where(predicted < 0, (f1 - f0) / predicted, -jnp.inf)
        rho = jnp.where(jnp.isfinite(rho), rho, -jnp.inf)

        def armijo(t, ft):
            return jnp.isfinite(ft) & (ft <= f0 + 1e-4 * t * slope)

        def backtrack(carry):
            t, _, k = carry
            t = 0.5 * t
            return t, value_at(t), k + 1

        def keep_going(carry):
            t, ft, k = carry
            return ~armijo(t, ft) & (k < max_backtracking_steps)

        one = jnp.ones([], dtype)
        t, ft, _ = jax.lax.cond(
            jnp.isfinite(f1) & (f1 < f0),
            lambda: (one, f1, jnp.zeros([], jnp.int32)),
            lambda: jax.lax.while_loop(keep_going, backtrack, (one, f1, jnp.zeros([], jnp.int32))),
        )
        t = jnp.where((jnp.isfinite(ft) & (ft < f0)), t, 0.0).astype(dtype)
        if adapt_damping:
            lam = jnp.where(rho < 0.25, 1.5 * lam, jnp.where(rho > 0.75, lam / 1.5, lam))
        step = jax.tree.map(lambda x: (t * x).astype(x.dtype), d)
        new_state = ScaleByHessianFreeState(
            count=optax.safe_increment(state.count),
            damping=lam.astype(dtype),
            direction=optax.tree.cast_like(d, state.direction),
            cg_steps=cg.steps,
            reduction_ratio=rho.astype(dtype),
            step_size=t,
        )
        return optax.tree.cast_like(step, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
