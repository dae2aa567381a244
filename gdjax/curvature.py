r"""Curvature of an objective: Hessian-vector products, conjugate gradient, Hessian eigenvalues.

Everything here works from Hessian-vector products computed forward-over-reverse,

$$
H(\theta)\,v = \left.\frac{d}{d\epsilon}\nabla f(\theta + \epsilon v)\right|_{\epsilon=0},
$$

one `jax.jvp` of `jax.grad`, about the cost of two gradients; no Hessian is formed except by
`hessian`, which is meant for small parameter counts. The functions are pure and jittable and
take ``fun(params) -> scalar`` and parameters of any pytree structure.

- `hvp`, `hessian`, `num_params`: the building blocks;
- `conjugate_gradient`: solves $A x = b$ for a symmetric operator given as a function (the
  inner solver of `gdjax.hessian_free`);
- `lanczos`, `hessian_eigenvalues`, `top_hessian_eigenvalue`, `power_iteration`: extreme
  eigenvalues of the Hessian (sharpness, and whether a critical point is a minimum);
- `saddle_test`: at a point where the gradient (nearly) vanishes, is it a saddle, and which
  direction descends.

Examples:
    >>> import jax, jax.numpy as jnp, gdjax
    >>> f = lambda p: p[0] ** 2 - p[1] ** 2  # a saddle at the origin
    >>> classify = jax.jit(lambda p: gdjax.curvature.saddle_test(f, p, key=jax.random.key(0)))
    >>> test = classify(jnp.zeros(2))
    >>> bool(test.is_saddle), round(float(test.min_eigenvalue), 3)
    (True, -2.0)
    >>> [round(abs(float(v)), 3) for v in test.direction]  # escape along ±y
    [0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

Fun = Callable[[Any], jax.Array]


def num_params(params: Any) -> int:
    """The number of scalar parameters (the length of the flattened pytree)."""
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def hvp(fun: Fun, params: Any, vector: Any) -> Any:
    r"""The Hessian-vector product $\nabla^2 f(\theta)\,v$, forward-over-reverse.

    Args:
        fun: the objective, ``params -> scalar``.
        params: $\theta$, any pytree.
        vector: $v$, a pytree with the structure of ``params``.

    Returns:
        $H v$ with the structure of ``params``.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> f = lambda x: x[0] ** 2 * x[1]  # H = [[2 x1, 2 x0], [2 x0, 0]]
        >>> gdjax.curvature.hvp(f, jnp.array([1.0, 3.0]), jnp.array([1.0, 0.0]))
        Array([6., 2.], dtype=float32)
    """
    return jax.jvp(jax.grad(fun), (params,), (vector,))[1]


def hessian(fun: Fun, params: Any) -> jax.Array:
    r"""The dense Hessian of ``fun`` with respect to the flattened parameters, shape ``(n, n)``.

    The parameters are flattened in `jax.flatten_util.ravel_pytree` order. Memory is
    $n^2$ numbers: meant for small models (`gdjax.newton` refuses more than ``max_params``).
    """
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda x: fun(unravel(x)))(flat)


# --- conjugate gradient ------------------------------------------------------------------------
class CGResult(NamedTuple):
    r"""What `conjugate_gradient` returns.

    Attributes:
        x: the approximate solution (structure of ``b``).
        residual: $r = b - A x$ at the end.
        steps: number of iterations run.
        negative_curvature: whether it stopped on a direction $p$ with $p^\top A p \le 0$ (the
            operator is not positive definite there; ``x`` is the iterate before that direction).
    """

    x: Any
    residual: Any
    steps: jax.Array
    negative_curvature: jax.Array


def conjugate_gradient(
    matvec: Callable[[Any], Any],
    b: Any,
    *,
    x0: Any = None,
    max_steps: int | jax.Array = 50,
    tol: float | jax.Array = 1e-5,
) -> CGResult:
    r"""Solve $A x = b$ for symmetric $A$ given as ``matvec``, by conjugate gradients.

    $$
    \alpha_k = \frac{r_k^\top r_k}{p_k^\top A p_k}, \quad x_{k+1} = x_k + \alpha_k p_k, \quad
    r_{k+1} = r_k - \alpha_k A p_k, \quad
    p_{k+1} = r_{k+1} + \frac{r_{k+1}^\top r_{k+1}}{r_k^\top r_k} p_k
    $$

    from $r_0 = b - A x_0$, $p_0 = r_0$, until $\lVert r_k \rVert \le
    \mathrm{tol}\cdot\lVert b \rVert$ or ``max_steps`` iterations. If a direction has
    $p_k^\top A p_k \le 0$ (the operator is not positive definite along it) it stops and
    returns the current iterate (truncated Newton, as in Steihaug's method).

    Args:
        matvec: $v \mapsto A v$ on pytrees of the structure of ``b``.
        b: the right-hand side.
        x0: the starting point (zeros if ``None``).
        max_steps: iteration budget (an int or an integer array, also traced).
        tol: relative residual tolerance.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
        >>> res = gdjax.curvature.conjugate_gradient(lambda v: a @ v, jnp.array([1.0, 2.0]))
        >>> [round(float(v), 4) for v in res.x], int(res.steps)
        ([0.0909, 0.6364], 2)
    """
    x = optax.tree.zeros_like(b) if x0 is None else x0
    r = optax.tree.sub(b, matvec(x)) if x0 is not None else b
    rr = optax.tree.vdot(r, r)
    threshold = (tol * optax.tree.norm(b)) ** 2

    def cond(carry):
        _, _, _, rr, k, stop = carry
        return (k < max_steps) & (rr > threshold) & ~stop

    def body(carry):
        x, r, p, rr, k, _ = carry
        ap = matvec(p)
        curvature = optax.tree.vdot(p, ap)
        negative = ~(curvature > 0)
        alpha = jnp.where(negative, 0.0, rr / jnp.where(negative, 1.0, curvature))
        x = optax.tree.add_scale(x, alpha, p)
        r = optax.tree.add_scale(r, -alpha, ap)
        rr_new = optax.tree.vdot(r, r)
        p = optax.tree.add_scale(r, rr_new / jnp.where(rr > 0, rr, 1.0), p)
        return x, r, p, rr_new, k + jnp.where(negative, 0, 1), negative

    init = (x, r, r, rr, jnp.zeros([], jnp.int32), jnp.zeros([], bool))
    x, r, _, _, k, negative = jax.lax.while_loop(cond, body, init)
    return CGResult(x, r, k, negative)


# --- Lanczos and power iteration --------------------------------------------------------------
class LanczosResult(NamedTuple):
    """The Lanczos tridiagonalization $V^\\top A V = T$ of a symmetric operator.

    Attributes:
        alphas: the diagonal of $T$, shape ``(k,)``.
        betas: its off-diagonal, shape ``(k - 1,)`` (0 where the Krylov space was exhausted and
            the iteration restarted on a fresh direction).
        basis: the orthonormal basis $V$ as rows, shape ``(k, n)``.
    """

    alphas: jax.Array
    betas: jax.Array
    basis: jax.Array


def lanczos(
    matvec: Callable[[jax.Array], jax.Array], start: jax.Array, num_iters: int, *, key: jax.Array
) -> LanczosResult:
    r"""Lanczos iteration with full reorthogonalization on flat vectors.

    $$
    w = A v_j - \alpha_j v_j - \beta_{j-1} v_{j-1}, \quad \alpha_j = v_j^\top A v_j, \quad
    \beta_j = \lVert w \rVert, \quad v_{j+1} = w / \beta_j
    $$

    with $w$ orthogonalized against all previous $v$ (twice, for float32). The eigenvalues of
    the tridiagonal $T$ (Ritz values) approximate the extreme eigenvalues of $A$ first. When
    $\beta_j$ vanishes (an invariant subspace is found) the next vector is a random one
    orthogonal to the basis and $\beta_j = 0$, so $T$ stays exact.

    Args:
        matvec: $v \mapsto A v$ on vectors of shape ``(n,)``.
        start: the first vector (normalized here), shape ``(n,)``.
        num_iters: $k \le n$, a Python int (it fixes shapes).
        key: PRNG key for restart vectors.
    """
    n = start.shape[0]
    if not isinstance(num_iters, int) or not 1 <= num_iters <= n:
        raise ValueError(f"num_iters must be a Python int in [1, n] = [1, {n}]; got {num_iters!r}")
    dtype = start.dtype
    fresh = jax.random.normal(key, (num_iters, n), dtype)
    basis = jnp.zeros((num_iters, n), dtype).at[0].set(start / jnp.linalg.norm(start))

    def orthogonalize(w, basis):
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        return w

    def body(j, carry):
        basis, alphas, betas = carry
        v = basis[j]
        w = matvec(v)
        alpha = jnp.vdot(v, w)
        w = orthogonalize(w, basis)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(alphas).max(), jnp.abs(alpha))
        exhausted = beta <= 100 * jnp.finfo(dtype).eps * jnp.maximum(scale, 1e-30)
        restart = orthogonalize(fresh[j], basis)
        w = jnp.where(exhausted, restart / jnp.linalg.norm(restart), w / beta)
        beta = jnp.where(exhausted, 0.0, beta)
        basis = jnp.where(j + 1 < num_iters, basis.at[(j + 1) % num_iters].set(w), basis)
        return basis, alphas.at[j].set(alpha), betas.at[j].set(beta)

    alphas = jnp.zeros(num_iters, dtype)
    betas = jnp.zeros(num_iters, dtype)
    basis, alphas, betas = jax.lax.fori_loop(0, num_iters, body, (basis, alphas, betas))
    return LanczosResult(alphas, betas[:-1], basis)


def _tridiagonal(alphas: jax.Array, betas: jax.Array) -> jax.Array:
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


class HessianSpectrum(NamedTuple):
    """Extreme Hessian eigenvalues and their directions, from `hessian_eigenvalues`.

    Attributes:
        eigenvalues: all Ritz values, ascending, shape ``(num_iters,)``; the extreme ones
            converge first, the inner ones are rough.
        max_eigenvalue: the largest (the sharpness).
        min_eigenvalue: the smallest (negative at a saddle or a maximum).
        max_vector: its unit direction, with the structure of ``params``.
        min_vector: the unit direction of the smallest one.
    """

    eigenvalues: jax.Array
    max_eigenvalue: jax.Array
    min_eigenvalue: jax.Array
    max_vector: Any
    min_vector: Any


def _flat_hvp(fun: Fun, params: Any) -> tuple[Callable[[jax.Array], jax.Array], jax.Array, Any]:
    flat, unravel = ravel_pytree(params)

    def matvec(v: jax.Array) -> jax.Array:
        return ravel_pytree(hvp(fun, params, unravel(v.astype(flat.dtype))))[0]

    return matvec, flat, unravel


def hessian_eigenvalues(
    fun: Fun, params: Any, *, key: jax.Array, num_iters: int = 20
) -> HessianSpectrum:
    r"""The largest and smallest Hessian eigenvalues at ``params``, by Lanczos on $Hv$ products.

    ``num_iters`` Hessian-vector products build a Krylov basis $V$; the eigenvalues of
    $T = V^\top H V$ approximate $\lambda_{\max}$ and $\lambda_{\min}$ (exactly when
    ``num_iters`` equals the parameter count), and $V^\top y$ for $T y = \lambda y$ their
    directions. ``num_iters`` is capped at the parameter count.

    Args:
        fun: ``params -> scalar``.
        params: where to measure.
        key: PRNG key for the start vector.
        num_iters: Lanczos steps (a Python int): memory ``num_iters x n``.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda x: 0.5 * (3.0 * x[0] ** 2 - x[1] ** 2 + 0.5 * x[2] ** 2)
        >>> spectrum = jax.jit(lambda x: gdjax.curvature.hessian_eigenvalues(f, x, key=jax.random.key(0)))
        >>> s = spectrum(jnp.zeros(3))
        >>> round(float(s.max_eigenvalue), 4), round(float(s.min_eigenvalue), 4)
        (3.0, -1.0)
    """
    matvec, flat, unravel = _flat_hvp(fun, params)
    k = min(int(num_iters), flat.shape[0])
    start_key, restart_key = jax.random.split(key)
    start = jax.random.normal(start_key, flat.shape, flat.dtype)
    res = lanczos(matvec, start, k, key=restart_key)
    values, vectors = jnp.linalg.eigh(_tridiagonal(res.alphas, res.betas))
    ritz = res.basis.T @ vectors  # columns: directions in parameter space
    return HessianSpectrum(
        eigenvalues=values,
        max_eigenvalue=values[-1],
        min_eigenvalue=values[0],
        max_vector=unravel(ritz[:, -1]),
        min_vector=unravel(ritz[:, 0]),
    )


def power_iteration(
    matvec: Callable[[jax.Array], jax.Array], start: jax.Array, num_iters: int | jax.Array
) -> tuple[jax.Array, jax.Array]:
    r"""The eigenvalue of largest magnitude of a symmetric operator, by power iteration.

    $v_{k+1} = A v_k / \lVert A v_k \rVert$; returns the Rayleigh quotient $v^\top A v$ and
    $v$. Converges at the rate $|\lambda_2 / \lambda_1|$ per step (Lanczos is faster for the
    same number of products, and also gives the smallest eigenvalue).
    """

    def body(_, v):
        w = matvec(v)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny)

    v = jax.lax.fori_loop(0, num_iters, body, start / jnp.linalg.norm(start))
    return jnp.vdot(v, matvec(v)), v


def top_hessian_eigenvalue(
    fun: Fun,
    params: Any,
    *,
    key: jax.Array,
    num_iters: int = 20,
    method: str = "lanczos",
) -> jax.Array:
    r"""The sharpness $\lambda_{\max}(\nabla^2 f)$ at ``params``, a pure jittable scalar.

    Gradient descent with learning rate $\alpha$ is stable on a quadratic only while
    $\alpha < 2 / \lambda_{\max}$; tracking $\lambda_{\max}$ along training shows how close
    a run is to that edge.

    Args:
        fun: ``params -> scalar``.
        params: where to measure.
        key: PRNG key for the start vector.
        num_iters: Hessian-vector products to spend (a Python int).
        method: ``"lanczos"`` (the largest algebraic eigenvalue) or ``"power"`` (power
            iteration: the eigenvalue of largest magnitude, which is the same near a
            minimum).

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda x: 0.5 * jnp.sum(jnp.array([1.0, 4.0, 10.0]) * x**2)
        >>> sharpness = jax.jit(lambda x: gdjax.curvature.top_hessian_eigenvalue(f, x, key=jax.random.key(0)))
        >>> round(float(sharpness(jnp.ones(3))), 4)
        10.0
    """
    if method == "lanczos":
        return hessian_eigenvalues(fun, params, key=key, num_iters=num_iters).max_eigenvalue
    if method == "power":
        matvec, flat, _ = _flat_hvp(fun, params)
        start = jax.random.normal(key, flat.shape, flat.dtype)
        return power_iteration(matvec, start, num_iters)[0]
    raise ValueError(f"method must be 'lanczos' or 'power'; got {method!r}")


# --- saddle points -----------------------------------------------------------------------------
class SaddleTest(NamedTuple):
    """What `saddle_test` found at a point.

    Attributes:
        grad_norm: $\\lVert \\nabla f \\rVert$.
        min_eigenvalue: the smallest Hessian eigenvalue (Lanczos estimate).
        max_eigenvalue: the largest.
        direction: the unit eigenvector of ``min_eigenvalue`` (structure of ``params``),
            oriented so that moving along it does not increase $f$ to first order.
        is_critical: ``grad_norm <= grad_tol``.
        is_saddle: critical and ``min_eigenvalue < -curvature_tol``: a step along
            ``direction`` decreases $f$ (second-order) although the gradient vanishes.
        is_minimum: critical and ``min_eigenvalue >= -curvature_tol``.
    """

    grad_norm: jax.Array
    min_eigenvalue: jax.Array
    max_eigenvalue: jax.Array
    direction: Any
    is_critical: jax.Array
    is_saddle: jax.Array
    is_minimum: jax.Array


def saddle_test(
    fun: Fun,
    params: Any,
    *,
    key: jax.Array,
    grad_tol: float | jax.Array = 1e-3,
    curvature_tol: float | jax.Array = 1e-6,
    num_iters: int = 20,
) -> SaddleTest:
    r"""Classify ``params`` by the gradient norm and the smallest Hessian eigenvalue.

    A point with $\lVert\nabla f\rVert \le \epsilon_g$ is a saddle when
    $\lambda_{\min}(\nabla^2 f) < -\epsilon_H$: then $f(\theta + t u) = f(\theta) +
    \tfrac12 t^2 \lambda_{\min} + O(t^3)$ along the eigenvector $u$, a direction of descent
    that gradient descent cannot see. Perturbed gradient descent (`gdjax.perturbed_gd`) or a
    step along ``direction`` escapes.

    Args:
        fun: ``params -> scalar``.
        params: the point.
        key: PRNG key for Lanczos.
        grad_tol: $\epsilon_g$.
        curvature_tol: $\epsilon_H \ge 0$.
        num_iters: Lanczos steps (a Python int).
    """
    grad = jax.grad(fun)(params)
    spectrum = hessian_eigenvalues(fun, params, key=key, num_iters=num_iters)
    u = spectrum.min_vector
    sign = jnp.where(optax.tree.vdot(grad, u) > 0, -1.0, 1.0)
    direction = jax.tree.map(lambda x: (sign * x).astype(x.dtype), u)
    grad_norm = optax.tree.norm(grad)
    critical = grad_norm <= grad_tol
    negative = spectrum.min_eigenvalue < -curvature_tol
    return SaddleTest(
        grad_norm=grad_norm,
        min_eigenvalue=spectrum.min_eigenvalue,
        max_eigenvalue=spectrum.max_eigenvalue,
        direction=direction,
        is_critical=critical,
        is_saddle=critical & negative,
        is_minimum=critical & ~negative,
    )


def hessian_bytes(n: int, itemsize: int = 4) -> int:
    """Memory of a dense ``n x n`` Hessian in bytes (``itemsize`` 4 for float32)."""
    return n * n * itemsize


def format_bytes(size: float) -> str:
    """``1536 -> '1.5 kB'``: a byte count in decimal units, for error messages."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.3g} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1000
    return f"{size} PB"  # pragma: no cover


__all__ = [
    "CGResult",
    "HessianSpectrum",
    "LanczosResult",
    "SaddleTest",
    "conjugate_gradient",
    "format_bytes",
    "hessian",
    "hessian_bytes",
    "hessian_eigenvalues",
    "hvp",
    "lanczos",
    "num_params",
    "power_iteration",
    "saddle_test",
    "top_hessian_eigenvalue",
]
