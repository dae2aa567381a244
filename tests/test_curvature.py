"""gdjax.curvature against closed-form Hessians, numpy.linalg.solve and numpy.linalg.eigh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax
from gdjax import curvature


def quartic(a: np.ndarray):
    """f(x) = x'Ax/2 + sum(x^4)/4, whose Hessian is A + 3 diag(x^2) (by hand)."""
    aj = jnp.asarray(a)
    return lambda p: 0.5 * p["x"] @ aj @ p["x"] + jnp.sum(p["x"] ** 4) / 4.0 + p["s"] ** 2


def spd(n: int, seed: int, low: float = 0.5, high: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    return (q * np.linspace(low, high, n)) @ q.T


def test_hvp_and_hessian_match_the_hand_derived_hessian():
    a = spd(5, 0)
    f = quartic(a)
    x = np.array([0.5, -1.0, 2.0, 0.0, 1.5])
    params = {"s": jnp.asarray(0.3), "x": jnp.asarray(x)}
    h = np.zeros((6, 6))  # ravel order: "s" then "x"
    h[0, 0] = 2.0
    h[1:, 1:] = a + 3.0 * np.diag(x**2)
    v = {"s": jnp.asarray(-1.0), "x": jnp.arange(5.0)}
    hv, dense = jax.jit(lambda p, v: (curvature.hvp(f, p, v), curvature.hessian(f, p)))(params, v)
    expected = h @ np.concatenate([[-1.0], np.arange(5.0)])
    np.testing.assert_allclose(hv["s"], expected[0], rtol=1e-5)
    np.testing.assert_allclose(hv["x"], expected[1:], rtol=1e-5)
    np.testing.assert_allclose(dense, h, rtol=1e-5, atol=1e-5)
    assert curvature.num_params(params) == 6


def test_conjugate_gradient_solves_spd_systems_and_stops_on_negative_curvature():
    a = spd(20, 1)
    b = np.random.default_rng(2).normal(size=20)
    aj = jnp.asarray(a)
    res = curvature.conjugate_gradient(lambda v: aj @ v, jnp.asarray(b), max_steps=100, tol=1e-7)
    np.testing.assert_allclose(res.x, np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    assert not bool(res.negative_curvature) and 1 < int(res.steps) <= 60
    indefinite = jnp.diag(jnp.array([1.0, -1.0]))
    res = curvature.conjugate_gradient(lambda v: indefinite @ v, jnp.array([1.0, 1.0]))
    assert bool(res.negative_curvature) and int(res.steps) == 0
    np.testing.assert_array_equal(res.x, [0.0, 0.0])


def test_lanczos_extreme_eigenvalues_match_eigh():
    rng = np.random.default_rng(3)
    q = np.linalg.qr(rng.normal(size=(40, 40)))[0]
    eig = np.concatenate([[-3.0, -1.0], np.linspace(0.1, 5.0, 37), [25.0]])
    a = (q * eig) @ q.T
    aj = jnp.asarray(a, jnp.float32)
    f = lambda x: 0.5 * x @ aj @ x  # noqa: E731

    @jax.jit
    @jax.vmap  # jittable and vmappable (over keys here): fit's per-epoch sharpness diagnostic
    def measure(key):
        x = jnp.zeros(40)
        power = curvature.top_hessian_eigenvalue(f, x, key=key, num_iters=200, method="power")
        return curvature.hessian_eigenvalues(f, x, key=key, num_iters=25), power

    spectra, power = measure(jax.random.split(jax.random.key(0), 2))
    np.testing.assert_allclose(spectra.max_eigenvalue, [25.0, 25.0], rtol=1e-4)
    np.testing.assert_allclose(power, [25.0, 25.0], rtol=1e-3)
    spectrum = jax.tree.map(lambda v: v[0], spectra)
    exact = np.linalg.eigh(a)
    assert float(spectrum.max_eigenvalue) == pytest.approx(exact.eigenvalues[-1], rel=1e-4)
    assert float(spectrum.min_eigenvalue) == pytest.approx(exact.eigenvalues[0], rel=1e-4)
    # the directions are the eigenvectors (up to sign)
    assert abs(np.dot(spectrum.max_vector, exact.eigenvectors[:, -1])) == pytest.approx(1, abs=1e-3)
    assert abs(np.dot(spectrum.min_vector, exact.eigenvectors[:, 0])) == pytest.approx(1, abs=1e-3)


def test_lanczos_restarts_when_the_krylov_space_is_exhausted():
    """A Hessian with two distinct eigenvalues spans a 2-D Krylov space; the remaining steps
    must restart on fresh directions instead of inventing eigenvalues (a spurious 0)."""
    u = np.ones(8) / np.sqrt(8)
    a = 2.0 * np.eye(8) + 5.0 * np.outer(u, u)  # eigenvalues 7 (once) and 2 (seven times)
    aj = jnp.asarray(a, jnp.float32)
    f = lambda x: 0.5 * x @ aj @ x  # noqa: E731
    key = jax.random.key(1)
    spectrum, top = jax.jit(
        lambda x: (
            curvature.hessian_eigenvalues(f, x, key=key, num_iters=8),
            curvature.top_hessian_eigenvalue(f, x, key=key, num_iters=8),
        )
    )(jnp.zeros(8))
    np.testing.assert_allclose(np.sort(spectrum.eigenvalues), [2.0] * 7 + [7.0], rtol=1e-4)
    assert float(top) == pytest.approx(7.0, rel=1e-5)


def saddle(p):
    """Saddle at the origin (Hessian eigenvalues 2, -2), minima -1 at (0, ±√2)."""
    return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4


classify = jax.jit(lambda p: curvature.saddle_test(saddle, p, key=jax.random.key(0)))


def test_saddle_test_classifies_points_and_gives_the_descent_direction():
    at_saddle = classify(jnp.zeros(2))
    assert bool(at_saddle.is_saddle) and not bool(at_saddle.is_minimum)
    assert float(at_saddle.min_eigenvalue) == pytest.approx(-2.0, rel=1e-5)
    assert float(at_saddle.max_eigenvalue) == pytest.approx(2.0, rel=1e-5)
    d = at_saddle.direction
    assert abs(float(d[1])) == pytest.approx(1.0, abs=1e-5) and abs(float(d[0])) < 1e-5
    assert float(saddle(0.1 * d)) < 0.0  # f decreases along it although the gradient vanishes
    at_min = classify(jnp.array([0.0, np.sqrt(2.0)]))
    assert bool(at_min.is_minimum) and not bool(at_min.is_saddle)
    assert float(at_min.min_eigenvalue) == pytest.approx(2.0, rel=1e-4)
    away = classify(jnp.array([1.0, 0.0]))
    assert not bool(away.is_critical) and float(away.grad_norm) == pytest.approx(2.0)


def test_perturbed_gradient_descent_escapes_the_saddle_that_holds_gradient_descent():
    def f(p):  # started on the saddle's stable manifold y = 0, where the y-gradient is 0
        return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4

    start = jnp.array([1.0, 0.0])
    gd = gdjax.minimize(f, start, method=gdjax.sgd(0.05), tol=1e-6, max_steps=400)
    assert gd.reason == "gradient norm below tol" and float(gd.value) == pytest.approx(0.0)
    test = curvature.saddle_test(f, gd.params, key=jax.random.key(0))
    assert bool(test.is_saddle)  # gradient descent stopped at a saddle, and we can tell
    pgd = gdjax.minimize(
        f, start, method=gdjax.perturbed_gd(0.05, 1e-3, 1e-2), tol=0.0, max_steps=400
    )
    assert float(pgd.value) == pytest.approx(-1.0, abs=1e-4)  # a minimum, at y = ±√2
    assert float(jnp.abs(pgd.params[1])) == pytest.approx(np.sqrt(2.0), abs=1e-2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method must be 'lanczos' or 'power'"):
        curvature.top_hessian_eigenvalue(jnp.sum, jnp.ones(2), key=jax.random.key(0), method="x")
    with pytest.raises(ValueError, match=r"num_iters must be a Python int in \[1, n\] = \[1, 3\]"):
        curvature.lanczos(lambda v: v, jnp.ones(3), 4, key=jax.random.key(0))
    assert gdjax.curvature is curvature
