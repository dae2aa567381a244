r"""Learning-rate schedules: pure functions ``step -> value``.

Each factory returns a function of the (integer, possibly traced) step count that can be passed
anywhere a learning rate (or weight decay) is accepted; the value it gives at each step is
recorded in the optimizer state (read it with `get_hyperparam`).

Values (``init_value``, ``peak_value``, ``end_value``, ``decay_rate``, ``alpha``, ``power``,
...) may be JAX arrays, also traced, so a sweep can vary them under ``jax.vmap``. Step counts
(``transition_steps``, ``transition_begin``, ``decay_steps``, ``warmup_steps``, ``step_size``,
the ``boundaries`` of `join_schedules`) are ints or integer JAX arrays, also traced: no shape
depends on them; a concrete count is checked when the schedule is built. Static — Python values
only — are ``staircase``, ``end_value=None`` (no floor), the boundary keys of
`piecewise_constant_schedule` and `piecewise_interpolate_schedule` (and so the arguments of
the one-cycle schedules that place them), the number of schedules joined and
``interpolate_type``.

At the edges the schedules behave as optax's: a non-positive ``transition_steps`` (and a zero
``decay_rate`` of `exponential_decay`) gives the constant ``init_value``; a negative
``transition_begin`` counts from step 0. Values are computed in JAX's default float dtype
(float32, or float64 under ``jax_enable_x64``); optax's schedules compute in float32 from an
int32 step count even under x64, so there gdjax's are the more precise (a deliberate
difference).

Learning-rate *annealing* in the source documents' sense — large steps early, small steps
late — is any of the decaying schedules here.

Examples:
    >>> import gdjax
    >>> lr = gdjax.schedules.exponential_decay(0.1, transition_steps=10, decay_rate=0.5)
    >>> [round(float(lr(s)), 4) for s in (0, 10, 20)]
    [0.1, 0.05, 0.025]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp

from gdjax import _checks
from gdjax.base import Schedule, default_float

Number = float | int | jax.Array
Steps = int | jax.Array


def _steps(name: str, value: int | jax.Array) -> None:
    """A number of steps: an int > 0, or an integer JAX array (also traced; checked if concrete)."""
    _checks.count(name, value, minimum=1)


def _any_steps(name: str, value: int | jax.Array) -> None:
    """A number of steps where optax gives a meaning to every int: any int or integer array."""
    _checks.count(name, value, minimum=None)


def _begin(name: str, value: int | jax.Array) -> None:
    """A step index: an int >= 0, or an integer JAX array (also traced; checked if concrete)."""
    _checks.count(name, value, minimum=0)


def _concrete(*values: object) -> bool:
    """Whether all values are known now (not traced), so they can be compared in Python."""
    return not any(_checks.is_traced(v) for v in values)


def _float(x: Number) -> jax.Array:
    """``x`` (a step count or a value) in JAX's default float dtype.

    Python ints go through ``float`` first, so a huge count (``10**10`` steps) does not
    overflow int32 on its way in.
    """
    if isinstance(x, int):
        x = float(x)
    return jnp.asarray(x, default_float())


def _from_zero(begin: Steps) -> Steps:
    """A negative ``transition_begin`` counts from step 0 (as in optax)."""
    if _concrete(begin):
        return max(int(begin), 0)
    return jnp.maximum(begin, 0)


def _unless_no_steps(steps: Steps, init_value: Number, value: jax.Array) -> jax.Array:
    """``value``, or the constant ``init_value`` when ``steps <= 0`` (optax's rule)."""
    if _concrete(steps):
        return value
    return jnp.where(jnp.asarray(steps) <= 0, jnp.asarray(init_value, value.dtype), value)


def constant_schedule(value: Number) -> Schedule:
    r"""$\alpha_t = \alpha$ for every step.

    Args:
        value: the constant.
    """
    _checks.check_hyperparam("value", value)
    return lambda count: jnp.full([], value, default_float()) + 0 * _float(count)


def linear_schedule(
    init_value: Number, end_value: Number, transition_steps: Steps, transition_begin: Steps = 0
) -> Schedule:
    r"""Linear interpolation from ``init_value`` to ``end_value`` over ``transition_steps``.

    $$
    \alpha_t = \alpha_0 + (\alpha_{end} - \alpha_0)\,
    \min\!\left(1, \frac{\max(0, t - t_0)}{T}\right)
    $$

    Args:
        init_value: $\alpha_0$.
        end_value: $\alpha_{end}$.
        transition_steps: $T$; $T \le 0$ gives the constant $\alpha_0$ (as in optax).
        transition_begin: $t_0$, steps held at ``init_value`` first; a negative value counts
            from 0.
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def polynomial_schedule(
    init_value: Number,
    end_value: Number,
    power: Number,
    transition_steps: Steps,
    transition_begin: Steps = 0,
) -> Schedule:
    r"""Polynomial decay.

    $$
    \alpha_t = (\alpha_0 - \alpha_{end})\left(1 - \frac{\operatorname{clip}(t - t_0, 0, T)}{T}\right)^{p} + \alpha_{end}
    $$

    Args:
        init_value: $\alpha_0$.
        end_value: $\alpha_{end}$.
        power: $p$.
        transition_steps: $T$; $T \le 0$ gives the constant $\alpha_0$ (as in optax).
        transition_begin: $t_0$; a negative value counts from 0.
    """
    _any_steps("transition_steps", transition_steps)
    _any_steps("transition_begin", transition_begin)
    if _concrete(transition_steps) and transition_steps <= 0:
        return constant_schedule(init_value)
    begin = _from_zero(transition_begin)

    def schedule(count):
        steps = _float(transition_steps)
        done = jnp.clip(_float(count) - begin, 0, steps)
        frac = 1 - done / steps
        value = (init_value - end_value) * (frac**power) + end_value
        return _unless_no_steps(transition_steps, init_value, value)

    return schedule


def exponential_decay(
    init_value: Number,
    transition_steps: Steps,
    decay_rate: Number,
    transition_begin: Steps = 0,
    staircase: bool = False,
    end_value: Number | None = None,
) -> Schedule:
    r"""Exponential decay; with ``staircase=True``, step decay.

    $$
    \alpha_t = \alpha_0\, r^{(t - t_0)/T} \quad
    \bigl(r^{\lfloor (t - t_0)/T \rfloor} \text{ with staircase}\bigr)
    $$

    With ``end_value`` the result is clipped to it: from below when $r < 1$, from above when
    $r \ge 1$ (optax's rule, also at $r = 1$ and before $t_0$).

    Args:
        init_value: $\alpha_0$.
        transition_steps: $T$; $T \le 0$ gives the constant $\alpha_0$ (as in optax).
        decay_rate: $r \ge 0$ (below 1 decays, above 1 grows); $r = 0$ gives the constant
            $\alpha_0$ (as in optax).
        transition_begin: $t_0$, steps held at ``init_value`` first; a negative value counts
            from 0.
        staircase: decay in discrete steps every $T$ steps; a Python bool.
        end_value: optional floor (or ceiling when $r \ge 1$).
    """
    _any_steps("transition_steps", transition_steps)
    _any_steps("transition_begin", transition_begin)
    _checks.non_negative("decay_rate", decay_rate)
    _checks.static_bool("staircase", staircase)
    if _concrete(transition_steps) and transition_steps <= 0:
        return constant_schedule(init_value)
    if _concrete(decay_rate) and decay_rate == 0:
        return constant_schedule(init_value)
    begin = _from_zero(transition_begin)

    def schedule(count):
        decreased = _float(count) - begin
        p = decreased / _float(transition_steps)
        if staircase:
            p = jnp.floor(p)
        decayed = init_value * jnp.power(decay_rate, p)
        value = jnp.where(decreased <= 0, init_value, decayed).astype(decayed.dtype)
        if end_value is not None:
            floor = jnp.maximum(value, end_value)
            ceiling = jnp.minimum(value, end_value)
            value = jnp.where(jnp.asarray(decay_rate) < 1, floor, ceiling)
        if not _concrete(decay_rate):
            value = jnp.where(jnp.asarray(decay_rate) == 0, init_value, value).astype(value.dtype)
        return _unless_no_steps(transition_steps, init_value, value)

    return schedule


def step_decay(init_value: Number, step_size: Steps, factor: Number = 0.1) -> Schedule:
    r"""Step decay: multiply by ``factor`` every ``step_size`` steps.

    $$
    \alpha_t = \alpha_0 \cdot \text{factor}^{\lfloor t / s \rfloor}
    $$

    Args:
        init_value: $\alpha_0$.
        step_size: $s > 0$.
        factor: the multiplier, > 0.
    """
    _steps("step_size", step_size)
    _checks.positive("factor", factor)
    return exponential_decay(init_value, step_size, factor, staircase=True)


def inverse_time_decay(
    init_value: Number, decay_rate: Number, decay_steps: Steps = 1, staircase: bool = False
) -> Schedule:
    r"""Inverse-time decay, the classic $1/t$ annealing of stochastic approximation.

    $$
    \alpha_t = \frac{\alpha_0}{1 + r\, t / s}
    \quad \bigl(\lfloor t/s \rfloor \text{ with staircase}\bigr)
    $$

    Args:
        init_value: $\alpha_0$.
        decay_rate: $r \ge 0$.
        decay_steps: $s > 0$.
        staircase: decay in discrete steps; a Python bool.
    """
    _checks.non_negative("decay_rate", decay_rate)
    _steps("decay_steps", decay_steps)
    _checks.static_bool("staircase", staircase)

    def schedule(count):
        p = _float(count) / _float(decay_steps)
        if staircase:
            p = jnp.floor(p)
        return init_value / (1 + decay_rate * p)

    return schedule


def cosine_decay_schedule(
    init_value: Number, decay_steps: Steps, alpha: Number = 0.0, exponent: Number = 1.0
) -> Schedule:
    r"""Cosine decay (Loshchilov & Hutter, SGDR).

    $$
    \alpha_t = \alpha_0\left((1-a)\left[\tfrac12\left(1 + \cos\frac{\pi \min(t, T)}{T}\right)\right]^{e} + a\right)
    $$

    Args:
        init_value: $\alpha_0$.
        decay_steps: $T > 0$ (as in optax, which also refuses $T \le 0$); any size, also
            beyond int32.
        alpha: $a$, the final value as a fraction of ``init_value``.
        exponent: $e$.
    """
    _steps("decay_steps", decay_steps)

    def schedule(count):
        steps = _float(decay_steps)
        done = jnp.minimum(_float(count), steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * done / steps))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[Steps]) -> Schedule:
    r"""Run ``schedules[i]`` from ``boundaries[i-1]`` on, each restarted at its own step 0.

    Args:
        schedules: ``n`` schedules.
        boundaries: ``n - 1`` increasing step counts where the next schedule takes over.
    """
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"join_schedules needs len(boundaries) == len(schedules) - 1; got "
            f"{len(schedules)} schedules and {len(boundaries)} boundaries"
        )
    for boundary in boundaries:
        _begin("boundaries", boundary)
    if _concrete(*boundaries) and any(b1 >= b2 for b1, b2 in itertools.pairwise(boundaries)):
        raise ValueError(f"boundaries must be strictly increasing; got {list(boundaries)}")

    def schedule(count):
        count = jnp.asarray(count)
        out = schedules[0](count)
        for boundary, sched in zip(boundaries, schedules[1:], strict=True):
            out = jnp.where(count < boundary, out, sched(count - boundary))
        return out

    return schedule


def warmup_cosine_decay_schedule(
    init_value: Number,
    peak_value: Number,
    warmup_steps: Steps,
    decay_steps: Steps,
    end_value: Number = 0.0,
    exponent: Number = 1.0,
) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` counts the whole schedule, warmup included (as in optax).

    Args:
        init_value: value at step 0 (unless ``warmup_steps`` is 0).
        peak_value: value after ``warmup_steps``.
        warmup_steps: length of the linear warmup, >= 0 (0: the cosine starts at once).
        decay_steps: total length, > ``warmup_steps``.
        end_value: final value.
        exponent: cosine exponent.
    """
    _begin("warmup_steps", warmup_steps)
    _steps("decay_steps", decay_steps)
    if _concrete(warmup_steps, decay_steps) and decay_steps <= warmup_steps:
        raise ValueError(f"decay_steps must be > warmup_steps ({warmup_steps}); got {decay_steps}")
    # optax's alpha = end / peak (0 when peak == 0), also for traced values.
    if _concrete(peak_value, end_value):
        alpha = 0.0 if peak_value == 0 else end_value / peak_value
    else:
        is_zero = jnp.asarray(peak_value) == 0
        alpha = jnp.where(is_zero, 0.0, end_value / jnp.where(is_zero, 1.0, peak_value))
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent),
        ],
        [warmup_steps],
    )


