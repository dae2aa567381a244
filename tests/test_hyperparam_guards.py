"""Hyperparameters that would silently train wrong are refused or warned about: an infinite
learning rate, a schedule returning one value per parameter, an eps that float16 rounds to 0;
and the effective learning rate under a plateau rule is readable."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import gdjax


@pytest.mark.parametrize("factory", [gdjax.sgd, gdjax.adam, gdjax.momentum])
@pytest.mark.parametrize("rate", [float("inf"), -float("inf")])
def test_an_infinite_learning_rate_is_refused_at_construction(factory, rate):
    with pytest.raises(ValueError, match="learning_rate"):
        factory(rate)


def test_a_schedule_returning_one_value_per_column_is_refused():
    params = {"w": jnp.zeros((2, 3))}
    opt = gdjax.sgd(lambda count: jnp.full((3,), 0.1))
    with pytest.raises(ValueError, match=r"must be a scalar; got shape \(3,\)"):
        opt.init(params)
    scalar = gdjax.sgd(lambda count: 0.1 * jnp.ones(()))  # a 0-d array is a scalar
    updates, _ = scalar.update({"w": jnp.ones((2, 3))}, scalar.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1)


def _warnings_of(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("factory", [gdjax.adam, gdjax.rmsprop, gdjax.adamax, gdjax.amsgrad])
def test_float16_parameters_warn_when_eps_rounds_to_zero(factory):
    assert np.float16(1e-8) == 0  # the oracle: float16 cannot hold optax's default eps
    half = {"w": jnp.zeros(4, jnp.float16)}
    messages = _warnings_of(lambda: factory(1e-3).init(half))
    assert len(messages) == 1 and "rounds to 0 in float16" in messages[0]
    # float32 parameters, or an eps float16 holds, give no warning
    assert _warnings_of(lambda: factory(1e-3).init({"w": jnp.zeros(4)})) == []
    assert _warnings_of(lambda: factory(1e-3, eps=1e-4).init(half)) == []


def test_the_warning_names_a_real_nan():
    # without the warning's advice: a zero gradient entry in float16 with eps=1e-8 gives NaN
    opt = gdjax.adam(1e-3)
    half = {"w": jnp.zeros(2, jnp.float16)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = opt.init(half)
    updates, _ = opt.update({"w": jnp.asarray([0.0, 1.0], jnp.float16)}, state, half)
    assert np.isnan(np.asarray(updates["w"][0], np.float32))


def test_effective_learning_rate_is_the_rate_times_the_plateau_scale():
    schedule = gdjax.schedules.exponential_decay(0.2, transition_steps=1, decay_rate=0.5)
    opt = gdjax.chain(
        gdjax.sgd(schedule), gdjax.reduce_on_plateau(patience=1, factor=0.1, accumulation_size=None)
    )
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    for _ in range(3):
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
    for monitored in (1.0, 2.0):  # one epoch without improvement: the scale drops to 0.1
        state = gdjax.observe_plateau(state, monitored)
    # the third update used the schedule at count 2: 0.2 * 0.5**2 = 0.05; times 0.1
    np.testing.assert_allclose(gdjax.get_hyperparam(state, "learning_rate"), 0.05, rtol=1e-6)
    np.testing.assert_allclose(
        gdjax.get_hyperparam(state, "effective_learning_rate"), 0.005, rtol=1e-6
    )
    # without a plateau rule the effective rate is the rate; a constant rate is not recorded
    plain = gdjax.sgd(schedule)
    _, s = plain.update({"w": jnp.ones(2)}, plain.init(params), params)
    np.testing.assert_allclose(gdjax.get_hyperparam(s, "effective_learning_rate"), 0.2)
    with pytest.raises(KeyError, match="lr_scale"):
        gdjax.get_hyperparam(gdjax.sgd(0.1).init(params), "effective_learning_rate")
