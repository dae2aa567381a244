r"""`minimize`: full-batch optimization of a deterministic objective in one compiled loop.

In the spirit of `scipy.optimize.minimize`, for problems that fit in memory (logistic
regression, least squares, small networks on small data): any gdjax or optax optimizer, or
one of the second-order methods, runs inside a single `jax.lax.while_loop` until the
gradient norm or the relative change of the objective is small, or the step budget is spent.
Because the whole run is one traced function, `jax.vmap` runs many starting points or
hyperparameters in one program.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdjax import _checks
from gdjax.transforms import MetropolisState, ScaleByZoomLinesearchState

#: ``stop_reason`` codes: index into this tuple.
STOP_REASONS: tuple[str, ...] = (
    "running",
    "gradient norm below tol",
    "relative change below rtol",
    "max_steps reached",
    "non-finite value or gradient",
)
_RUNNING, _GRAD, _CHANGE, _BUDGET, _NONFINITE = range(5)

#: States of line searches whose ``value`` and ``grad`` are those at the new parameters.
_LINESEARCH_STATES = (ScaleByZoomLinesearchState, optax.ScaleByZoomLinesearchState)


class MinimizeResult(NamedTuple):
    """What `minimize` returns (a pytree: under `jax.vmap` every field gains a batch axis).

    Attributes:
        params: the solution (for a gradient-free method, the best point seen).
        value: the objective there.
        grad_norm: the gradient's norm there (NaN for a gradient-free method).
        steps: updates applied.
        converged: stopped on ``tol`` or ``rtol`` (not on the budget or a non-finite value).
        stop_reason: an int code; `STOP_REASONS` names it (see `reason`).
        history: ``{"value": ..., "grad_norm": ...}``, each of length ``max_steps + 1``:
            entry ``k`` is after ``k`` steps, NaN after the stop (empty with
            ``history=False``).
        state: the optimizer state at the end.
    """

    params: Any
    value: jax.Array
    grad_norm: jax.Array
    steps: jax.Array
    converged: jax.Array
    stop_reason: jax.Array
    history: dict[str, jax.Array]
    state: Any

    @property
    def reason(self) -> str | list:
        """``stop_reason`` in words (a nested list of them for a batched result)."""
        codes = np.asarray(self.stop_reason)
        if codes.ndim == 0:
            return STOP_REASONS[int(codes)]
        return np.vectorize(lambda c: STOP_REASONS[int(c)], otypes=[object])(codes).tolist()


def _last_state(state: Any) -> Any:
    """The state of the last transformation of a (possibly nested) chain."""
    while type(state) is tuple and state:
        state = state[-1]
    return state


def _find(state: Any, kind: type) -> Any:
    """The first sub-state of type ``kind`` anywhere in a state, else ``None``."""
    if isinstance(state, kind):
        return state
    if isinstance(state, (tuple, list)):
        for child in state:
            found = _find(child, kind)
            if found is not None:
                return found
    return None


def _check_finite(params: Any) -> None:
    """Raise naming the first parameter leaf with a NaN or infinity (concrete leaves only)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if _checks.is_traced(leaf):
            continue
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path) or "params"
            raise ValueError(
                f"minimize: the starting point is not finite: {where} holds "
                f"{int(np.sum(~np.isfinite(arr)))} NaN/inf value(s)"
            )


@functools.lru_cache(maxsize=256)
def _cached_output_shape(fun: Callable, treedef: Any, avals: tuple) -> Any:
    leaves = [jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in avals]
    return jax.eval_shape(fun, jax.tree.unflatten(treedef, leaves))


def _output_shape(fun: Callable, params: Any) -> Any:
    """``jax.eval_shape(fun, params)``, remembered per function and parameter shapes (tracing
    ``fun`` on every call would cost more than a warm solve)."""
    leaves, treedef = jax.tree.flatten(params)
    avals = tuple((tuple(np.shape(x)), jnp.result_type(x)) for x in leaves)
    try:
        return _cached_output_shape(fun, treedef, avals)
    except TypeError:  # an unhashable callable
        return jax.eval_shape(fun, params)


@functools.lru_cache(maxsize=64)
def _with_extra_args(method: optax.GradientTransformation) -> optax.GradientTransformation:
    """``optax.with_extra_args_support``, once per method (the same object keeps the cache)."""
    return optax.with_extra_args_support(method)


def _check_tolerance(name: str, value: Any) -> None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not value >= 0 or math.isnan(value):
            raise ValueError(f"{name} must be >= 0; got {value!r}")
        return
    _checks.check_hyperparam(name, value)


