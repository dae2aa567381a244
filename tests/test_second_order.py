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

# The named second-order and global-search optimizers these tests check against an oracle
# (simulated_annealing in test_annealing.py, perturbed_gd in test_curvature.py).
CHECKED = {
    "gauss_newton",
    "hessian_free",
    "lbfgs",
    "levenberg_marquardt",
    "newton",
    "perturbed_gd",
    "simulated_annealing",
}


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
def lbfgs_runner(lbfgs, zoom):
    """60 L-BFGS steps on logistic regression with data ``(x, y)`` and a line-search budget given
    as arguments, so that every test below shares one compiled program per implementation."""

    @jax.jit
    def run(x, y, budget):
        n = y.shape[0]

        def f(p):
            z = x @ p["w"] + p["b"]
            return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5 / n * jnp.sum(p["w"] ** 2)

        opt = lbfgs(linesearch=zoom(budget, initial_guess_strategy="one"))
        p0 = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}
        return run_steps_traced(opt, f, p0, 60), f(p0)

    return run


def run_steps_traced(opt, f, params, steps):
    def body(carry, _):
        p, s = carry
        v, g = jax.value_and_grad(f)(p)
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
        p = optax.apply_updates(p, u)
        return (p, s), (p, f(p))

    return jax.lax.scan(body, (params, opt.init(params)), length=steps)[1]


OURS = lbfgs_runner(gdjax.lbfgs, gdjax.scale_by_zoom_linesearch)
THEIRS = lbfgs_runner(optax.lbfgs, optax.scale_by_zoom_linesearch)


def test_lbfgs_matches_optax_lbfgs_step_by_step():
    x, y = breast_cancer()
    with jax.enable_x64(True):
        (ours, _), _ = OURS(x, y, 20)  # optax.lbfgs's default line search: 20 evaluations
        (theirs, _), _ = THEIRS(x, y, 20)
    for k in ours:
        np.testing.assert_allclose(ours[k][:30], theirs[k][:30], rtol=1e-9, atol=1e-12)
    assert np.abs(ours["w"][-1]).max() > 0.1  # it moved


def test_lbfgs_never_raises_the_objective_where_optax_lbfgs_does():
    """Unstandardised features (scales 1e-3..4e3) and a line search that hits its limit of 2
    evaluations: optax takes the last step tried, which raises the objective by orders of
    magnitude (the kind of failure of optax issues #1201 / #1298); gdjax never goes uphill."""
    x, y = breast_cancer(standardize=False)
    with jax.enable_x64(True):
        (_, ours), f0 = OURS(x, y, 2)
        (_, theirs), _ = THEIRS(x, y, 2)
    f0 = float(f0)
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

    def second_direction(opt):
        _, state = opt.update(g0, opt.init(p0), p0)
        return opt.update(g1, state, p1)

    theirs, _ = jax.jit(second_direction, static_argnums=0)(optax.scale_by_lbfgs())
    ours, state = jax.jit(second_direction, static_argnums=0)(gdjax.scale_by_lbfgs())
    assert float(g1 @ theirs) < 0  # the step -P g would go uphill
    assert float(g1 @ ours) > 0
    assert int(state.skipped_pairs) == 1 and not np.any(np.asarray(state.weights_memory))


# --- Newton and Hessian-free ------------------------------------------------------------------
def test_newton_reaches_sklearn_optimum_on_logistic_regression_in_few_steps():
    x, y = breast_cancer()
    target = sklearn_optimum(x, y)
    with jax.enable_x64(True):
        f = logistic_loss(x, y)
        p0 = {"w": jnp.zeros(30), "b": jnp.zeros(())}
        res = gdjax.minimize(f, p0, method=gdjax.newton(), tol=1e-9, max_steps=50)
    assert res.reason == "gradient norm below tol"
    assert abs(float(res.value) - target) <= 1e-8 * target
    assert int(res.steps) <= 15
    assert int(res.state[0].fallbacks) == 0