def piecewise_constant_schedule(
    init_value: Number, boundaries_and_scales: Mapping[int, Number] | None = None
) -> Schedule:
    r"""Multiply the value by ``scale`` once step ``boundary`` is reached, for each pair.

    $$
    \alpha_t = \alpha_0 \prod_{b_i \le t} s_i
    $$

    Args:
        init_value: $\alpha_0$.
        boundaries_and_scales: ``{boundary_step: scale}``. The boundaries are dictionary keys,
            so they must be Python ints >= 0 (static); the scales are numbers >= 0 or JAX
            arrays (also traced).
    """
    pairs = _boundaries_and_scales(boundaries_and_scales)

    def schedule(count):
        count = _float(count)
        value = init_value * jnp.ones([], count.dtype)
        for boundary, scale in pairs:
            value = jnp.where(count >= boundary, value * scale, value)
        return value

    return schedule


def one_cycle_schedule(
    transition_steps: Steps,
    peak_value: Number,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> Schedule:
    r"""The one-cycle policy (Smith & Topin, 2018) with cosine annealing in both phases.

    Rises from $\alpha_{max}/d$ to $\alpha_{max}$ during the first ``pct_start`` of
    the steps, then falls to $\alpha_{max}/(d \cdot d_{final})$; each phase follows half a
    cosine, $a + (b - a)\tfrac12(1 - \cos \pi\tau)$ for $\tau \in [0, 1]$.

    Args:
        transition_steps: total steps $T > 0$.
        peak_value: $\alpha_{max}$.
        pct_start: fraction of steps spent rising, in (0, 1).
        div_factor: $d$, initial value is $\alpha_{max}/d$.
        final_div_factor: $d_{final}$, final value is the initial over this.
    """
    _steps("transition_steps", transition_steps)
    _checks.check_range(
        "pct_start", pct_start, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
    )
    _checks.positive("div_factor", div_factor)
    _checks.positive("final_div_factor", final_div_factor)
    if _concrete(pct_start, transition_steps):
        rise = max(int(pct_start * transition_steps), 1)
    else:  # the same, traced
        rise = jnp.maximum(jnp.floor(pct_start * _float(transition_steps)), 1).astype(jnp.int32)
    start = peak_value / div_factor
    end = start / final_div_factor

    def cosine_between(a: Number, b: Number, length: Steps) -> Schedule:
        def schedule(count):
            tau = jnp.clip(_float(count) / jnp.maximum(_float(length), 1.0), 0.0, 1.0)
            return a + (b - a) * 0.5 * (1 - jnp.cos(math.pi * tau))

        return schedule

    return join_schedules(
        [
            cosine_between(start, peak_value, rise),
            cosine_between(peak_value, end, transition_steps - rise),
        ],
        [rise],
    )


def _boundaries_and_scales(
    boundaries_and_scales: Mapping[int, Number] | None,
) -> list[tuple[int, Number]]:
    """The ``{boundary_step: scale}`` pairs, checked (Python int steps >= 0, scales >= 0), sorted."""
    pairs = list((boundaries_and_scales or {}).items())
    for boundary, scale in pairs:
        if not isinstance(boundary, int) or isinstance(boundary, bool):
            raise TypeError(
                f"boundaries_and_scales keys must be Python ints (boundary steps); got "
                f"{type(boundary).__name__}: {boundary!r}"
            )
        _begin("boundary", boundary)
        _checks.non_negative(f"scale at boundary {boundary}", scale)
    return sorted(pairs, key=lambda pair: pair[0])


def _static_steps(name: str, value: Steps) -> int:
    """A step count that places dictionary boundaries: a concrete int > 0, returned as an int."""
    _steps(name, value)
    if not _concrete(value):
        raise TypeError(
            f"{name} must be a Python int here (it places the schedule's boundaries, so it "
            f"cannot be traced); got a traced {type(value).__name__}"
        )
    return int(value)


def _fraction(name: str, value: float) -> None:
    """A static fraction of the steps: a Python number in [0, 1]."""
    if _checks.is_traced(value):
        raise TypeError(f"{name} must be a Python number (it places a boundary); got a tracer")
    _checks.check_range(name, value, low=0.0, high=1.0)


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Number,
    boundaries_and_scales: Mapping[int, Number] | None = None,
) -> Schedule:
    r"""Interpolate between the values of `piecewise_constant_schedule`, linearly or by cosine.

    With boundaries $0 = b_0 < b_1 < \dots < b_n$ and values $v_0 = \alpha_0$,
    $v_i = v_{i-1} s_i$, the value moves from $v_{i-1}$ at $b_{i-1}$ to $v_i$ at $b_i$
    and stays at $v_n$ after $b_n$:

    $$
    \alpha_t = \operatorname{interp}\!\left(v_{i-1}, v_i,
    \frac{t - b_{i-1}}{\max(b_i - b_{i-1}, 1)}\right), \quad b_{i-1} \le t < b_i; \qquad
    \alpha_t = v_n, \quad t \ge b_n
    $$

    with $\operatorname{interp}(a, b, \tau) = a + (b - a)\tau$ (``"linear"``) or
    $b + \tfrac12 (a - b)(1 + \cos \pi\tau)$ (``"cosine"``).

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"``.
        init_value: $\alpha_0$.
        boundaries_and_scales: ``{boundary_step: scale}``: Python int keys >= 0 (static);
            scales >= 0, numbers or JAX arrays (also traced).

    Examples:
        >>> import gdjax
        >>> lr = gdjax.schedules.piecewise_interpolate_schedule("linear", 1.0, {10: 0.5})
        >>> [round(float(lr(t)), 3) for t in (0, 5, 10, 20)]
        [1.0, 0.75, 0.5, 0.5]
    """
    interpolations = {"linear": _linear_between, "cosine": _cosine_between}
    if interpolate_type not in interpolations:
        raise ValueError(f"interpolate_type must be 'linear' or 'cosine'; got {interpolate_type!r}")
    between = interpolations[interpolate_type]
    pairs = _boundaries_and_scales(boundaries_and_scales)
    bounds = [0] + [boundary for boundary, _ in pairs]

    def schedule(count):
        t = _float(count)
        values = [jnp.asarray(init_value, t.dtype)]
        for _, scale in pairs:
            values.append(values[-1] * scale)
        out = jnp.where(t >= bounds[-1], values[-1], 0.0)
        for i in range(len(pairs)):
            lo, hi = bounds[i], bounds[i + 1]
            tau = (t - lo) / max(hi - lo, 1)
            inside = (t >= lo) & (t < hi)
            out = out + jnp.where(inside, between(values[i], values[i + 1], tau), 0.0)
        return out

    return schedule


