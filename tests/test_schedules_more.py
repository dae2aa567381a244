"""optax's remaining schedules in gdjax, against optax at every step and at the edges."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdjax import schedules as S
from tests._opt_oracle import fast_jit

CYCLES = [
    {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20},
    {"init_value": 0.2, "peak_value": 0.5, "warmup_steps": 0, "decay_steps": 30, "end_value": 0.1},
    {"init_value": 0.0, "peak_value": 0.8, "warmup_steps": 3, "decay_steps": 10, "exponent": 2.0},
]

# name -> build(module): the same call on gdjax.schedules and on optax.
CASES = {
    "warmup_constant": lambda m: m.warmup_constant_schedule(0.0, 1.0, 10),
    "warmup_constant, no warmup": lambda m: m.warmup_constant_schedule(0.5, 1.0, 0),
    "warmup_exponential_decay": lambda m: m.warmup_exponential_decay_schedule(0.0, 1.0, 10, 5, 0.8),
    "warmup_exponential_decay, staircase, begin, end": lambda m: (
        m.warmup_exponential_decay_schedule(0.1, 1.0, 10, 7, 0.5, 3, True, 0.2)
    ),
    "warmup_exponential_decay, growth capped": lambda m: m.warmup_exponential_decay_schedule(
        0.1, 0.2, 4, 5, 1.5, end_value=0.5
    ),
    "warmup_exponential_decay, degenerate": lambda m: m.warmup_exponential_decay_schedule(
        0.1, 1.0, 0, 0, 0.5
    ),
    "warmup_exponential_decay, zero rate": lambda m: m.warmup_exponential_decay_schedule(
        0.1, 1.0, 5, 3, 0.0
    ),
    "linear_onecycle": lambda m: m.linear_onecycle_schedule(100, 1.0),
    "linear_onecycle, arguments": lambda m: m.linear_onecycle_schedule(
        100, 2.0, 0.1, 0.6, 10.0, 100.0
    ),
    "linear_onecycle, 3 steps": lambda m: m.linear_onecycle_schedule(3, 1.0),
    "linear_onecycle, 1 step": lambda m: m.linear_onecycle_schedule(1, 1.0),
    "linear_onecycle, whole range": lambda m: m.linear_onecycle_schedule(10, 1.0, 0.0, 1.0),
    "cosine_onecycle": lambda m: m.cosine_onecycle_schedule(100, 1.0),
    "cosine_onecycle, arguments": lambda m: m.cosine_onecycle_schedule(50, 0.5, 0.5, 5.0, 10.0),
    "cosine_onecycle, 1 step": lambda m: m.cosine_onecycle_schedule(1, 1.0),
    "cosine_onecycle, rise only": lambda m: m.cosine_onecycle_schedule(3, 1.0, pct_start=1.0),
    "piecewise_interpolate linear": lambda m: m.piecewise_interpolate_schedule(
        "linear", 1.0, {10: 0.5, 30: 0.0, 60: 3.0}
    ),
    "piecewise_interpolate cosine": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 2.0, {5: 4.0, 25: 0.01}
    ),
    "piecewise_interpolate, no boundaries": lambda m: m.piecewise_interpolate_schedule(
        "linear", 0.3
    ),
    "piecewise_interpolate, boundary 0": lambda m: m.piecewise_interpolate_schedule(
        "cosine", 1.0, {0: 2.0, 4: 0.5}
    ),
    "sgdr": lambda m: m.sgdr_schedule(CYCLES),
    "sgdr, one cycle": lambda m: m.sgdr_schedule(CYCLES[:1]),
}


def test_new_schedules_match_optax_at_every_step_and_the_edges():
    steps = jnp.concatenate([jnp.arange(131), jnp.array([200, 10**6, 2**31 - 1])])
    ours = {name: build(S) for name, build in CASES.items()}
    theirs = {name: build(optax) for name, build in CASES.items()}

    @fast_jit
    def go(t):
        return {name: (jax.vmap(ours[name])(t), jax.vmap(theirs[name])(t)) for name in CASES}

    for name, (got, want) in go(steps).items():
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=name)
    assert set(S.__all__) >= {name.split(",")[0].split()[0] + "_schedule" for name in CASES}


def test_new_schedules_in_closed_form():
    """A few values worked by hand."""
    one_cycle = S.linear_onecycle_schedule(100, 1.0)  # 0.04 -> 1 at 30 -> 0.04 at 85 -> 4e-6 at 100
    assert [round(float(one_cycle(t)), 6) for t in (0, 15, 30, 85, 100)] == [
        0.04,
        0.52,
        1.0,
        0.04,
        0.000004,
    ]
    sgdr = S.sgdr_schedule(CYCLES)
    # Cycle 2 (steps 20-49) has no warmup: it starts at its peak, 0.5; cycle 3 starts at 0.
    assert float(sgdr(20)) == pytest.approx(0.5) and float(sgdr(50)) == pytest.approx(0.0)
    assert float(sgdr(5)) == pytest.approx(1.0)  # the first cycle's peak
    cosine = S.piecewise_interpolate_schedule("cosine", 1.0, {10: 0.0})
    assert float(cosine(5)) == pytest.approx(0.5)  # half way down the half cosine


@pytest.mark.parametrize(
    "build, exc, message",
    [
        (lambda: S.piecewise_interpolate_schedule("step", 1.0), ValueError, "interpolate_type"),
        (
            lambda: S.piecewise_interpolate_schedule("linear", 1.0, {5: -1.0}),
            ValueError,
            "scale at boundary 5",
        ),
        (
            lambda: S.piecewise_interpolate_schedule("linear", 1.0, {2.5: 1.0}),
            TypeError,
            "keys must be Python ints",
        ),
        (lambda: S.linear_onecycle_schedule(0, 1.0), ValueError, "transition_steps"),
        (
            lambda: S.linear_onecycle_schedule(10, 1.0, pct_start=0.6, pct_final=0.5),
            ValueError,
            "pct_final must be >= pct_start",
        ),
        (lambda: S.cosine_onecycle_schedule(10, 1.0, pct_start=1.5), ValueError, "pct_start"),
        (lambda: S.cosine_onecycle_schedule(10, 1.0, div_factor=0.0), ValueError, "div_factor"),
        (lambda: S.sgdr_schedule([]), ValueError, "at least one cycle"),
        (lambda: S.sgdr_schedule([{"init_value": 0.0}]), ValueError, "decay_steps"),
        (
            lambda: S.warmup_exponential_decay_schedule(0.0, 1.0, -1, 5, 0.5),
            ValueError,
            "warmup_steps",
        ),
    ],
)
def test_bad_arguments_of_the_new_schedules_are_named(build, exc, message):
    with pytest.raises(exc, match=message):
        build()


def test_traced_transition_steps_of_a_one_cycle_schedule_are_refused_by_name():
    with pytest.raises(TypeError, match="transition_steps must be a Python int"):
        jax.jit(lambda n: S.cosine_onecycle_schedule(n, 1.0)(3))(jnp.asarray(10))