def minimize(
    fun: Callable[[Any], jax.Array],
    params: Any,
    *,
    method: optax.GradientTransformation,
    tol: float | jax.Array = 1e-6,
    rtol: float | jax.Array = 0.0,
    max_steps: int = 1000,
    key: jax.Array | None = None,
    history: bool = True,
) -> MinimizeResult:
    r"""Minimize ``fun`` from ``params`` with ``method``, in one compiled ``while_loop``.

    Each step calls

    $$
    u_k, s_{k+1} = \mathrm{update}(\nabla f(\theta_k), s_k, \theta_k;\ \mathrm{value} =
    f(\theta_k),\ \mathrm{grad} = \nabla f(\theta_k),\ \mathrm{value\_fn} = f), \qquad
    \theta_{k+1} = \theta_k + u_k
    $$

    and stops at the first of: $\lVert\nabla f(\theta_k)\rVert \le$ ``tol``; a step that
    moved with $|f_{k} - f_{k+1}| \le$ ``rtol`` $\max(|f_k|, |f_{k+1}|, 1)$ (SciPy's ``ftol``
    test; off when ``rtol`` is 0); ``max_steps`` steps; a non-finite value or gradient, in
    which case the last finite point is returned (never NaN parameters).

    ``method`` is any optax or gdjax gradient transformation: `gdjax.sgd`, `gdjax.adam`,
    `optax.lbfgs`, or the second-order methods `gdjax.newton`, `gdjax.hessian_free`,
    `gdjax.gauss_newton`, `gdjax.levenberg_marquardt`, `gdjax.lbfgs`,
    `gdjax.simulated_annealing`. After a line search (gdjax's or optax's zoom, last in the
    chain) the value and gradient it computed at the new point are reused, as
    `optax.value_and_grad_from_state` does. For `gdjax.simulated_annealing` no gradient is
    computed, ``tol`` does not apply and the best point seen is returned.

    The compiled program is cached for the same ``fun``, ``method`` object, ``max_steps``
    and shapes: a second call with new starting values does not recompile. Under
    `jax.vmap` (over ``params``, or over hyperparameters of a ``method`` built inside the
    vmapped function, or ``tol``) all runs share one program and each stops on its own.

    Args:
        fun: the objective, ``params -> scalar``.
        params: the starting point, any pytree of float arrays.
        method: the optimizer.
        tol: gradient-norm tolerance ($\ge 0$, a number or array).
        rtol: relative-change tolerance ($\ge 0$; 0 turns the test off).
        max_steps: the step budget, a Python int (it sizes ``history``).
        key: a PRNG key; if given, step ``k``'s update also receives
            ``key=fold_in(key, k)`` (`gdjax.simulated_annealing` draws from it instead of
            its own key).
        history: record the value and gradient norm after every step (a Python bool).

    Returns:
        a `MinimizeResult`.

    Raises:
        ValueError: ``fun`` does not return a scalar, the start is not finite, a
            tolerance is negative, or ``max_steps`` is not a positive int (all before
            anything is compiled); a method's own checks (an exact Hessian too large for
            `gdjax.newton`) also run before compilation.
        TypeError: ``method`` is not a gradient transformation, or ``fun`` is not callable.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda p: jnp.sum((p["w"] - 1.0) ** 2) + p["b"] ** 2
        >>> p0 = {"w": jnp.zeros(3), "b": jnp.array(2.0)}
        >>> res = gdjax.minimize(f, p0, method=gdjax.sgd(0.5), tol=1e-5)
        >>> res.reason, int(res.steps), round(float(res.value), 6)
        ('gradient norm below tol', 1, 0.0)
        >>> starts = jnp.linspace(-2.0, 2.0, 5)  # many starts, one program
        >>> g = lambda x: (x**2 - 1.0) ** 2
        >>> many = jax.vmap(lambda x: gdjax.minimize(g, x, method=gdjax.sgd(0.05), tol=1e-4))(starts)
        >>> [round(float(x), 2) for x in many.params]
        [-1.0, -1.0, 0.0, 1.0, 1.0]
    """
    if not callable(fun):
        raise TypeError(f"fun must be a function params -> scalar; got {fun!r}")
    if not (callable(getattr(method, "init", None)) and callable(getattr(method, "update", None))):
        raise TypeError(
            "method must be a gradient transformation (e.g. gdjax.lbfgs(), gdjax.newton(), "
            f"gdjax.sgd(0.1), optax.adam(1e-3)); got {type(method).__name__}: {method!r}"
        )
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"max_steps must be a Python int >= 1; got {max_steps!r}")
    _checks.static_bool("history", history)
    _check_tolerance("tol", tol)
    _check_tolerance("rtol", rtol)
    if not jax.tree.leaves(params):
        raise ValueError("minimize: params has no array leaves to optimize")
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            where = jax.tree_util.keystr(path) or "params"
            raise TypeError(
                f"minimize: {where} has dtype {jnp.result_type(leaf)}; parameters must be "
                "floating point"
            )
    _check_finite(params)
    out = _output_shape(fun, params)
    if not (hasattr(out, "shape") and out.shape == ()):
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"fun must return a scalar (the objective); it returned shape {shape}. For a "
            "least-squares problem minimize f = 0.5 * sum(r(params)**2) with "
            "gdjax.gauss_newton(r) or gdjax.levenberg_marquardt(r)."
        )
    if key is not None and not isinstance(key, jax.Array):
        raise TypeError(f"key must be a jax.random key or None; got {key!r}")
    params = jax.tree.map(jnp.asarray, params)
    if not isinstance(method, optax.GradientTransformationExtraArgs):
        method = _with_extra_args(method)  # e.g. optax.scale(-0.1): ignores value, grad, ...
    return _solve(
        params,
        tol,
        rtol,
        key,
        fun=fun,
        method=method,
        max_steps=max_steps,
        history=history,
    )


