"""Schedules against optax's (where optax has them) and closed forms (where it does not)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdjax import schedules as S

STEPS = np.arange(0, 130)

PARITY = {
    "constant": (S.constant_schedule(0.3), optax.constant_schedule(0.3)),
    "linear": (S.linear_schedule(1.0, 0.1, 50, 10), optax.linear_schedule(1.0, 0.1, 50, 10)),
    "polynomial": (
        S.polynomial_schedule(1.0, 0.01, 2.0, 80, 5),
        optax.polynomial_schedule(1.0, 0.01, 2.0, 80, 5),
    ),
    "exponential": (S.exponential_decay(0.5, 10, 0.9), optax.exponential_decay(0.5, 10, 0.9)),
    "exponential_staircase_begin_end": (
        S.exponential_decay(0.5, 10, 0.5, transition_begin=7, staircase=True, end_value=0.05),
        optax.exponential_decay(0.5, 10, 0.5, transition_begin=7, staircase=True, end_value=0.05),
    ),
    "exponential_growth_capped": (
        S.exponential_decay(0.1, 10, 1.5, end_value=0.4),
        optax.exponential_decay(0.1, 10, 1.5, end_value=0.4),
    ),
    "cosine": (S.cosine_decay_schedule(0.2, 100, 0.1), optax.cosine_decay_schedule(0.2, 100, 0.1)),
    "cosine_exponent": (
        S.cosine_decay_schedule(0.2, 100, 0.0, 2.0),
        optax.cosine_decay_schedule(0.2, 100, 0.0, 2.0),
    ),
    "warmup_cosine": (
        S.warmup_cosine_decay_schedule(0.0, 1.0, 20, 120, 0.05),
        optax.warmup_cosine_decay_schedule(0.0, 1.0, 20, 120, 0.05),
    ),
    "piecewise_constant": (
        S.piecewise_constant_schedule(1.0, {30: 0.1, 60: 0.5}),
        optax.piecewise_constant_schedule(1.0, {30: 0.1, 60: 0.5}),
    ),
    "join": (
        S.join_schedules([S.constant_schedule(1.0), S.linear_schedule(1.0, 0.0, 50)], [40]),
        optax.join_schedules(
            [optax.constant_schedule(1.0), optax.linear_schedule(1.0, 0.0, 50)], [40]
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_schedule_matches_optax(name):
    ours, theirs = PARITY[name]
    got = jax.vmap(ours)(jnp.asarray(STEPS))
    want = np.array([float(theirs(int(s))) for s in STEPS])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_step_decay_closed_form():
    sched = S.step_decay(0.1, step_size=30, factor=0.5)
    got = [float(sched(s)) for s in (0, 29, 30, 59, 60, 95)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125], rtol=1e-6)


def test_inverse_time_decay_closed_form():
    sched = S.inverse_time_decay(1.0, decay_rate=0.5, decay_steps=10)
    for s in (0, 5, 10, 100):
        assert float(sched(s)) == pytest.approx(1.0 / (1 + 0.5 * s / 10), rel=1e-6)
    stair = S.inverse_time_decay(1.0, 0.5, 10, staircase=True)
    assert float(stair(19)) == pytest.approx(1.0 / 1.5)


def test_one_cycle_closed_form():
    peak, total, div, final_div = 1.0, 100, 25.0, 1e4
    sched = S.one_cycle_schedule(
        total, peak, pct_start=0.3, div_factor=div, final_div_factor=final_div
    )
    start, end = peak / div, peak / div / final_div

    def reference(t):  # half-cosine up for 30 steps, half-cosine down for 70
        if t < 30:
            a, b, tau = start, peak, t / 30
        else:
            a, b, tau = peak, end, min((t - 30) / 70, 1.0)
        return a + (b - a) * 0.5 * (1 - math.cos(math.pi * tau))

    got = jax.vmap(sched)(jnp.arange(0, 120))
    np.testing.assert_allclose(got, [reference(t) for t in range(120)], rtol=1e-5, atol=1e-6)
    assert int(jnp.argmax(got)) == 30


def test_schedule_values_may_be_traced():
    peaks = jnp.array([0.1, 0.2, 0.4])
    values = jax.jit(jax.vmap(lambda p: S.cosine_decay_schedule(p, 10)(5)))(peaks)
    np.testing.assert_allclose(values, peaks * 0.5, rtol=1e-6)


def _piecewise(init_value=1.0, scale=0.1):
    return S.piecewise_constant_schedule(init_value, {10: scale, 25: 0.5})


def _join(boundary=15, value=1.0):
    return S.join_schedules(
        [S.constant_schedule(value), S.linear_schedule(value, 0.0, 20)], [boundary]
    )


def _interpolate(init_value=1.0, scale=0.1):
    return S.piecewise_interpolate_schedule("cosine", init_value, {10: scale, 25: 0.5})


def _sgdr(peak_value=1.0, cycle=20):
    kwargs = {"init_value": 0.0, "peak_value": peak_value, "warmup_steps": 3, "decay_steps": cycle}
    return S.sgdr_schedule([kwargs, kwargs, kwargs])


# schedule -> (factory, base arguments, {argument: values to vmap over}). Floats are values,
# ints are step counts (vmapped as int32 arrays).
VMAPPED = {
    "constant_schedule": (S.constant_schedule, {"value": 0.3}, {"value": [0.1, 0.5, 2.0]}),
    "linear_schedule": (
        S.linear_schedule,
        {"init_value": 1.0, "end_value": 0.1, "transition_steps": 20, "transition_begin": 5},
        {
            "init_value": [0.5, 1.0, 2.0],
            "end_value": [0.0, 0.1, 3.0],
            "transition_steps": [5, 20, 30],
            "transition_begin": [0, 5, 10],
        },
    ),
    "polynomial_schedule": (
        S.polynomial_schedule,
        {"init_value": 1.0, "end_value": 0.01, "power": 2.0, "transition_steps": 30},
        {
            "init_value": [0.5, 1.0, 2.0],
            "end_value": [0.0, 0.1, 0.3],
            "power": [0.5, 1.0, 3.0],
            "transition_steps": [10, 20, 40],
            "transition_begin": [0, 4, 9],
        },
    ),
    "exponential_decay": (
        S.exponential_decay,
        {"init_value": 1.0, "transition_steps": 10, "decay_rate": 0.8, "end_value": 0.2},
        {
            "init_value": [0.5, 1.0, 2.0],
            "decay_rate": [0.5, 0.9, 1.5],
            "end_value": [0.05, 0.2, 0.6],
            "transition_steps": [3, 10, 25],
            "transition_begin": [0, 5, 12],
        },
    ),
    "step_decay": (
        S.step_decay,
        {"init_value": 1.0, "step_size": 10},
        {"init_value": [0.5, 1.0, 2.0], "factor": [0.1, 0.5, 0.9], "step_size": [3, 10, 25]},
    ),
    "inverse_time_decay": (
        S.inverse_time_decay,
        {"init_value": 1.0, "decay_rate": 0.5, "decay_steps": 10},
        {"init_value": [0.5, 1.0, 2.0], "decay_rate": [0.0, 0.5, 2.0], "decay_steps": [1, 10, 30]},
    ),
    "cosine_decay_schedule": (
        S.cosine_decay_schedule,
        {"init_value": 1.0, "decay_steps": 40, "alpha": 0.1},
        {
            "init_value": [0.5, 1.0, 2.0],
            "alpha": [0.0, 0.1, 0.5],
            "exponent": [0.5, 1.0, 2.0],
            "decay_steps": [10, 40, 60],
        },
    ),
    "warmup_cosine_decay_schedule": (
        S.warmup_cosine_decay_schedule,
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 50},
        {
            "init_value": [0.0, 0.1, 0.5],
            "peak_value": [0.0, 0.5, 2.0],  # 0: optax's alpha = 0 branch, now traced
            "end_value": [0.0, 0.1, 0.4],
            "exponent": [0.5, 1.0, 2.0],
            "warmup_steps": [1, 10, 20],
            "decay_steps": [30, 50, 60],
        },
    ),
    "piecewise_constant_schedule": (
        _piecewise,
        {},
        {"init_value": [0.5, 1.0, 2.0], "scale": [0.0, 0.1, 2.0]},
    ),
    "one_cycle_schedule": (
        S.one_cycle_schedule,
        {"transition_steps": 50, "peak_value": 1.0},
        {
            "peak_value": [0.5, 1.0, 2.0],
            "pct_start": [0.1, 0.3, 0.7],
            "div_factor": [2.0, 25.0, 100.0],
            "final_div_factor": [2.0, 10.0, 1e4],
            "transition_steps": [10, 50, 60],
        },
    ),
    "join_schedules": (_join, {}, {"value": [0.5, 1.0, 2.0], "boundary": [5, 15, 40]}),
    # optax's remaining schedules (issue 10)
    "warmup_constant_schedule": (
        S.warmup_constant_schedule,
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10},
        {"init_value": [0.0, 0.2, 0.5], "peak_value": [0.5, 1.0, 2.0], "warmup_steps": [0, 10, 30]},
    ),
    "warmup_exponential_decay_schedule": (
        S.warmup_exponential_decay_schedule,
        {
            "init_value": 0.0,
            "peak_value": 1.0,
            "warmup_steps": 10,
            "transition_steps": 5,
            "decay_rate": 0.8,
            "end_value": 0.1,
        },
        {
            "init_value": [0.0, 0.2, 0.5],
            "peak_value": [0.5, 1.0, 2.0],
            "warmup_steps": [0, 10, 30],
            "transition_steps": [0, 5, 20],
            "decay_rate": [0.0, 0.5, 1.5],
            "transition_begin": [-3, 0, 7],
            "end_value": [0.05, 0.1, 0.3],
        },
    ),
    "piecewise_interpolate_schedule": (
        _interpolate,
        {},
        {"init_value": [0.5, 1.0, 2.0], "scale": [0.0, 0.1, 2.0]},
    ),
    "linear_onecycle_schedule": (
        lambda **kw: S.linear_onecycle_schedule(40, **kw),
        {"peak_value": 1.0},
        {
            "peak_value": [0.5, 1.0, 2.0],
            "div_factor": [2.0, 25.0, 100.0],
            "final_div_factor": [2.0, 10.0, 1e4],
        },
    ),
    "cosine_onecycle_schedule": (
        lambda **kw: S.cosine_onecycle_schedule(40, **kw),
        {"peak_value": 1.0},
        {
            "peak_value": [0.5, 1.0, 2.0],
            "div_factor": [2.0, 25.0, 100.0],
            "final_div_factor": [2.0, 10.0, 1e4],
        },
    ),
    "sgdr_schedule": (_sgdr, {}, {"peak_value": [0.5, 1.0, 2.0], "cycle": [12, 20, 35]}),
}


def test_every_schedule_is_vmapped():
    assert set(VMAPPED) == set(S.__all__)


@pytest.mark.parametrize("name", sorted(VMAPPED))
def test_vmap_over_each_argument_equals_the_unbatched_schedule(name):
    make, base, sweeps = VMAPPED[name]
    steps = jnp.arange(60)
    for arg, values in sweeps.items():
        dtype = jnp.int32 if isinstance(values[0], int) else jnp.float32
        batched = jax.vmap(lambda v, arg=arg: make(**{**base, arg: v})(steps))(
            jnp.asarray(values, dtype)
        )
        for member, value in zip(batched, values, strict=True):
            alone = make(**{**base, arg: value})(steps)  # Python-number arguments
            np.testing.assert_allclose(member, alone, rtol=1e-5, atol=1e-7, err_msg=arg)
        assert not np.allclose(batched[0], batched[-1]), f"{arg} was ignored"
