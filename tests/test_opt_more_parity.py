"""The second half of optax's aliases, with their ``scale_by_*`` transforms, against optax.

Each case runs 100 steps of random gradients over a nested tree, ``jax.vmap``-ed over two values
of a hyperparameter (mostly the peak of a learning-rate schedule), for gdjax and for optax; all
cases are one compiled program. Rprop is checked against a NumPy oracle of the paper's rule,
since optax 0.2.8's Rprop returns each update one step late.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from tests._opt_more import (
    FAST_COMPILE,
    STEPS,
    Case,
    assert_close,
    members_differ,
    problem,
    run_cases,
    trajectory,
)


def ours_sched(v):
    return gdjax.schedules.cosine_decay_schedule(v, STEPS, 0.1)


def theirs_sched(v):
    return optax.cosine_decay_schedule(v, STEPS, 0.1)


def _optax_optimistic_adam(v):
    with warnings.catch_warnings():  # optax deprecates this interface
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(v)


CASES = {
    "sign_sgd": Case(
        lambda v: gdjax.sign_sgd(ours_sched(v)), lambda v: optax.sign_sgd(theirs_sched(v))
    ),
    "signum": Case(
        lambda v: gdjax.signum(ours_sched(v), beta=0.8),
        lambda v: optax.signum(theirs_sched(v), beta=0.8),
    ),
    "novograd": Case(
        lambda v: gdjax.novograd(ours_sched(v), b2=0.5, weight_decay=1e-2),
        lambda v: optax.novograd(theirs_sched(v), b2=0.5, weight_decay=1e-2),
    ),
    "radam": Case(lambda v: gdjax.radam(ours_sched(v)), lambda v: optax.radam(theirs_sched(v))),
    "scale_by_radam nesterov": Case(
        lambda v: gdjax.chain(
            gdjax.scale_by_radam(b2=0.99, threshold=4.0, nesterov=True), gdjax.scale(-v)
        ),
        lambda v: optax.chain(
            optax.scale_by_radam(b2=0.99, threshold=4.0, nesterov=True), optax.scale(-v)
        ),
    ),
    "yogi": Case(lambda v: gdjax.yogi(ours_sched(v)), lambda v: optax.yogi(theirs_sched(v))),
    "sm3": Case(lambda v: gdjax.sm3(v), lambda v: optax.sm3(v)),
    "scale_by_sm3": Case(
        lambda v: gdjax.chain(gdjax.scale_by_sm3(b1=v, b2=0.9), gdjax.scale(-0.01)),
        lambda v: optax.chain(optax.scale_by_sm3(b1=v, b2=0.9), optax.scale(-0.01)),
        values=(0.0, 0.5),
    ),
    "optimistic_gradient_descent": Case(
        lambda v: gdjax.optimistic_gradient_descent(ours_sched(v), alpha=0.5, beta=0.7),
        lambda v: optax.optimistic_gradient_descent(theirs_sched(v), alpha=0.5, beta=0.7),
    ),
    "optimistic_adam": Case(lambda v: gdjax.optimistic_adam(v), _optax_optimistic_adam),
    "optimistic_adam_v2": Case(
        lambda v: gdjax.optimistic_adam_v2(ours_sched(v), alpha=0.5, beta=0.8),
        lambda v: optax.optimistic_adam_v2(theirs_sched(v), alpha=0.5, beta=0.8),
    ),
    "polyak_sgd": Case(
        lambda v: gdjax.polyak_sgd(0.05, scaling=ours_sched(v), f_min=0.5, variant="sps+"),
        lambda v: optax.polyak_sgd(0.05, scaling=theirs_sched(v), f_min=0.5, variant="sps+"),
        values=(0.5, 1.0),
        with_value=True,
    ),
}

#: The named optimizers these tests check against optax (with a schedule where optax takes one;
#: ``sm3``, ``optimistic_adam`` and ``rprop`` take numbers in optax).
CHECKED = {name for name in CASES if name in gdjax.optimizers.__all__} | {"rprop"}


@pytest.fixture(scope="module")
def results():
    return run_cases(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_for_each_hyperparameter_value(results, name):
    ours, _, theirs = results[name]
    case = CASES[name]
    assert_close(ours, theirs, case.rtol, case.atol, what=name)
    assert members_differ(ours), "the vmapped hyperparameter made no difference"


@pytest.mark.parametrize(
    "name", sorted(n for n in CASES if n in gdjax.optimizers.__all__ and n != "optimistic_adam")
)
def test_the_learning_rate_applied_is_readable_from_the_state(results, name):
    _, state, _ = results[name]
    if name == "sm3":  # a constant rate (optax's sm3 takes a number) is not recorded
        with pytest.raises(KeyError, match="learning_rate"):
            gdjax.get_hyperparam(state, "learning_rate")
        return
    want = [float(ours_sched(v)(STEPS - 1)) for v in CASES[name].values]
    got = gdjax.get_hyperparam(state, "learning_rate")
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_optimistic_adam_records_its_learning_rate_as_alpha(results):
    _, state, _ = results["optimistic_adam"]
    values = CASES["optimistic_adam"].values
    np.testing.assert_allclose(gdjax.get_hyperparam(state, "alpha"), values, rtol=1e-6)
    np.testing.assert_allclose(gdjax.get_hyperparam(state, "beta"), values, rtol=1e-6)
    with pytest.raises(TypeError, match="optimistic_adam_v2"):
        gdjax.optimistic_adam(ours_sched(0.1))


def rprop_oracle(grads: list[np.ndarray], lr, eta_minus, eta_plus, lo, hi) -> list[np.ndarray]:
    """iRprop- (Igel & Huesken 2000; torch.optim.Rprop): the update applied at each step."""
    step = np.full_like(grads[0], lr)
    prev = np.zeros_like(grads[0])
    out = []
    for g in grads:
        s = g * prev
        step = np.where(s > 0, np.minimum(step * eta_plus, hi), step)
        step = np.where(s < 0, np.maximum(step * eta_minus, lo), step)
        g = np.where(s < 0, 0.0, g)
        out.append(-step * np.sign(g))
        prev = g
    return out


def test_rprop_follows_the_paper_and_optax_lags_one_step_behind():
    # Gradients with persistent signs and flips, on a vector and a matrix.
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], size=(40, 6), p=[0.3, 0.7])
    raw = signs * rng.uniform(0.5, 2.0, size=(40, 6))
    grads = {"v": jnp.asarray(raw[:, :2]), "m": jnp.asarray(raw[:, 2:].reshape(40, 2, 2))}
    params = jax.tree.map(lambda g: jnp.zeros(g.shape[1:]), grads)

    def updates(opt):
        def step(state, g):
            u, state = opt.update(g, state, params)
            return state, u

        return jax.lax.scan(step, opt.init(params), grads)

    run = jax.jit(
        lambda: (
            updates(gdjax.rprop(0.1, 0.4, 1.3, 0.02, 0.5)),
            updates(optax.rprop(0.1, 0.4, 1.3, 0.02, 0.5)),
        )
    )
    (state, ours), (theirs_state, theirs) = run()
    flat = np.concatenate([raw[:, :2], raw[:, 2:]], axis=1)
    want = np.stack(rprop_oracle(list(flat), 0.1, 0.4, 1.3, 0.02, 0.5))
    got = np.concatenate([ours["v"], np.asarray(ours["m"]).reshape(40, 4)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # The step sizes agree with optax; its update at t is ours at t-1 (zeroed on a flip).
    assert_close(state[0].step_sizes, theirs_state[0].step_sizes)
    theirs_flat = np.concatenate([theirs["v"], np.asarray(theirs["m"]).reshape(40, 4)], axis=1)
    flipped = flat[1:] * np.concatenate([flat[:1], flat[1:-1]]) < 0
    np.testing.assert_allclose(theirs_flat[0], 0.0)
    np.testing.assert_allclose(theirs_flat[1:][~flipped], got[:-1][~flipped], rtol=1e-6)
    assert float(gdjax.get_hyperparam(state, "learning_rate")) == pytest.approx(0.1)


def test_sm3_treats_a_scalar_like_a_one_element_vector():
    # optax.scale_by_sm3 raises IndexError on a scalar; gdjax gives it a full accumulator.
    grads = jnp.asarray([0.5, -2.0, 1.0])
    run = jax.jit(
        lambda p, g: (
            trajectory(gdjax.sm3(0.1), p[0], g[0])[0],
            trajectory(gdjax.sm3(0.1), p[1], g[1])[0],
        )
    )
    scalar, vector = run((jnp.asarray(1.0), jnp.ones(1)), (grads, grads[:, None]))
    np.testing.assert_allclose(scalar, vector[0], rtol=1e-6)
    # By hand: nu_t = sum of g^2 so far, m_t = 0.1 m + 0.9 g / sqrt(nu_t).
    m, nu, p = 0.0, 0.0, 1.0
    for g in [0.5, -2.0, 1.0]:
        nu += g * g
        m = 0.9 * m + 0.1 * g / np.sqrt(nu + 1e-8)
        p -= 0.1 * m
    assert float(scalar) == pytest.approx(p, rel=1e-5)


def test_polyak_sgd_refuses_a_missing_loss_value():
    opt = gdjax.polyak_sgd()
    params = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match="value=loss"):
        opt.update(params, opt.init(params), params)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gdjax.radam(-1.0), "learning_rate"),
        (lambda: gdjax.yogi(0.1, b2=1.0), "b2"),
        (lambda: gdjax.novograd(0.1, weight_decay=-1.0), "weight_decay"),
        (lambda: gdjax.sm3(0.1, momentum=1.5), "b1"),
        (lambda: gdjax.rprop(0.1, min_step_size=1.0, max_step_size=0.5), "min_step_size"),
        (lambda: gdjax.polyak_sgd(variant="sps++"), "variant"),
        (lambda: gdjax.signum(0.1, beta=-0.1), "beta"),
        (lambda: gdjax.optimistic_gradient_descent(0.1, alpha="a"), "alpha"),
    ],
)
def test_bad_arguments_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_novograd_with_weight_decay_needs_params():
    opt = gdjax.novograd(0.1, weight_decay=0.1)
    g = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="needs params"):
        opt.update(g, opt.init(g))
    # Without weight decay params are not needed (optax needs them anyway).
    opt = gdjax.novograd(0.1)
    u, _ = opt.update(g, opt.init(g))
    assert np.all(np.isfinite(u["w"]))


def test_complex_gradients_use_the_squared_modulus():
    # Yogi's second moment takes |g|^2, as optax's does (g * g would be wrong); the newer
    # transforms share that moment code.
    params = {"z": jnp.asarray([1.0 + 1.0j, -0.5j])}
    grads = problem(params, steps=20)[1]
    assert jnp.iscomplexobj(grads["z"])
    run = jax.jit(
        lambda: [trajectory(o, params, grads)[0] for o in (gdjax.yogi(0.1), optax.yogi(0.1))],
        compiler_options=FAST_COMPILE,
    )
    got, want = run()
    assert_close(got, want)
