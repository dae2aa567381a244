r"""A zoom line search (strong Wolfe conditions), as `optax.scale_by_zoom_linesearch` defines it.

Given a descent direction $u$ (the incoming updates) at parameters $w$, it looks for a step
size $\eta$ satisfying the sufficient decrease (Armijo) and curvature (strong Wolfe)
conditions, first growing $\eta$ until an interval containing such a step is bracketed, then
zooming into it by cubic, quadratic or bisection interpolation (Nocedal and Wright, Algorithms
3.5 and 3.6). Wherever optax's line search succeeds, this one takes the same steps.

It differs where optax's fails. When no step meets the conditions within the budget and no
step with sufficient decrease was seen, optax takes the last step it tried, which may raise
the objective; repeated, that is how `optax.lbfgs` diverges on badly scaled problems
(optax issues #1201 and #1298). Here the step is then the tried step with the lowest value if
that value is below the starting one, and zero otherwise; the state records the failure. A
direction that is not a descent direction gets a zero step at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._extra_args import require_params, require_value_fn


class ZoomLinesearchInfo(NamedTuple):
    """Diagnostics of the latest line search (optax's fields, then gdjax's).

    Attributes:
        num_linesearch_steps: objective evaluations spent.
        decrease_error: how far the accepted step is from sufficient decrease (0: met).
        curvature_error: how far it is from the curvature condition (0: met).
        failed: no step met both conditions within ``max_linesearch_steps``.
        reverted: it failed and no tried step lowered the objective, so the step is zero.
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    failed: jax.Array
    reverted: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """State of `scale_by_zoom_linesearch`.

    Attributes:
        learning_rate: the step size $\\eta$ of the latest update.
        value: the objective at the new parameters $w + \\eta u$ (reusable by a caller, as
            `optax.value_and_grad_from_state` does; `gdjax.minimize` reuses it).
        grad: the gradient there.
        info: `ZoomLinesearchInfo`.
        retry_stepsize: after a zero step, the step size the next search starts from (a
            tenth of the smallest one tried); 0 otherwise.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: Any
    info: ZoomLinesearchInfo
    retry_stepsize: jax.Array


class _Search(NamedTuple):
    """The running state of one line search (internal)."""

    count: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any
    best_stepsize: jax.Array
    best_value: jax.Array
    best_grad: Any
    smallest: jax.Array


def _cubic_minimizer(a, fa, slope_a, b, fb, c, fc):
    """Critical point of the cubic through (a, fa) with slope ``slope_a``, (b, fb), (c, fc).

    NaN when the cubic has none; callers treat NaN as "not usable".
    """
    db, dc = b - a, c - a
    rb, rc = fb - fa - slope_a * db, fc - fa - slope_a * dc
    det = (db * dc) ** 2 * (db - dc)
    cubic = (dc**2 * rb - db**2 * rc) / det
    quad = (db**3 * rc - dc**3 * rb) / det
    return a + (-quad + jnp.sqrt(quad**2 - 3.0 * cubic * slope_a)) / (3.0 * cubic)


def _quadratic_minimizer(a, fa, slope_a, b, fb):
    """Critical point of the parabola through (a, fa) with slope ``slope_a`` and (b, fb)."""
    db = b - a
    curvature = (fb - fa - slope_a * db) / db**2
    return a - slope_a / (2.0 * curvature)


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: float | jax.Array | None = None,
    tol: float | jax.Array = 0.0,
    increase_factor: float | jax.Array = 2.0,
    slope_rtol: float | jax.Array = 1e-4,
    curv_rtol: float | jax.Array = 0.9,
    approx_dec_rtol: float | jax.Array | None = 1e-6,
    stepsize_precision: float | jax.Array = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Scale the direction $u$ by a step size $\eta$ meeting the strong Wolfe conditions.

    $$
    f(w + \eta u) \le f(w) + c_1 \eta \langle u, \nabla f(w) \rangle + \epsilon,
    \qquad
    |\langle \nabla f(w + \eta u), u \rangle| \le c_2 |\langle \nabla f(w), u \rangle| +
    \epsilon
    $$

    with $c_1$ = ``slope_rtol``, $c_2$ = ``curv_rtol``, $\epsilon$ = ``tol``. Near a minimum,
    where rounding hides the Armijo decrease, Hager and Zhang's approximate condition
    $\langle \nabla f(w+\eta u), u\rangle \le (1 - 2c_1)|\langle \nabla f(w), u\rangle|$ with
    $f(w + \eta u) \le f(w) + \delta |f(w)|$ ($\delta$ = ``approx_dec_rtol``) is accepted
    instead, as optax does. Returns $\eta u$. The update needs the extra arguments ``value``
    ($f(w)$), ``grad`` ($\nabla f(w)$) and ``value_fn`` ($f$).

    Arguments, defaults and the successful behaviour are `optax.scale_by_zoom_linesearch`'s;
    the failure behaviour is safer (see the module). ``max_linesearch_steps`` fixes no
    shape; the tolerances may be arrays, also traced.

    Args:
        max_linesearch_steps: evaluation budget per update (an int >= 1).
        max_learning_rate: cap on $\eta$, or ``None``.
        tol: $\epsilon \ge 0$.
        increase_factor: growth of $\eta$ while bracketing (> 1).
        slope_rtol: $c_1 \in (0, 1)$.
        curv_rtol: $c_2 \in (c_1, 1)$ (``inf`` turns the search into backtracking).
        approx_dec_rtol: $\delta \ge 0$, or ``None`` for the plain Armijo condition only.
        stepsize_precision: stop zooming once the interval is this short and a step with
            sufficient decrease is known.
        initial_guess_strategy: ``"one"`` (start at $\eta = 1$, for quasi-Newton directions)
            or ``"keep"`` (start at the previous $\eta$).
        verbose: print a line when the search fails.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> f = lambda w: jnp.sum((w - 3.0) ** 2)
        >>> opt = gdjax.chain(gdjax.scale(-1.0), gdjax.scale_by_zoom_linesearch(20))
        >>> @jax.jit
        ... def step(w, state):
        ...     value, grad = jax.value_and_grad(f)(w)
        ...     u, state = opt.update(grad, state, w, value=value, grad=grad, value_fn=f)
        ...     return gdjax.apply_updates(w, u), state
        >>> w = jnp.zeros(2)
        >>> step(w, opt.init(w))[0]  # the exact minimizer along -grad
        Array([3., 3.], dtype=float32)
    """
    _checks.positive_int("max_linesearch_steps", max_linesearch_steps)
    if max_learning_rate is not None:
        _checks.positive("max_learning_rate", max_learning_rate)
    _checks.non_negative("tol", tol)
    _checks.check_range("increase_factor", increase_factor, low=1.0, low_inclusive=False)
    _checks.check_range("slope_rtol", slope_rtol, low=0.0, high=1.0, low_inclusive=False)
    _checks.positive("curv_rtol", curv_rtol)
    if approx_dec_rtol is not None:
        _checks.non_negative("approx_dec_rtol", approx_dec_rtol)
    _checks.non_negative("stepsize_precision", stepsize_precision)
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(
            f"initial_guess_strategy must be 'one' or 'keep'; got {initial_guess_strategy!r}"
        )
    _checks.static_bool("verbose", verbose)

    def decrease_error(stepsize, value, slope, value_init, slope_init):
        armijo = value - value_init - slope_rtol * stepsize * slope_init
        if approx_dec_rtol is not None:
            approx = jnp.maximum(
                slope - (2 * slope_rtol - 1.0) * slope_init,
                value - value_init - approx_dec_rtol * jnp.abs(value_init),
            )
            armijo = jnp.minimum(armijo, approx)
        err = jnp.maximum(armijo, 0.0)
        return jnp.where(jnp.isnan(err), jnp.inf, err)

    def curvature_error(slope, slope_init):
        err = jnp.maximum(jnp.abs(slope) - curv_rtol * jnp.abs(slope_init), 0.0)
        return jnp.where(jnp.isnan(err), jnp.inf, err)

    def search(updates, params, value_init, grad_init, value_fn, guess):
        value_and_grad = jax.value_and_grad(value_fn)
        dtype = jnp.asarray(value_init).dtype
        slope_init = optax.tree.real(optax.tree.vdot(updates, grad_init)).astype(dtype)
        zero = jnp.zeros([], dtype)
        init = _Search(
            count=jnp.zeros([], jnp.int32),
            stepsize=zero,
            value=value_init,
            grad=grad_init,
            slope=slope_init,
            decrease_error=jnp.asarray(jnp.inf, dtype),
            curvature_error=jnp.asarray(jnp.inf, dtype),
            interval_found=jnp.zeros([], bool),
            # A direction that does not descend gets no search (and a zero step).
            done=~(slope_init < 0),
            failed=jnp.zeros([], bool),
            low=zero,
            value_low=value_init,
            slope_low=slope_init,
            high=zero,
            value_high=value_init,
            slope_high=slope_init,
            cubic_ref=zero,
            value_cubic_ref=value_init,
            safe_stepsize=zero,
            safe_value=value_init,
            safe_grad=grad_init,
            best_stepsize=zero,
            best_value=value_init,
            best_grad=grad_init,
            smallest=jnp.asarray(jnp.inf, dtype),
        )

        def evaluate(stepsize):
            point = optax.tree.add_scale(params, stepsize, updates)
            value, grad = value_and_grad(point)
            slope = optax.tree.real(optax.tree.vdot(grad, updates))
            return value.astype(dtype), grad, slope.astype(dtype)

        def zoom_candidate(s):
            left, right = jnp.minimum(s.low, s.high), jnp.maximum(s.low, s.high)
            delta = right - left
            cubic = _cubic_minimizer(
                s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref,
                s.value_cubic_ref,
            )  # fmt: skip
            quad = _quadratic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high)
            cubic_ok = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
            quad_ok = ~cubic_ok & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
            middle = jnp.where(cubic_ok, cubic, (s.low + s.high) / 2.0)
            return jnp.where(quad_ok, quad, middle)

        def body(s):
            first = s.count == 0
            grown = jnp.where(first, guess, increase_factor * s.stepsize).astype(dtype)
            capped = jnp.asarray(False)
            if max_learning_rate is not None:
                capped = grown >= max_learning_rate
                grown = jnp.minimum(grown, max_learning_rate).astype(dtype)
            stepsize = jnp.where(s.interval_found, zoom_candidate(s), grown)
            value, grad, slope = evaluate(stepsize)
            dec = decrease_error(stepsize, value, slope, value_init, slope_init)
            curv = curvature_error(slope, slope_init)
            met = jnp.maximum(dec, curv) <= tol
            last = s.count + 1 >= max_linesearch_steps
            lower = value < s.best_value
            best = optax.tree.where(
                lower, (stepsize, value, grad), (s.best_stepsize, s.best_value, s.best_grad)
            )

            # Bracketing phase (Algorithm 3.5): the new point becomes `high` when it fails
            # sufficient decrease or does not improve on the previous point, `low` when the
            # slope turned non-negative; otherwise keep growing.
            to_high = (dec > 0) | ((value >= s.value) & ~first)
            to_low = (slope >= 0) & ~to_high
            new_pt = (stepsize, value, slope)
            prev_pt = (s.stepsize, s.value, s.slope)
            low_b = optax.tree.where(to_low, new_pt, prev_pt)
            high_b = optax.tree.where(to_low, prev_pt, new_pt)
            found_b = to_high | to_low | met
            done_b = met | (capped & ~found_b)
            safe_b = dec <= tol
            safe_after_b = optax.tree.where(
                safe_b,
                (stepsize, value, grad),
                (s.safe_stepsize, s.safe_value, s.safe_grad),
            )
            bracket = s._replace(
                interval_found=found_b,
                done=done_b,
                failed=last & ~done_b,
                low=low_b[0],
                value_low=low_b[1],
                slope_low=low_b[2],
                high=high_b[0],
                value_high=high_b[1],
                slope_high=high_b[2],
                cubic_ref=low_b[0],
                value_cubic_ref=low_b[1],
                safe_stepsize=safe_after_b[0],
                safe_value=safe_after_b[1],
                safe_grad=safe_after_b[2],
            )

            # Zoom phase (Algorithm 3.6): shrink [low, high] around the new point.
            old_low = (s.low, s.value_low, s.slope_low)
            old_high = (s.high, s.value_high, s.slope_high)
            high_to_mid = (dec > 0) | (value >= s.value_low)
            high_to_low = (slope * (s.high - s.low) >= 0) & ~high_to_mid
            high_z = optax.tree.where(
                high_to_mid, new_pt, optax.tree.where(high_to_low, old_low, old_high)
            )
            low_z = optax.tree.where(high_to_mid, old_low, new_pt)
            ref_z = optax.tree.where(
                high_to_mid | high_to_low, old_high[:2], old_low[:2]
            )  # fmt: skip
            safe_z = safe_b & (value < s.safe_value)
            safe_after_z = optax.tree.where(
                safe_z,
                (stepsize, value, grad),
                (s.safe_stepsize, s.safe_value, s.safe_grad),
            )
            too_short = jnp.abs(s.high - s.low) <= stepsize_precision
            gave_up = last | (too_short & (safe_after_z[0] > 0))
            zoom = s._replace(
                done=met,
                failed=gave_up & ~met,
                low=low_z[0],
                value_low=low_z[1],
                slope_low=low_z[2],
                high=high_z[0],
                value_high=high_z[1],
                slope_high=high_z[2],
                cubic_ref=ref_z[0],
                value_cubic_ref=ref_z[1],
                safe_stepsize=safe_after_z[0],
                safe_value=safe_after_z[1],
                safe_grad=safe_after_z[2],
            )
            new = optax.tree.where(s.interval_found, zoom, bracket)
            return new._replace(
                count=s.count + 1,
                stepsize=stepsize,
                value=value,
                grad=grad,
                slope=slope,
                decrease_error=dec,
                curvature_error=curv,
                best_stepsize=best[0],
                best_value=best[1],
                best_grad=best[2],
                smallest=jnp.minimum(s.smallest, stepsize),
            )

        def running(s):
            return ~(s.done | s.failed)

        s = jax.lax.while_loop(running, body, init)
        # On failure: the safest step seen with sufficient decrease; else the lowest value
        # seen if it is below the start; else no step at all.
        have_safe = s.safe_stepsize > 0
        have_lower = s.best_value < value_init
        fallback = optax.tree.where(
            have_safe,
            (s.safe_stepsize, s.safe_value, s.safe_grad),
            optax.tree.where(
                have_lower,
                (s.best_stepsize, s.best_value, s.best_grad),
                (zero, value_init, grad_init),
            ),
        )
        descends = slope_init < 0
        failed = s.failed | ~descends
        chosen = optax.tree.where(failed, fallback, (s.stepsize, s.value, s.grad))
        reverted = failed & ~have_safe & ~have_lower
        if verbose:
            jax.lax.cond(
                failed,
                lambda: jax.debug.print(
                    "gdjax.scale_by_zoom_linesearch: no step met the Wolfe conditions in "
                    "{n} evaluations (slope {slope}); step {eta}",
                    n=s.count,
                    slope=slope_init,
                    eta=chosen[0],
                ),
                lambda: None,
            )
        info = ZoomLinesearchInfo(
            num_linesearch_steps=s.count,
            decrease_error=s.decrease_error,
            curvature_error=s.curvature_error,
            failed=failed,
            reverted=reverted,
        )
        # After a zero step the next search starts well below every step tried here.
        retry = jnp.where(reverted & jnp.isfinite(s.smallest), 0.1 * s.smallest, 0.0)
        return chosen, info, retry.astype(dtype)

    def init_fn(params):
        dtype = jnp.real(jnp.empty((), jax.tree.leaves(params)[0].dtype)).dtype
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.asarray(1.0, dtype),
            value=jnp.asarray(jnp.inf, dtype),
            grad=optax.tree.zeros_like(params),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=jnp.zeros([], jnp.int32),
                decrease_error=jnp.asarray(jnp.inf, dtype),
                curvature_error=jnp.asarray(jnp.inf, dtype),
                failed=jnp.zeros([], bool),
                reverted=jnp.zeros([], bool),
            ),
            retry_stepsize=jnp.zeros([], dtype),
        )

    def update_fn(
        updates: Any,
        state: ScaleByZoomLinesearchState,
        params: Any = None,
        *,
        value: jax.Array | None = None,
        grad: Any = None,
        value_fn: Callable[[Any], jax.Array] | None = None,
        **extra_args: Any,
    ):
        del extra_args
        name = "scale_by_zoom_linesearch"
        require_params(name, params)
        value_fn = require_value_fn(name, value_fn)
        dtype = state.learning_rate.dtype
        if value is None or grad is None:
            value, grad = jax.value_and_grad(value_fn)(params)
        value = jnp.asarray(value, dtype)
        guess = jnp.asarray(1.0, dtype)
        if initial_guess_strategy == "keep":  # after a zero step, start again from 1
            guess = jnp.where(state.learning_rate > 0, state.learning_rate, guess)
        guess = jnp.where(state.retry_stepsize > 0, state.retry_stepsize, guess)
        (stepsize, new_value, new_grad), info, retry = search(
            updates, params, value, grad, value_fn, guess
        )
        scaled = jax.tree.map(lambda u: (stepsize * u).astype(u.dtype), updates)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=stepsize.astype(dtype),
            value=new_value.astype(dtype),
            grad=optax.tree.cast_like(new_grad, state.grad),
            info=jax.tree.map(lambda a, b: a.astype(b.dtype), info, state.info),
            retry_stepsize=retry,
        )
        return scaled, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
