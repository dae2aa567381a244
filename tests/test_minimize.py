"""gdjax.minimize: stopping rules, history, any optax/gdjax method, vmap over starts and
hyperparameters, and errors raised before anything is compiled."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import _minimize


def quadratic(p):
    """Minimum 0 at w = (1, -2), b = 3; gradient descent with lr 0.1 contracts by 0.8."""
    return jnp.sum((p["w"] - jnp.array([1.0, -2.0])) ** 2) + (p["b"] - 3.0) ** 2


P0 = {"w": jnp.zeros(2), "b": jnp.array(0.0)}


def test_gradient_descent_history_follows_the_closed_form():
    res = gdjax.minimize(quadratic, P0, method=gdjax.sgd(0.1), tol=1e-3, max_steps=100)
    # p_k - p* = 0.8^k (p_0 - p*), so f_k = 0.64^k f_0 and |g_k| = 2 * 0.8^k |p_0 - p*|
    k = int(res.steps)
    f0, dist0 = 14.0, np.sqrt(14.0)
    assert k == int(np.ceil(np.log(1e-3 / (2 * dist0)) / np.log(0.8)))
    np.testing.assert_allclose(
        res.history["value"][: k + 1], f0 * 0.64 ** np.arange(k + 1), rtol=2e-3
    )
    np.testing.assert_allclose(res.history["grad_norm"][k], 2 * dist0 * 0.8**k, rtol=1e-3)
    assert np.all(np.isnan(res.history["value"][k + 1 :])) and res.history["value"].shape == (101,)
    assert res.reason == "gradient norm below tol" and bool(res.converged)
    assert float(res.grad_norm) <= 1e-3 and float(res.value) == pytest.approx(
        res.history["value"][k]
    )


def test_budget_relative_change_and_non_finite_stops():
    budget = gdjax.minimize(quadratic, P0, method=gdjax.sgd(1e-3), max_steps=5)
    assert budget.reason == "max_steps reached" and int(budget.steps) == 5
    assert not bool(budget.converged)
    # relative change: f shrinks by 0.36 f_k per step, below rtol * max(f, 1) once f_k < rtol/0.36
    change = gdjax.minimize(quadratic, P0, method=gdjax.sgd(0.1), tol=0.0, rtol=1e-3)
    assert change.reason == "relative change below rtol" and bool(change.converged)
    k = int(change.steps)
    assert 0.36 * 14.0 * 0.64 ** (k - 1) <= 1e-3 < 0.36 * 14.0 * 0.64 ** (k - 2)

    def log_barrier(x):  # undefined for x <= 0: a large step leaves the domain
        return -jnp.log(x) + x

    bad = gdjax.minimize(log_barrier, jnp.array(2.0), method=gdjax.sgd(5.0), max_steps=10)
    assert bad.reason == "non-finite value or gradient" and not bool(bad.converged)
    assert float(bad.params) == 2.0 and int(bad.steps) == 0  # the last finite point


def test_an_optax_optimizer_as_method():
    res = gdjax.minimize(quadratic, P0, method=optax.adam(0.1), tol=1e-4, max_steps=3000)
    assert res.converged and float(res.value) < 1e-8
    # a bare GradientTransformation (no extra arguments) works too: f_k = 0.64^k f_0 again
    bare = gdjax.minimize(quadratic, P0, method=optax.scale(-0.1), max_steps=3)
    np.testing.assert_allclose(bare.history["value"], 14.0 * 0.64 ** np.arange(4), rtol=1e-5)


def test_vmap_over_starting_points_and_learning_rates():
    def double_well(x):  # minima at ±1, a maximum at 0
        return (x**2 - 1.0) ** 2

    starts = jnp.array([-2.0, -0.3, 0.4, 1.7])
    many = jax.vmap(lambda x: gdjax.minimize(double_well, x, method=gdjax.lbfgs(), tol=1e-5))(
        starts
    )
    np.testing.assert_allclose(many.params, [-1.0, -1.0, 1.0, 1.0], atol=1e-5)
    assert many.reason == ["gradient norm below tol"] * 4
    # the gradient reused from the line search is the gradient at the returned point
    true_norms = jnp.abs(jax.vmap(jax.grad(double_well))(many.params))
    np.testing.assert_allclose(many.grad_norm, true_norms, rtol=1e-5, atol=1e-9)
    assert many.history["value"].shape == (4, 1001)

    # gradient descent contracts by 1 - 2 lr per step: each lane stops on its own
    lrs = jnp.array([0.05, 0.1, 0.2])
    steps = jax.vmap(
        lambda lr: gdjax.minimize(quadratic, P0, method=gdjax.sgd(lr), tol=1e-3).steps
    )(lrs)
    expected = [int(np.ceil(np.log(1e-3 / (2 * np.sqrt(14.0))) / np.log(1 - 2 * lr))) for lr in lrs]
    assert steps.tolist() == expected


def test_simulated_annealing_returns_the_best_point_and_is_keyed():
    def rastrigin(x):
        return 10.0 * x.size + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x))

    cool = gdjax.schedules.exponential_decay(5.0, 400, 1e-2)
    x0 = jnp.array([2.1, -3.2])
    sa = gdjax.simulated_annealing(cool, 0.4, key=0)

    def run(key):
        return gdjax.minimize(rastrigin, x0, method=sa, max_steps=400, key=key)

    a, b, c = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    assert a.reason == "max_steps reached" and np.isnan(float(a.grad_norm))
    state = a.state[0]
    assert float(a.value) == float(state.best_value) == pytest.approx(float(rastrigin(a.params)))
    assert float(a.value) <= np.nanmin(a.history["value"]) and float(a.value) < float(rastrigin(x0))


def test_the_compiled_loop_is_reused_for_new_starting_values():
    method = gdjax.sgd(0.1)
    gdjax.minimize(quadratic, P0, method=method, max_steps=7)
    before = _minimize._solve._cache_size()
    gdjax.minimize(quadratic, {"w": jnp.ones(2), "b": jnp.array(1.0)}, method=method, max_steps=7)
    assert _minimize._solve._cache_size() == before


def test_errors_are_raised_before_anything_is_compiled(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before checking the arguments")

    monkeypatch.setattr(_minimize, "_solve", no_compile)
    sgd = gdjax.sgd(0.1)
    with pytest.raises(ValueError, match=r"fun must return a scalar.*shape \(2,\)"):
        gdjax.minimize(lambda p: p * 2.0, jnp.ones(2), method=sgd)
    with pytest.raises(ValueError, match=r"not finite: \['w'\] holds 1 NaN/inf"):
        gdjax.minimize(quadratic, {"w": jnp.array([1.0, jnp.inf]), "b": 0.0}, method=sgd)
    with pytest.raises(ValueError, match="max_steps must be a Python int >= 1"):
        gdjax.minimize(quadratic, P0, method=sgd, max_steps=0)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        gdjax.minimize(quadratic, P0, method=sgd, tol=-1.0)
    with pytest.raises(TypeError, match="method must be a gradient transformation"):
        gdjax.minimize(quadratic, P0, method="lbfgs")
    with pytest.raises(TypeError, match=r"\['b'\] has dtype int32"):
        gdjax.minimize(quadratic, {"w": jnp.zeros(2), "b": jnp.array(0)}, method=sgd)
    # the methods' own checks run before the loop is compiled, too
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"5,001 entries.*hessian_free"):
        gdjax.minimize(lambda w: jnp.sum(w**2), jnp.ones(5001), method=gdjax.newton())