@functools.partial(jax.jit, static_argnames=("fun", "method", "max_steps", "history"))
def _solve(params, tol, rtol, key, *, fun, method, max_steps, history) -> MinimizeResult:
    state = method.init(params)
    gradient_free = _find(state, MetropolisState) is not None
    dtype = jnp.result_type(jax.eval_shape(fun, params).dtype, jnp.float32)

    def evaluate(p):
        if gradient_free:
            return jnp.asarray(fun(p), dtype), optax.tree.zeros_like(p)
        v, g = jax.value_and_grad(fun)(p)
        return jnp.asarray(v, dtype), g

    def norm(g):
        if gradient_free:
            return jnp.asarray(jnp.nan, dtype)
        return optax.tree.norm(g).astype(dtype)

    def finite(v, g, p):
        ok = jnp.isfinite(v) & jnp.all(
            jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p)])
        )
        if not gradient_free:
            ok &= jnp.isfinite(optax.tree.norm(g))
        return ok

    value, grad = evaluate(params)
    gnorm = norm(grad)
    size = max_steps + 1 if history else 0
    hist = {
        "value": jnp.full(size, jnp.nan, dtype).at[0].set(value) if history else jnp.zeros(0),
        "grad_norm": jnp.full(size, jnp.nan, dtype).at[0].set(gnorm) if history else jnp.zeros(0),
    }
    start_ok = finite(value, grad, params)
    reason = jnp.where(~start_ok, _NONFINITE, jnp.where(gnorm <= tol, _GRAD, _RUNNING))
    carry = (jnp.zeros([], jnp.int32), params, state, value, grad, gnorm, reason, hist)

    def cond(carry):
        return carry[6] == _RUNNING

    def body(carry):
        step, p, s, v, g, gn, _, hist = carry
        extra = {"value": v, "grad": g, "value_fn": fun}
        if key is not None:
            extra["key"] = jax.random.fold_in(key, step)
        updates, s_new = method.update(g, s, p, **extra)
        p_new = optax.apply_updates(p, updates)
        reuse = _last_state(s_new)
        if isinstance(reuse, _LINESEARCH_STATES):
            v_new, g_new = jnp.asarray(reuse.value, dtype), optax.tree.cast_like(reuse.grad, g)
        elif gradient_free and isinstance(reuse, MetropolisState):
            v_new, g_new = jnp.asarray(reuse.value, dtype), g
        else:
            v_new, g_new = evaluate(p_new)
        gn_new = norm(g_new)
        ok = finite(v_new, g_new, p_new)
        moved = jnp.any(jnp.array([jnp.any(u != 0) for u in jax.tree.leaves(updates)]))
        change = jnp.abs(v - v_new) <= rtol * jnp.maximum(
            jnp.maximum(jnp.abs(v), jnp.abs(v_new)), 1.0
        )
        small_change = (rtol > 0) & moved & change
        new_step = step + 1
        reason = jnp.where(
            ~ok,
            _NONFINITE,
            jnp.where(
                gn_new <= tol,
                _GRAD,
                jnp.where(small_change, _CHANGE, jnp.where(new_step >= max_steps, _BUDGET, 0)),
            ),
        )
        keep = lambda new, old: optax.tree.where(ok, new, old)  # noqa: E731
        if history:
            hist = {
                "value": hist["value"].at[new_step].set(jnp.where(ok, v_new, jnp.nan)),
                "grad_norm": hist["grad_norm"].at[new_step].set(jnp.where(ok, gn_new, jnp.nan)),
            }
        return (
            jnp.where(ok, new_step, step),
            keep(p_new, p),
            keep(s_new, s),
            jnp.where(ok, v_new, v),
            keep(g_new, g),
            jnp.where(ok, gn_new, gn),
            reason,
            hist,
        )

    step, params, state, value, grad, gnorm, reason, hist = jax.lax.while_loop(cond, body, carry)
    if gradient_free:
        chain_state = _find(state, MetropolisState)
        best_ok = jnp.isfinite(chain_state.best_value) & (chain_state.best_value <= value)
        params = optax.tree.where(best_ok, chain_state.best_params, params)
        value = jnp.where(best_ok, chain_state.best_value, value).astype(dtype)
    return MinimizeResult(
        params=params,
        value=value,
        grad_norm=gnorm,
        steps=step,
        converged=(reason == _GRAD) | (reason == _CHANGE),
        stop_reason=reason.astype(jnp.int32),
        history=hist,
        state=state,
    )


__all__ = ["STOP_REASONS", "MinimizeResult", "minimize"]