def test_newton_step_is_the_damped_newton_step():
    a = jnp.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])

    def f(w):
        return 0.5 * w @ a @ w + jnp.sum(w**4) / 4.0

    w = jnp.array([0.5, -1.0, 2.0])
    g = a @ w + w**3
    hess = np.asarray(a) + 3.0 * np.diag(np.asarray(w) ** 2)  # by hand

    @jax.jit
    def direction(damping):
        opt = gdjax.scale_by_newton(damping)
        return opt.update(g, opt.init(w), w, value_fn=f)

    for damping in (0.0, 0.7):
        d, state = direction(damping)
        expected = np.linalg.solve(hess + damping * np.eye(3), np.asarray(g))
        np.testing.assert_allclose(d, expected, rtol=1e-5)
        assert bool(state.positive_definite) and float(state.damping) == pytest.approx(damping)


def test_newton_falls_back_on_an_indefinite_hessian_and_reports_it():
    def saddle(p):  # saddle at 0; minima -1 at (0, ±√2)
        return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4

    opt = gdjax.scale_by_newton()
    step = jax.jit(lambda w, s: opt.update(jax.grad(saddle)(w), s, w, value_fn=saddle))
    w = jnp.array([1.0, 0.3])  # the Hessian diag(2, -2 + 3 y^2) is indefinite here
    g = jax.grad(saddle)(w)
    d, state = step(w, opt.init(w))
    assert not bool(state.positive_definite) and int(state.fallbacks) == 1
    assert float(state.min_eigenvalue) == pytest.approx(-2.0 + 3 * 0.09, rel=1e-5)
    # saddle-free: |H|^{-1} g, a descent direction (plain Newton's -H^{-1} g goes uphill in y)
    np.testing.assert_allclose(d, [g[0] / 2.0, g[1] / abs(-2.0 + 0.27)], rtol=1e-5)
    # unit steps along it leave the saddle's neighbourhood for the minimum at (0, √2)
    for _ in range(8):
        d, state = step(w, state)
        w = w - d
    np.testing.assert_allclose(w, [0.0, np.sqrt(2.0)], atol=1e-5)
    assert int(state.fallbacks) >= 2 and bool(state.positive_definite)


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
        ("scale_by_zoom_linesearch", gdjax.scale_by_zoom_linesearch(20)),
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

        pure_gauss_newton = gdjax.gauss_newton(r, learning_rate=1.0, linesearch=None)
        for method in (pure_gauss_newton, gdjax.levenberg_marquardt(r)):
            res = gdjax.minimize(f, jnp.asarray(p0), method=method, tol=1e-10, max_steps=100)
            assert res.converged
            np.testing.assert_allclose(res.params, ref.x, rtol=1e-6)
            assert float(res.value) == pytest.approx(ref.cost, rel=1e-9)


def test_levenberg_marquardt_rejects_a_bad_step_and_raises_the_damping():
    def r(p):  # a valley: the undamped Gauss-Newton step from (-1.2, 1) overshoots
        return jnp.array([10.0 * (p[1] - p[0] ** 2), 1.0 - p[0]])

    opt = gdjax.scale_by_levenberg_marquardt(r, damping=1e-8)
    update = jax.jit(lambda p, state: opt.update(p, state, p))
    p = jnp.array([-1.2, 1.0])
    state = opt.init(p)
    seen = []
    for _ in range(12):
        u, new = update(p, state)
        f_old, f_new = 0.5 * jnp.sum(r(p) ** 2), 0.5 * jnp.sum(r(p + u) ** 2)
        if bool(new.accepted):
            assert f_new < f_old
        else:
            assert not np.any(np.asarray(u)) and float(new.damping) > float(state.damping)
        seen.append(bool(new.accepted))
        p, state = p + u, new
    assert not all(seen) and any(seen)
