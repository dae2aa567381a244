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
`piecewise_constant_schedule` and the number of schedules joined.

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
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from gdjax import _checks
from gdjax.base import Schedule

Number = float | int | jax.Array
Steps = int | jax.Array


def _steps(name: str, value: int | jax.Array) -> None:
    """A number of steps: an int > 0, or an integer JAX array (also traced; checked if concrete)."""
    _checks.count(name, value, minimum=1)


def _begin(name: str, value: int | jax.Array) -> None:
    """A step index: an int >= 0, or an integer JAX array (also traced; checked if concrete)."""
    _checks.count(name, value, minimum=0)


def _concrete(*values: object) -> bool:
    """Whether all values are known now (not traced), so they can be compared in Python."""
    return not any(_checks.is_traced(v) for v in values)


def _f32(count: Number) -> jax.Array:
    return jnp.asarray(count, jnp.float32)


def constant_schedule(value: Number) -> Schedule:
    r"""$\alpha_t = \alpha$ for every step.

    Args:
        value: the constant.
    """
    _checks.check_hyperparam("value", value)
    return lambda count: jnp.full([], value, jnp.float32) + 0 * _f32(count)


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
        transition_steps: $T > 0$.
        transition_begin: $t_0 \ge 0$, steps held at ``init_value`` first.
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
        transition_steps: $T > 0$.
        transition_begin: $t_0 \ge 0$.
    """
    _steps("transition_steps", transition_steps)
    _begin("transition_begin", transition_begin)

    def schedule(count):
        count = jnp.clip(_f32(count) - transition_begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * (frac**power) + end_value

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

    Args:
        init_value: $\alpha_0$.
        transition_steps: $T > 0$.
        decay_rate: $r > 0$ (below 1 decays, above 1 grows).
        transition_begin: $t_0 \ge 0$, steps held at ``init_value`` first.
        staircase: decay in discrete steps every $T$ steps; a Python bool.
        end_value: optional floor (or ceiling when $r > 1$).
    """
    _steps("transition_steps", transition_steps)
    _begin("transition_begin", transition_begin)
    _checks.positive("decay_rate", decay_rate)
    _checks.static_bool("staircase", staircase)

    def schedule(count):
        decreased = _f32(count) - transition_begin
        p = decreased / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(decreased <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is not None:
            grows = jnp.asarray(decay_rate) > 1
            value = jnp.where(grows, jnp.minimum(value, end_value), jnp.maximum(value, end_value))
        return value

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
        p = _f32(count) / decay_steps
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
        decay_steps: $T > 0$.
        alpha: $a$, the final value as a fraction of ``init_value``.
        exponent: $e$.
    """
    _steps("decay_steps", decay_steps)

    def schedule(count):
        count = jnp.minimum(_f32(count), decay_steps)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
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
        init_value: value at step 0.
        peak_value: value after ``warmup_steps``.
        warmup_steps: length of the linear warmup, > 0.
        decay_steps: total length, > ``warmup_steps``.
        end_value: final value.
        exponent: cosine exponent.
    """
    _steps("warmup_steps", warmup_steps)
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
    pairs = list((boundaries_and_scales or {}).items())
    for boundary, scale in pairs:
        if not isinstance(boundary, int) or isinstance(boundary, bool):
            raise TypeError(
                f"boundaries_and_scales keys must be Python ints (boundary steps); got "
                f"{type(boundary).__name__}: {boundary!r}"
            )
        _begin("boundary", boundary)
        _checks.non_negative(f"scale at boundary {boundary}", scale)
    pairs.sort(key=lambda pair: pair[0])

    def schedule(count):
        count = _f32(count)
        value = init_value * jnp.ones([], jnp.float32)
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
        rise = jnp.maximum(jnp.floor(pct_start * _f32(transition_steps)), 1).astype(jnp.int32)
    start = peak_value / div_factor
    end = start / final_div_factor

    def cosine_between(a: Number, b: Number, length: Steps) -> Schedule:
        def schedule(count):
            tau = jnp.clip(_f32(count) / jnp.maximum(_f32(length), 1.0), 0.0, 1.0)
            return a + (b - a) * 0.5 * (1 - jnp.cos(math.pi * tau))

        return schedule

    return join_schedules(
        [
            cosine_between(start, peak_value, rise),
            cosine_between(peak_value, end, transition_steps - rise),
        ],
        [rise],
    )


__all__ = [
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "inverse_time_decay",
    "join_schedules",
    "linear_schedule",
    "one_cycle_schedule",
    "piecewise_constant_schedule",
    "polynomial_schedule",
    "step_decay",
    "warmup_cosine_decay_schedule",
]