def _linear_between(a: jax.Array, b: jax.Array, tau: jax.Array) -> jax.Array:
    return a + (b - a) * tau


def _cosine_between(a: jax.Array, b: jax.Array, tau: jax.Array) -> jax.Array:
    return b + (a - b) * 0.5 * (1 + jnp.cos(jnp.pi * tau))


def linear_onecycle_schedule(
    transition_steps: int,
    peak_value: Number,
    pct_start: float = 0.3,
    pct_final: float = 0.85,
    div_factor: Number = 25.0,
    final_div_factor: Number = 1e4,
) -> Schedule:
    r"""The one-cycle policy with linear pieces (Smith & Topin, 2018), as optax's.

    Linear from $\alpha_{max}/d$ up to $\alpha_{max}$ at step $\lfloor p_s T\rfloor$, back
    down to $\alpha_{max}/d$ at $\lfloor p_f T\rfloor$, then down to
    $\alpha_{max}/(d\, d_{final})$ at $T$: `piecewise_interpolate_schedule` with
    ``{int(pct_start*T): d, int(pct_final*T): 1/d, T: 1/d_final}`` (where two boundaries
    coincide on few steps, the later entry wins, as in optax).

    Args:
        transition_steps: $T > 0$, a Python int (it places the boundaries).
        peak_value: $\alpha_{max}$.
        pct_start: $p_s \in [0, 1]$, a Python number.
        pct_final: $p_f \in [p_s, 1]$, a Python number; gdjax refuses $p_f < p_s$ (a cycle
            that falls before it rises), which optax accepts.
        div_factor: $d > 0$.
        final_div_factor: $d_{final} > 0$.
    """
    steps = _static_steps("transition_steps", transition_steps)
    _fraction("pct_start", pct_start)
    _fraction("pct_final", pct_final)
    if pct_final < pct_start:
        raise ValueError(f"pct_final must be >= pct_start ({pct_start}); got {pct_final}")
    _checks.positive("div_factor", div_factor)
    _checks.positive("final_div_factor", final_div_factor)
    boundaries = {
        int(pct_start * steps): div_factor,
        int(pct_final * steps): 1.0 / div_factor,
        steps: 1.0 / final_div_factor,
    }
    return piecewise_interpolate_schedule("linear", peak_value / div_factor, boundaries)


