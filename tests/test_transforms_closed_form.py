"""Transformations that optax lacks (or defines differently), checked against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import gdjax


def test_clip_by_norm_caps_each_leaf_separately():
    grads = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}
    u, _ = gdjax.clip_by_norm(1.0).update(grads, None)
    np.testing.assert_allclose(u["a"], [0.6, 0.8], rtol=1e-6)  # norm 5 -> 1
    np.testing.assert_allclose(u["b"], [0.3, 0.4], rtol=1e-6)  # norm 0.5: untouched


def test_l2_adds_lambda_theta_and_respects_mask():
    params = {"w": jnp.array([2.0, -1.0]), "b": jnp.array([5.0])}
    grads = {"w": jnp.array([0.1, 0.1]), "b": jnp.array([0.1])}
    opt = gdjax.add_l2_regularization(0.5, mask={"w": True, "b": False})
    u, _ = opt.update(grads, opt.init(params), params)
    np.testing.assert_allclose(u["w"], [0.1 + 1.0, 0.1 - 0.5])
    np.testing.assert_allclose(u["b"], [0.1])


def test_l2_equals_gradient_of_the_penalized_loss():
    params = jnp.array([1.0, -2.0, 3.0])
    loss = lambda p: jnp.sum(jnp.sin(p))  # noqa: E731
    lam = 0.3
    opt = gdjax.add_l2_regularization(lam)
    u, _ = opt.update(jax.grad(loss)(params), opt.init(params), params)
    want = jax.grad(lambda p: loss(p) + 0.5 * lam * jnp.sum(p**2))(params)
    np.testing.assert_allclose(u, want, rtol=1e-6)


def test_l1_adds_lambda_sign_theta():
    params = {"w": jnp.array([2.0, -1.0, 0.0])}
    opt = gdjax.add_l1_regularization(0.1)
    u, _ = opt.update({"w": jnp.zeros(3)}, opt.init(params), params)
    np.testing.assert_allclose(u["w"], [0.1, -0.1, 0.0])


def test_l1_drives_weights_to_zero():
    # minimize 0.5*(w - 0.05)^2 + 0.1*|w|: the soft-threshold solution is exactly 0.
    opt = gdjax.chain(gdjax.add_l1_regularization(0.1), gdjax.sgd(1e-2))
    w = jnp.array([1.0])
    state = opt.init(w)
    for _ in range(2000):
        u, state = opt.update(w - 0.05, state, w)
        w = gdjax.apply_updates(w, u)
    assert abs(float(w[0])) < 2e-3  # oscillates within one step (lr * lambda) of zero


def test_heavy_ball_is_the_documents_formula_under_a_schedule():
    lrs = [0.1, 0.05, 0.025, 0.0125]
    sched = gdjax.schedules.exponential_decay(0.1, 1, 0.5)
    opt = gdjax.momentum(sched, beta=0.9)
    theta = jnp.array([1.0])
    state = opt.init(theta)
    v, ref = 0.0, 1.0
    grad = lambda th: 2 * th  # noqa: E731  (J = theta^2)
    for lr in lrs:
        u, state = opt.update(grad(theta), state, theta)
        theta = gdjax.apply_updates(theta, u)
        v = 0.9 * v + lr * grad(ref)
        ref = ref - v
    np.testing.assert_allclose(theta, [ref], rtol=1e-5)


def test_nesterov_looks_ahead():
    # NAG: v = b v + lr * grad(theta - b v); theta -= v  (the classical look-ahead form).
    opt = gdjax.nesterov(0.1, beta=0.9)
    grad = lambda th: 2 * th  # noqa: E731
    theta = jnp.array([1.0])
    state = opt.init(theta)
    ref, v = 1.0, 0.0
    for _ in range(10):
        u, state = opt.update(grad(theta), state, theta)
        theta = gdjax.apply_updates(theta, u)
        v = 0.9 * v + 0.1 * grad(ref - 0.9 * v)
        ref = ref - v
    # The reformulated iterate theta_t tracks the look-ahead point ref_t - 0.9 v_t.
    np.testing.assert_allclose(theta, [ref - 0.9 * v], rtol=1e-5)


def test_noise_has_the_annealed_standard_deviation():
    eta, gamma = 0.5, 0.55
    opt = gdjax.add_noise(eta, gamma, key=3)
    zeros = {"w": jnp.zeros(20000), "b": jnp.zeros((100, 100))}
    state = opt.init(zeros)
    for t in range(1, 4):
        u, state = opt.update(zeros, state)
        sample = np.concatenate([np.ravel(u["w"]), np.ravel(u["b"])])
        sigma = np.sqrt(eta / t**gamma)
        assert float(state.noise_std) == pytest.approx(sigma, rel=1e-6)
        # Kolmogorov-Smirnov against N(0, sigma^2).
        assert stats.kstest(sample / sigma, "norm").pvalue > 1e-3
    assert not np.allclose(u["w"][:100], u["b"][0])  # leaves get independent noise


def test_perturbation_only_below_the_gradient_norm_threshold():
    opt = gdjax.add_noise(1.0, 0.0, key=0, below_norm=1e-3)
    state = opt.init(jnp.zeros(3))
    big = jnp.array([1.0, 0.0, 0.0])
    u, state = opt.update(big, state)
    np.testing.assert_array_equal(u, big)
    u, state = opt.update(jnp.zeros(3), state)  # at a stationary point: kicked off it
    assert float(jnp.abs(u).sum()) > 0


def test_perturbed_gradient_descent_escapes_a_saddle():
    f = lambda x: x[0] ** 2 - x[1] ** 2 + 0.25 * x[1] ** 4  # noqa: E731  saddle at 0, minima at (0, ±sqrt 2)
    x0 = jnp.zeros(2)

    def descend(opt):
        def step(carry, _):
            x, s = carry
            u, s = opt.update(jax.grad(f)(x), s, x)
            return (gdjax.apply_updates(x, u), s), None

        # one compiled loop: 300 eager steps cost far more in per-op dispatch
        (x, _), _ = jax.jit(lambda: jax.lax.scan(step, (x0, opt.init(x0)), length=300))()
        return x

    plain = descend(gdjax.sgd(0.05))
    perturbed = descend(
        gdjax.chain(
            gdjax.add_noise(1e-2, 0.0, key=1, below_norm=1e-3),
            gdjax.sgd(0.05),
        )
    )
    assert float(f(plain)) == 0.0  # gradient descent started at a saddle stays there
    assert float(f(perturbed)) == pytest.approx(-1.0, abs=1e-3)  # f(0, ±sqrt 2) = -1


def test_apply_if_finite_skips_and_counts():
    opt = gdjax.apply_if_finite(gdjax.sgd(0.1, momentum=0.9), max_consecutive_errors=5)
    params = jnp.ones(2)
    state = opt.init(params)
    _, state = opt.update(jnp.array([1.0, 1.0]), state, params)
    before = state.inner_state
    u, state = opt.update(jnp.array([jnp.inf, 1.0]), state, params)
    np.testing.assert_array_equal(u, [0.0, 0.0])
    assert int(state.total_notfinite) == 1 and not bool(state.last_finite)
    jax.tree.map(np.testing.assert_array_equal, state.inner_state, before)


def test_accumulate_gradients_equals_one_big_batch_step():
    grads = [jnp.array([1.0, 2.0]), jnp.array([3.0, -2.0]), jnp.array([2.0, 0.0])]
    opt = gdjax.accumulate_gradients(gdjax.sgd(0.1), every_k=3)
    params = jnp.zeros(2)
    state = opt.init(params)
    outs = []
    for g in grads:
        u, state = opt.update(g, state, params)
        outs.append(u)
    np.testing.assert_array_equal(outs[0], [0, 0])
    np.testing.assert_array_equal(outs[1], [0, 0])
    np.testing.assert_allclose(outs[2], -0.1 * np.mean(grads, axis=0), rtol=1e-6)
    assert int(state.gradient_step) == 1
