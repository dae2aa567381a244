"""Second-order methods against independent oracles: optax.lbfgs step by step, scikit-learn's
logistic-regression optimum, scipy.optimize.least_squares, closed forms; and the upstream
L-BFGS failure cases (optax #1201, #1298), where gdjax's objective must never rise."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import gdjax


def breast_cancer(rows: int = 200, standardize: bool = True):
    x, y = load_breast_cancer(return_X_y=True)
    x, y = x[:rows], y[:rows].astype(float)
    if standardize:
        x = (x - x.mean(0)) / x.std(0)
    return x, y


def logistic_loss(x, y):
    """Mean log-loss + ||w||^2 / (2N): scikit-learn's objective with C=1, divided by N."""
    n = len(y)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def f(p):
        z = xj @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - yj * z) + 0.5 / n * jnp.sum(p["w"] ** 2)

    return f


def sklearn_optimum(x, y) -> float:
    clf = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(x, y)
    with jax.enable_x64(True):
        f = logistic_loss(x, y)
        return float(f({"w": jnp.asarray(clf.coef_[0]), "b": jnp.asarray(clf.intercept_[0])}))


def run_steps(opt, f, params, steps):
    """Every iterate of ``steps`` updates, in one compiled scan."""

    def body(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(f)(p)
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
        p = optax.apply_updates(p, u)
        return (p, s), (p, f(p))

    run = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), length=steps)[1])
    return jax.tree.map(np.asarray, run(params))


# --- L-BFGS and the zoom line search ----------------------------------------------------------
def test_lbfgs_matches_optax_lbfgs_step_by_step():
    x, y = breast_cancer()
    with jax.enable_x64(True):
        f = logistic_loss(x, y)
        p0 = {"w": jnp.zeros(30), "b": jnp.zeros(())}
        ours, _ = run_steps(gdjax.lbfgs(), f, p0, 25)
        theirs, _ = run_steps(optax.lbfgs(), f, p0, 25)
    for k in p0:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-9, atol=1e-12)
    assert np.abs(ours["w"][-1]).max() > 0.1  # it moved


def test_lbfgs_never_raises_the_objective_where_optax_lbfgs_does():
    """Unstandardised features (scales 1e-3..4e3) and a line search that hits its limit of 2
    evaluations: optax takes the last step tried, which raises the objective by orders of
    magnitude (the kind of failure of optax issues #1201 / #1298); gdjax never goes uphill."""
    x, y = breast_cancer(standardize=False)
    f = logistic_loss(x.astype(np.float32), y.astype(np.float32))
    p0 = {"w": jnp.zeros(30), "b": jnp.zeros(())}
    f0 = float(f(p0))
    ours_ls = gdjax.scale_by_zoom_linesearch(2, initial_guess_strategy="one")
    theirs_ls = optax.scale_by_zoom_linesearch(2, initial_guess_strategy="one")
    _, ours = run_steps(gdjax.lbfgs(linesearch=ours_ls), f, p0, 60)
    _, theirs = run_steps(optax.lbfgs(linesearch=theirs_ls), f, p0, 60)
    assert np.nanmax(theirs) > 100 * f0, "the upstream failure no longer reproduces"
    values = np.concatenate([[f0], ours])
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) <= 1e-6 * np.abs(values[:-1]))  # Hager-Zhang's slack only
    assert values[-1] < 0.3 * f0


def test_lbfgs_skips_a_pair_without_positive_curvature():
    """A gradient that fell along the step (s'y < 0, a non-convex region): optax stores the
    pair, and its direction then points uphill; gdjax skips it and keeps descending."""
    p0, g0 = jnp.array([0.0, 0.0]), jnp.array([1.0, 1.0])
    p1, g1 = jnp.array([1.0, 0.0]), jnp.array([0.5, 1.0])  # s = (1, 0), y = (-0.5, 0)
    directions = {}
    for name, opt in [("gdjax", gdjax.scale_by_lbfgs()), ("optax", optax.scale_by_lbfgs())]:
        _, state = opt.update(g0, opt.init(p0), p0)
        directions[name], state = opt.update(g1, state, p1)
    assert float(g1 @ directions["optax"]) < 0  # the step -P g would go uphill
    assert float(g1 @ directions["gdjax"]) > 0
    ours = gdjax.scale_by_lbfgs()
    _, state = ours.update(g0, ours.init(p0), p0)
    _, state = ours.update(g1, state, p1)
    assert int(state.skipped_pairs) == 1 and not np.any(np.asarray(state.weights_memory))


# --- Newton and Hessian-free ------------------------------------------------------------------
def test_newton_and_hessian_free_reach_sklearn_optimum_on_logistic_regression():
    x, y = breast_cancer()
    target = sklearn_optimum(x, y)
    with jax.enable_x64(True):
        f = logistic_loss(x, y)
        p0 = {"w": jnp.zeros(30), "b": jnp.zeros(())}
        newton = gdjax.minimize(f, p0, method=gdjax.newton(), tol=1e-9, max_steps=50)
        hf = gdjax.minimize(f, p0, method=gdjax.hessian_free(1e-3), tol=1e-9, max_steps=100)
    for res in (newton, hf):
        assert res.reason == "gradient norm below tol"
        assert abs(float(res.value) - target) <= 1e-8 * target
    assert int(newton.steps) <= 15
    assert int(newton.state[0].fallbacks) == 0