def cosine_onecycle_schedule(
    transition_steps: int,
    peak_value: Number,
    pct_start: float = 0.3,
    div_factor: Number = 25.0,
    final_div_factor: Number = 1e4,
) -> Schedule:
    r"""The one-cycle policy with cosine pieces, as optax's.

    Half a cosine from $\alpha_{max}/d$ up to $\alpha_{max}$ at step $\lfloor p_s T\rfloor$,
    then half a cosine down to $\alpha_{max}/(d\, d_{final})$ at $T$:
    `piecewise_interpolate_schedule` with ``{int(pct_start*T): d, T: 1/(d d_final)}``. (gdjax's
    older `one_cycle_schedule` is the same curve with the rise at least one step long.)

    Args:
        transition_steps: $T > 0$, a Python int (it places the boundaries).
        peak_value: $\alpha_{max}$.
        pct_start: $p_s \in [0, 1]$, a Python number.
        div_factor: $d > 0$.
        final_div_factor: $d_{final} > 0$.
    """
    steps = _static_steps("transition_steps", transition_steps)
    _fraction("pct_start", pct_start)
    _checks.positive("div_factor", div_factor)
    _checks.positive("final_div_factor", final_div_factor)
    boundaries = {
        int(pct_start * steps): div_factor,
        steps: 1.0 / (div_factor * final_div_factor),
    }
    return piecewise_interpolate_schedule("cosine", peak_value / div_factor, boundaries)


