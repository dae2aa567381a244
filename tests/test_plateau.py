"""reduce_on_plateau: the scale it owns follows a hand-written plateau rule, inside fit or not."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax


def _oracle(values, factor, patience, min_delta=0.0, mode="min", cooldown=0, min_scale=0.0):
    """The plateau rule in plain Python: the scale after each decision."""
    best = np.inf if mode == "min" else -np.inf
    scale, wait, cool, out = 1.0, 0, 0, []
    for v in values:
        better = v < best - min_delta if mode == "min" else v > best + min_delta
        if better:
            best = v
        if better or cool > 0:
            wait = 0
        else:
            wait += 1
        cool = max(cool - 1, 0)
        if wait >= patience:
            scale, wait, cool = max(scale * factor, min_scale), 0, cooldown
        out.append(scale)
    return out


VALUES = [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.7, 0.8, 0.55, 0.9, 1.0]


@pytest.mark.parametrize(
    "kw",
    [
        {"factor": 0.5, "patience": 2},
        {"factor": 0.1, "patience": 1, "cooldown": 2, "min_scale": 0.005},
        {"factor": 0.5, "patience": 2, "min_delta": 0.05},
        {"factor": 0.5, "patience": 2, "mode": "max"},
    ],
)
def test_observed_values_follow_the_plateau_rule(kw):
    opt = gdjax.chain(gdjax.sgd(1.0), gdjax.reduce_on_plateau(accumulation_size=None, **kw))
    state = opt.init({"w": jnp.zeros(2)})
    observe = jax.jit(gdjax.observe_plateau)
    got = []
    for v in VALUES:
        state = observe(state, jnp.float32(v))
        got.append(float(gdjax.get_hyperparam(state, "lr_scale")))
    np.testing.assert_allclose(got, _oracle(np.float32(VALUES), **kw), rtol=1e-6)


def test_per_step_values_are_averaged_and_scale_the_updates():
    opt = gdjax.chain(
        gdjax.sgd(1.0), gdjax.reduce_on_plateau(factor=0.5, patience=1, accumulation_size=2)
    )
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    update = jax.jit(lambda g, s, v: opt.update(g, s, params, value=v))
    scales, steps = [], []
    for v in VALUES:
        u, state = update({"w": jnp.ones(2)}, state, jnp.float32(v))
        steps.append(float(-u["w"][0]))  # sgd(1): the update is -scale * grad
        scales.append(float(gdjax.get_hyperparam(state, "lr_scale")))
    means = np.float32(VALUES).reshape(-1, 2).mean(axis=1)
    want = np.repeat(_oracle(means, 0.5, 1), 2)
    np.testing.assert_allclose(scales[1::2], want[1::2], rtol=1e-6)
    np.testing.assert_allclose(steps, scales, rtol=1e-6)  # each update used the current scale


def test_fit_feeds_the_monitored_value_and_the_state_owns_the_scale():
    ones = np.ones(4, np.float32)
    res = gdjax.fit(
        lambda w, y: jnp.mean((w - y) ** 2),
        jnp.zeros(()),
        optax.sgd(0.25),
        ones,
        batch_size=None,
        epochs=8,
        key=jax.random.key(0),
        validation_data=np.full(3, 0.8, np.float32),
        reduce_on_plateau=gdjax.ReduceOnPlateau(factor=0.5, patience=2),
    )
    val = res.history["val_loss"]
    decided = _oracle(val, 0.5, 2)
    # the history records the scale each epoch trained with; the state holds the latest
    np.testing.assert_allclose(res.history["lr_scale"], [1.0, *decided[:-1]])
    assert float(gdjax.get_hyperparam(res.opt_state, "lr_scale")) == decided[-1]


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="factor must be in"):
        gdjax.reduce_on_plateau(factor=1.5)
    with pytest.raises(ValueError, match="mode must be"):
        gdjax.reduce_on_plateau(mode="up")
    with pytest.raises(ValueError, match="patience must be >= 1"):
        gdjax.reduce_on_plateau(patience=0)
