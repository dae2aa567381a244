r"""L-BFGS: a limited-memory quasi-Newton direction, as `optax.scale_by_lbfgs` defines it.

The direction is $P_k g_k$ with $P_k$ the L-BFGS approximation of the inverse Hessian built
from the last $m$ parameter and gradient differences (Nocedal and Wright, Algorithm 7.4).
Where every stored pair has positive curvature, the direction is optax's to rounding. Two
guards keep it a descent direction where optax's may not be (the mechanism behind the
divergence reported in optax issues #1201 and #1298):

- a pair with $s^\top y \le \varepsilon \lVert s\rVert\lVert y\rVert$ (no positive
  curvature: a non-convex region, or rounding near convergence) is not stored (optax stores
  any pair with $s^\top y \ne 0$, and a negative one makes $P_k$ indefinite);
- when the direction is not a descent direction ($g^\top P g \le 0$, or not finite), or
  the parameters did not move in two updates in a row (line searches that found no
  decrease), the memory is cleared and the step restarts from the scaled gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._extra_args import require_params


class ScaleByLBFGSState(NamedTuple):
    """State of `scale_by_lbfgs` (optax's fields, then gdjax's).

    Attributes:
        count: number of updates.
        params: the parameters of the previous update.
        updates: the incoming updates (gradients) of the previous update.
        diff_params_memory: the last ``memory_size`` differences $s_i$, stacked per leaf.
        diff_updates_memory: the matching gradient differences $y_i$.
        weights_memory: $\\rho_i = 1 / (s_i^\\top y_i)$ (0 for an empty or skipped slot).
        identity_scale: $\\gamma$ of the latest direction.
        skipped_pairs: pairs left out for lack of positive curvature, in total.
        resets: times the memory was cleared, in total.
        stalls: consecutive updates after which the parameters had not moved.
    """

    count: jax.Array
    params: Any
    updates: Any
    diff_params_memory: Any
    diff_updates_memory: Any
    weights_memory: jax.Array
    identity_scale: jax.Array
    skipped_pairs: jax.Array
    resets: jax.Array
    stalls: jax.Array


def _two_loop(grad, s_mem, y_mem, rho, gamma, newest, memory_size):
    """``P g`` by the two-loop recursion; slots with ``rho == 0`` are skipped implicitly."""
    order = (newest - jnp.arange(memory_size)) % memory_size  # newest first

    def pick(mem, i):
        return jax.tree.map(lambda m: m[i], mem)

    def backward(q, i):
        alpha = rho[i] * optax.tree.real(optax.tree.vdot(pick(s_mem, i), q))
        return optax.tree.cast_like(optax.tree.add_scale(q, -alpha, pick(y_mem, i)), q), alpha

    q, alphas = jax.lax.scan(backward, grad, order)
    r = optax.tree.scale(gamma, q)

    def forward(r, i_alpha):
        i, alpha = i_alpha
        beta = rho[i] * optax.tree.real(optax.tree.vdot(pick(y_mem, i), r))
        return optax.tree.cast_like(optax.tree.add_scale(r, alpha - beta, pick(s_mem, i)), r), None

    r, _ = jax.lax.scan(forward, r, (order[::-1], alphas[::-1]))
    return r


def scale_by_lbfgs(
    memory_size: int = 10,
    scale_init_precond: bool = True,
) -> optax.GradientTransformation:
    r"""Precondition the updates by the L-BFGS inverse-Hessian approximation.

    $$
    P_{k,j+1} = V_j^\top P_{k,j} V_j + \rho_j s_j s_j^\top, \quad
    V_j = I - \rho_j y_j s_j^\top, \quad \rho_j = \frac{1}{s_j^\top y_j}, \quad
    P_{k,k-m} = \gamma_k I
    $$

    with $s_j = w_{j+1} - w_j$, $y_j = g_{j+1} - g_j$, and
    $\gamma_k = s_{k-1}^\top y_{k-1} / y_{k-1}^\top y_{k-1}$ (``scale_init_precond``; else 1;
    at the first step $\min(1, 1/\lVert g_0\rVert)$, as optax does). Returns $P_k g_k$: chain
    it with a negative scaling or a line search (`gdjax.lbfgs` does). The memory is
    ``memory_size`` copies of the parameters, twice.

    Args:
        memory_size: $m \ge 1$, a Python int (it fixes the state's shapes).
        scale_init_precond: use $\gamma_k$ above (a Python bool).

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.scale_by_lbfgs(memory_size=5)
        >>> w = jnp.array([3.0, 4.0])
        >>> p, state = jax.jit(opt.update)(w, opt.init(w), w)  # first step: g / max(1, |g|)
        >>> p
        Array([0.6, 0.8], dtype=float32)
    """
    if not isinstance(memory_size, int) or isinstance(memory_size, bool) or memory_size < 1:
        raise ValueError(f"memory_size must be a Python int >= 1; got {memory_size!r}")
    _checks.static_bool("scale_init_precond", scale_init_precond)

    def init_fn(params):
        stacked = jax.tree.map(lambda x: jnp.zeros((memory_size, *x.shape), x.dtype), params)
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        zero_int = jnp.zeros([], jnp.int32)
        return ScaleByLBFGSState(
            count=zero_int,
            params=optax.tree.zeros_like(params),
            updates=optax.tree.zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros(memory_size, dtype),
            identity_scale=jnp.ones([], dtype),
            skipped_pairs=zero_int,
            resets=zero_int,
            stalls=zero_int,
        )

    def update_fn(updates, state, params=None):
        require_params("scale_by_lbfgs", params)
        dtype = state.weights_memory.dtype
        first = state.count == 0
        s = optax.tree.sub(params, state.params)
        y = optax.tree.sub(updates, state.updates)
        sy = optax.tree.real(optax.tree.vdot(s, y)).astype(dtype)
        ss = optax.tree.norm(s, squared=True).astype(dtype)
        yy = optax.tree.norm(y, squared=True).astype(dtype)
        eps = jnp.finfo(dtype).eps
        positive = ~first & (sy > eps * jnp.sqrt(ss * yy)) & (sy > 0)
        stalled = ~first & (ss == 0)
        stalls = jnp.where(stalled, state.stalls + 1, 0)
        # One stall keeps the memory (gdjax's line search retries with a much smaller step);
        # a second one in a row clears it.
        restart = stalls >= 2
        skipped = ~first & ~stalled & ~positive

        slot = (state.count - 1) % memory_size
        weight = jnp.where(positive, 1.0 / jnp.where(positive, sy, 1.0), 0.0).astype(dtype)
        keep = lambda t: jax.tree.map(lambda x: jnp.where(positive, x, jnp.zeros_like(x)), t)  # noqa: E731

        def store(mem, new):
            return jax.tree.map(lambda m, x: m.at[slot].set(x), mem, new)

        s_mem = store(state.diff_params_memory, keep(s))
        y_mem = store(state.diff_updates_memory, keep(y))
        rho = state.weights_memory.at[slot].set(weight)

        grad_norm = optax.tree.norm(jax.lax.stop_gradient(updates)).astype(dtype)
        restart_scale = jnp.minimum(1.0, 1.0 / grad_norm).astype(dtype)
        if scale_init_precond:
            gamma = jnp.where(positive, sy / jnp.where(yy > 0, yy, 1.0), state.identity_scale)
            gamma = jnp.where(first | restart, restart_scale, gamma).astype(dtype)
        else:
            gamma = jnp.ones([], dtype)

        def clear_if(flag, t):
            return jax.tree.map(lambda x: jnp.where(flag, jnp.zeros_like(x), x), t)

        s_mem, y_mem, rho = clear_if(restart, (s_mem, y_mem, rho))
        direction = _two_loop(updates, s_mem, y_mem, rho, gamma, slot, memory_size)
        curvature = optax.tree.real(optax.tree.vdot(updates, direction))
        descends = (curvature > 0) & jnp.isfinite(curvature)
        nonzero = grad_norm > 0
        reset = nonzero & ~descends  # not a descent direction: start again from the gradient
        direction = optax.tree.where(reset, optax.tree.scale(restart_scale, updates), direction)
        s_mem, y_mem, rho = clear_if(reset, (s_mem, y_mem, rho))
        gamma = jnp.where(reset, restart_scale, gamma)
        direction = optax.tree.cast_like(direction, updates)
        return direction, ScaleByLBFGSState(
            count=optax.safe_increment(state.count),
            params=params,
            updates=updates,
            diff_params_memory=s_mem,
            diff_updates_memory=y_mem,
            weights_memory=rho,
            identity_scale=gamma,
            skipped_pairs=state.skipped_pairs + skipped.astype(jnp.int32),
            resets=state.resets + (restart | reset).astype(jnp.int32),
            stalls=jnp.where(restart, 0, stalls).astype(jnp.int32),
        )

    return optax.GradientTransformation(init_fn, update_fn)