def warmup_constant_schedule(
    init_value: Number, peak_value: Number, warmup_steps: Steps
) -> Schedule:
    r"""Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then constant.

    $$
    \alpha_t = \alpha_0 + (\alpha_{peak} - \alpha_0) \min(1, t / T_w)
    $$

    Args:
        init_value: $\alpha_0$.
        peak_value: $\alpha_{peak}$.
        warmup_steps: $T_w$; $T_w \le 0$ gives the constant $\alpha_0$ (as in optax, whose
            schedule is this `linear_schedule`).
    """
    return linear_schedule(init_value, peak_value, warmup_steps)


def warmup_exponential_decay_schedule(
    init_value: Number,
    peak_value: Number,
    warmup_steps: Steps,
    transition_steps: Steps,
    decay_rate: Number,
    transition_begin: Steps = 0,
    staircase: bool = False,
    end_value: Number | None = None,
) -> Schedule:
    r"""Linear warmup to ``peak_value``, then `exponential_decay` from it.

    $$
    \alpha_t = \begin{cases}
    \alpha_0 + (\alpha_{peak} - \alpha_0)\, t / T_w & t < T_w \\
    \alpha_{peak}\, r^{(t - T_w - t_0)/T} & t \ge T_w
    \end{cases}
    $$

    (the decay with `exponential_decay`'s ``staircase``, ``transition_begin`` $t_0$ and
    ``end_value``, counted from the end of the warmup).

    Args:
        init_value: $\alpha_0$.
        peak_value: $\alpha_{peak}$.
        warmup_steps: $T_w \ge 0$.
        transition_steps: $T$ of the decay.
        decay_rate: $r \ge 0$.
        transition_begin: $t_0$, steps held at the peak after the warmup.
        staircase: step decay; a Python bool.
        end_value: optional floor (ceiling when $r \ge 1$).
    """
    _begin("warmup_steps", warmup_steps)
    return join_schedules(
        [
            linear_schedule(init_value, peak_value, warmup_steps),
            exponential_decay(
                peak_value, transition_steps, decay_rate, transition_begin, staircase, end_value
            ),
        ],
        [warmup_steps],
    )


