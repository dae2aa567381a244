"""Every named optimizer minimizes a parabola and the Rosenbrock function.

Closed-form oracles: the parabola's minimum is at ``c``; Rosenbrock's at ``(1, 1)``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax

CENTER = jnp.array([1.5, -2.0, 0.5])


def parabola(x):
    return jnp.sum((x - CENTER) ** 2 * jnp.array([1.0, 3.0, 0.5]))


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


# optimizer -> (parabola optimizer, steps), (rosenbrock optimizer, steps)
CASES = {
    "sgd": ((gdjax.sgd(0.1), 300), (gdjax.sgd(1e-3), 20000)),
    "momentum": ((gdjax.momentum(0.05), 300), (gdjax.momentum(2e-4, 0.95), 20000)),
    "nesterov": ((gdjax.nesterov(0.05), 300), (gdjax.nesterov(2e-4, 0.95), 20000)),
    "adagrad": ((gdjax.adagrad(0.5), 1000), (gdjax.adagrad(0.3), 20000)),
    "rmsprop": ((gdjax.rmsprop(0.01), 1000), (gdjax.rmsprop(1e-3, centered=True), 20000)),
    "adam": ((gdjax.adam(0.05), 1000), (gdjax.adam(2e-2), 20000)),
    "adamw": (
        (gdjax.adamw(0.05, weight_decay=0.0), 1000),
        (gdjax.adamw(2e-2, weight_decay=0.0), 20000),
    ),
    "nadam": ((gdjax.nadam(0.05), 1000), (gdjax.nadam(2e-2), 20000)),
    "amsgrad": ((gdjax.amsgrad(0.05), 1000), (gdjax.amsgrad(0.1), 20000)),
    # AdaDelta's effective step does not shrink by itself; on Rosenbrock it orbits the valley
    # floor unless its learning rate is annealed (a schedule, which every optimizer accepts).
    "adadelta": (
        (gdjax.adadelta(5.0, rho=0.95), 2000),
        (gdjax.adadelta(gdjax.schedules.exponential_decay(1.0, 2000, 0.5), rho=0.99), 20000),
    ),
    "adamax": ((gdjax.adamax(0.05), 1000), (gdjax.adamax(2e-2), 20000)),
}


def minimize(f, opt, x0, steps):
    @jax.jit
    def go(x0):
        def step(carry, _):
            x, s = carry
            u, s = opt.update(jax.grad(f)(x), s, x)
            return (gdjax.apply_updates(x, u), s), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
        return x

    return go(x0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_converges_on_parabola(name):
    (opt, steps), _ = CASES[name]
    x = minimize(parabola, opt, jnp.zeros(3), steps)
    np.testing.assert_allclose(x, CENTER, atol=2e-2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_converges_on_rosenbrock(name):
    _, (opt, steps) = CASES[name]
    x = minimize(rosenbrock, opt, jnp.array([-1.2, 1.0]), steps)
    assert rosenbrock(x) < 1e-3, (name, x)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=0.06)