def test_newton_step_is_the_damped_newton_step():
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])

    def f(w):
        return 0.5 * w @ a @ w + jnp.sum(w**4) / 4.0

    w = jnp.array([0.5, -1.0, 2.0])
    g = a @ w + w**3
    hess = np.asarray(a) + 3.0 * np.diag(np.asarray(w) ** 2)  # by hand
    for damping in (0.0, 0.7):
        opt = gdjax.scale_by_newton(damping)
        d, state = opt.update(g, opt.init(w), w, value_fn=f)
        expected = np.linalg.solve(hess + damping * np.eye(3), np.asarray(g))
        np.testing.assert_allclose(d, expected, rtol=1e-5)
        assert bool(state.positive_definite) and float(state.damping) == pytest.approx(damping)


def test_newton_falls_back_on_an_indefinite_hessian_and_reports_it():
    def saddle(p):  # saddle at 0; minima -1 at (0, ±√2)
        return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4

    opt = gdjax.scale_by_newton()
    w = jnp.array([1.0, 0.3])  # the Hessian diag(2, -2 + 3 y^2) is indefinite here
    g = jax.grad(saddle)(w)
    d, state = opt.update(g, opt.init(w), w, value_fn=saddle)
    assert not bool(state.positive_definite) and int(state.fallbacks) == 1
    assert float(state.min_eigenvalue) == pytest.approx(-2.0 + 3 * 0.09, rel=1e-5)
    # saddle-free: |H|^{-1} g, a descent direction (plain Newton's -H^{-1} g goes uphill in y)
    np.testing.assert_allclose(d, [g[0] / 2.0, g[1] / abs(-2.0 + 0.27)], rtol=1e-5)
    res = gdjax.minimize(saddle, w, method=gdjax.newton(), max_steps=50)
    assert res.reason == "gradient norm below tol"
    assert float(res.value) == pytest.approx(-1.0, abs=1e-5)


def test_newton_refuses_too_many_parameters_and_hessian_free_solves_it():
    n = 6000
    scales = jnp.linspace(1.0, 50.0, n)

    def f(w):
        return 0.5 * jnp.sum(scales * (w - 1.0) ** 2) + 0.25 * jnp.sum((w - 1.0) ** 4)

    with pytest.raises(ValueError, match=r"6,000 entries.*6,000 x 6,000 \(144 MB\).*hessian_free"):
        gdjax.minimize(f, jnp.zeros(n), method=gdjax.newton())
    res = gdjax.minimize(f, jnp.zeros(n), method=gdjax.hessian_free(1e-3), tol=1e-4)
    assert res.reason == "gradient norm below tol"
    np.testing.assert_allclose(res.params, np.ones(n), atol=1e-4)


def test_methods_that_need_the_objective_say_so():
    w = jnp.ones(3)
    for name, opt in [
        ("scale_by_newton", gdjax.newton()),
        ("scale_by_hessian_free", gdjax.hessian_free()),
        ("scale_by_zoom_linesearch", gdjax.lbfgs()),
        ("metropolis", gdjax.simulated_annealing(1.0, 0.1)),
    ]:
        with pytest.raises(TypeError, match=f"{name} needs the objective.*value_fn"):
            opt.update(w, opt.init(w), w)
    with pytest.raises(TypeError, match="residual_fn must be a function"):
        gdjax.gauss_newton(residual_fn=None)
    with pytest.raises(ValueError, match="memory_size"):
        gdjax.lbfgs(memory_size=0)
    with pytest.raises(ValueError, match="damping"):
        gdjax.newton(damping=-1.0)


# --- Gauss-Newton and Levenberg-Marquardt ----------------------------------------------------
def test_gauss_newton_and_levenberg_marquardt_match_scipy_least_squares():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 40)
    y = 2.0 * np.exp(-1.3 * t) + 0.5 * np.exp(-0.2 * t) + 0.01 * rng.normal(size=t.size)
    p0 = np.array([1.0, 1.0, 1.0, 0.1])

    def residuals_np(p):
        return p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t) - y

    ref = scipy.optimize.least_squares(residuals_np, p0, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    with jax.enable_x64(True):
        tj, yj = jnp.asarray(t), jnp.asarray(y)

        def r(p):
            return p[0] * jnp.exp(-p[1] * tj) + p[2] * jnp.exp(-p[3] * tj) - yj

        def f(p):
            return 0.5 * jnp.sum(r(p) ** 2)

        for method in (gdjax.gauss_newton(r), gdjax.levenberg_marquardt(r)):
            res = gdjax.minimize(f, jnp.asarray(p0), method=method, tol=1e-10, max_steps=100)
            assert res.converged
            np.testing.assert_allclose(res.params, ref.x, rtol=1e-6)
            assert float(res.value) == pytest.approx(ref.cost, rel=1e-9)


def test_levenberg_marquardt_rejects_a_bad_step_and_raises_the_damping():
    def r(p):  # a valley: the undamped Gauss-Newton step from (-1.2, 1) overshoots
        return jnp.array([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

    opt = gdjax.scale_by_levenberg_marquardt(r, damping=1e-8)
    p = jnp.array([-1.2, 1.0])
    state = opt.init(p)
    seen = []
    for _ in range(12):
        u, new = opt.update(p, state, p)
        f_old, f_new = 0.5 * jnp.sum(r(p) ** 2), 0.5 * jnp.sum(r(p + u) ** 2)
        if bool(new.accepted):
            assert f_new < f_old
        else:
            assert not np.any(np.asarray(u)) and float(new.damping) > float(state.damping)
        seen.append(bool(new.accepted))
        p, state = p + u, new
    assert not all(seen) and any(seen)