def sgdr_schedule(cosine_kwargs: Iterable[Mapping[str, Number]]) -> Schedule:
    r"""SGDR, warm restarts (Loshchilov & Hutter, 2017): warmup-cosine cycles one after another.

    Each cycle is ``warmup_cosine_decay_schedule(**kwargs)`` and lasts its ``decay_steps``;
    the next cycle restarts at its own step 0.

    Args:
        cosine_kwargs: one mapping per cycle with the arguments of
            `warmup_cosine_decay_schedule` (``init_value``, ``peak_value``, ``warmup_steps``,
            ``decay_steps``, optionally ``end_value`` and ``exponent``).

    Examples:
        >>> import gdjax
        >>> cycle = dict(init_value=0.0, peak_value=1.0, warmup_steps=2, decay_steps=10)
        >>> lr = gdjax.schedules.sgdr_schedule([cycle, cycle])
        >>> [round(float(lr(t)), 3) for t in (2, 9, 10, 12)]
        [1.0, 0.038, 0.0, 1.0]
    """
    cycles = [dict(kwargs) for kwargs in cosine_kwargs]
    if not cycles:
        raise ValueError("sgdr_schedule needs at least one cycle in cosine_kwargs; got none")
    schedules, ends, end = [], [], 0
    for i, kwargs in enumerate(cycles):
        if "decay_steps" not in kwargs:
            raise ValueError(f"cosine_kwargs[{i}] needs 'decay_steps' (the cycle's length)")
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        end = end + kwargs["decay_steps"]
        ends.append(end)
    return join_schedules(schedules, ends[:-1])


__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "one_cycle_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "step_decay",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
]
