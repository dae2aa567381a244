"""Simulated annealing's Metropolis step against closed forms and numerical integration: the
acceptance rate of Gaussian proposals, the Boltzmann distribution it samples at a fixed
temperature, schedules, and reproducibility from a key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

import gdjax


def chain(opt, f, x0, steps):
    """Positions and states of a Metropolis chain, one compiled scan."""

    def body(carry, _):
        x, s = carry
        u, s = opt.update(None, s, x, value_fn=f)
        x = gdjax.apply_updates(x, u)
        return (x, s), x

    def run(x0):
        (_, s), xs = jax.lax.scan(body, (x0, opt.init(x0)), length=steps)
        return xs, s

    return run


def test_acceptance_rate_of_gaussian_proposals_on_a_slope():
    """For f(x) = c x the proposal x + sigma xi is accepted with probability
    min(1, exp(-c sigma xi / T)); averaged over xi ~ N(0, 1) that is
    1/2 + exp(a^2 / 2) (1 - Phi(a)) with a = c sigma / T (by hand)."""
    c, sigma, temperature, steps = 2.0, 0.25, 0.5, 4000
    a = c * sigma / temperature
    expected = 0.5 + np.exp(a**2 / 2) * scipy.stats.norm.sf(a)
    opt = gdjax.metropolis(temperature, sigma, key=3)
    _, state = jax.jit(chain(opt, lambda x: c * x[0], jnp.zeros(1), steps))(jnp.zeros(1))
    rate = int(state.num_accepted) / steps
    assert rate == pytest.approx(expected, abs=0.025)
    assert int(state.count) == steps


def test_samples_follow_the_boltzmann_distribution_at_fixed_temperature():
    def f(x):  # a tilted double well: the right well is higher
        return (x[0] ** 2 - 1.0) ** 2 + 0.3 * x[0]

    temperature = 0.5
    weight = lambda x: np.exp(-((x**2 - 1.0) ** 2 + 0.3 * x) / temperature)  # noqa: E731
    z = scipy.integrate.quad(weight, -np.inf, np.inf)[0]
    p_left = scipy.integrate.quad(weight, -np.inf, 0.0)[0] / z
    mean = scipy.integrate.quad(lambda x: x * weight(x), -np.inf, np.inf)[0] / z

    keys = jax.random.split(jax.random.key(0), 32)

    def one(key):
        return chain(gdjax.metropolis(temperature, 0.6, key=key), f, jnp.zeros(1), 3000)(
            jnp.zeros(1)
        )[0]

    xs = np.asarray(jax.jit(jax.vmap(one))(keys))[:, 500:, 0]
    assert np.mean(xs < 0) == pytest.approx(p_left, abs=0.03)
    assert np.mean(xs) == pytest.approx(mean, abs=0.05)
    assert p_left > 0.6  # the test distinguishes the wells


def test_schedules_drive_temperature_and_proposal_scale():
    temperature = gdjax.schedules.exponential_decay(4.0, transition_steps=10, decay_rate=0.5)
    scale = gdjax.schedules.linear_schedule(1.0, 0.1, transition_steps=5)
    opt = gdjax.simulated_annealing(temperature, scale, key=0)
    x = jnp.array([0.3, -0.2])
    state = opt.init(x)
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    lowest = float(f(x))
    for k in range(7):
        u, state = opt.update(None, state, x, value_fn=f)
        sub = state[0]
        assert float(sub.temperature) == pytest.approx(4.0 * 0.5 ** (k / 10))
        assert float(sub.proposal_scale) == pytest.approx(max(1.0 - 0.18 * k, 0.1))
        moved = float(jnp.linalg.norm(u))
        assert (moved > 0) == bool(sub.accepted)
        x = x + u
        assert float(sub.value) == pytest.approx(float(f(x)))
        lowest = min(lowest, float(f(x)))
        assert float(sub.best_value) == pytest.approx(lowest)


def test_same_key_same_chain_and_vmap_over_keys_matches_single_chains():
    def f(x):
        return jnp.sum(jnp.cos(3.0 * x) + 0.1 * x**2)

    keys = jax.random.split(jax.random.key(5), 3)
    run = lambda key: chain(gdjax.metropolis(1.0, 0.5, key=key), f, jnp.ones(2), 50)(jnp.ones(2))  # noqa: E731
    batched = jax.jit(jax.vmap(run))(keys)
    single = jax.jit(run)
    np.testing.assert_array_equal(batched[0][1], single(keys[1])[0])
    np.testing.assert_array_equal(single(keys[1])[0], single(keys[1])[0])
    assert not np.array_equal(batched[0][0], batched[0][1])
    # the best point is the lowest position visited
    best = np.asarray(batched[1].best_value)
    visited = np.asarray(jax.vmap(jax.vmap(f))(batched[0]))
    np.testing.assert_allclose(best, np.minimum(visited.min(axis=1), float(f(jnp.ones(2)))))


def test_a_key_passed_to_update_replaces_the_own_key():
    x, f = jnp.zeros(3), lambda x: jnp.sum(x**2)
    moves = []
    for seed in (0, 1):
        opt = gdjax.metropolis(1e6, 0.1, key=seed)  # hot: every proposal is accepted
        moves.append(opt.update(None, opt.init(x), x, value_fn=f, key=jax.random.key(9))[0])
    np.testing.assert_array_equal(moves[0], moves[1])
    own = [gdjax.metropolis(1e6, 0.1, key=s) for s in (0, 1)]
    mine = [o.update(None, o.init(x), x, value_fn=f)[0] for o in own]
    assert not np.array_equal(mine[0], mine[1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature must be in"):
        gdjax.simulated_annealing(0.0, 0.1)
    with pytest.raises(ValueError, match="proposal_scale must be in"):
        gdjax.simulated_annealing(1.0, -0.1)
    with pytest.raises(TypeError, match=r"key must be an int seed or a jax.random key"):
        gdjax.simulated_annealing(1.0, 0.1, key="seed")
