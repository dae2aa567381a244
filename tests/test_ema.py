"""The weights' moving average (``ema=``) against one computed by hand, step by step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax

RNG = np.random.default_rng(0)
TRUE_W = np.array([1.0, -2.0, 0.5])
X = RNG.normal(size=(12, 3)).astype(np.float32)
Y = (X @ TRUE_W + 0.3 * RNG.normal(size=12)).astype(np.float32)
XV = RNG.normal(size=(6, 3)).astype(np.float32)
YV = (XV @ TRUE_W + 0.3 * RNG.normal(size=6)).astype(np.float32)
P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}


def mse(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def hand_sgd_ema(lr, decay, batch_size, epochs):
    """Plain SGD on the MSE in float64, data in order, with the EMA of the weights.

    Returns the weights and their average at the end of every epoch, as ``(w, b)`` pairs.
    """
    w, b = np.zeros(3), 0.0
    ema_w, ema_b = w.copy(), b
    raw, avg = [], []
    for _ in range(epochs):
        for start in range(0, len(X), batch_size):
            xb = X[start : start + batch_size].astype(np.float64)
            yb = Y[start : start + batch_size].astype(np.float64)
            r = xb @ w + b - yb
            w = w - lr * 2 * xb.T @ r / len(r)
            b = b - lr * 2 * r.mean()
            ema_w = decay * ema_w + (1 - decay) * w
            ema_b = decay * ema_b + (1 - decay) * b
        raw.append((w.copy(), b))
        avg.append((ema_w.copy(), ema_b))
    return raw, avg


def val_mse(wb):
    w, b = wb
    return float(np.mean((XV.astype(np.float64) @ w + b - YV) ** 2))


@pytest.mark.parametrize("validate", [True, False])
def test_ema_matches_hand_computation_and_validation_uses_it(validate):
    lr, decay, epochs = 0.3, 0.6, 2
    res = gdjax.fit(
        mse,
        P0,
        gdjax.sgd(lr),
        (X, Y),
        batch_size=4,
        epochs=epochs,
        shuffle=False,
        key=jax.random.key(0),
        validation_data=(XV, YV),
        ema=gdjax.EMA(decay, validate=validate),
    )
    raw, avg = hand_sgd_ema(lr, decay, 4, epochs)
    np.testing.assert_allclose(res.params["w"], raw[-1][0], rtol=1e-5)
    np.testing.assert_allclose(res.ema_params["w"], avg[-1][0], rtol=1e-5)
    np.testing.assert_allclose(res.ema_params["b"], avg[-1][1], rtol=1e-5, atol=1e-7)
    assert res.ema_params["w"].dtype == np.float32
    judged = avg if validate else raw
    other = raw if validate else avg
    for e in range(epochs):
        np.testing.assert_allclose(res.history["val_loss"][e], val_mse(judged[e]), rtol=1e-5)
        # the two differ here, so the check above tells which weights were validated
        assert abs(val_mse(judged[e]) - val_mse(other[e])) > 1e-3 * val_mse(other[e])


def test_ema_arguments_are_checked():
    with pytest.raises(ValueError, match=r"EMA.decay must be in \[0, 1\)"):
        gdjax.EMA(1.0)
    with pytest.raises(TypeError, match=r"EMA\.decay must be a number"):
        gdjax.EMA(True)
    with pytest.raises(TypeError, match=r"ema must be a gdjax\.EMA"):
        gdjax.fit(
            mse, P0, gdjax.sgd(0.1), (X, Y), batch_size=4, epochs=1, key=jax.random.key(0), ema=0.9
        )


def test_low_precision_weights_keep_a_float32_average():
    opt = gdjax.EMA(0.999).wrap(gdjax.sgd(1.0))

    @jax.jit
    def one_step(params):
        state = opt.init(params)
        _, state = opt.update(jnp.full(2, 0.5, jnp.bfloat16), state, params)
        return state.average

    average = one_step(jnp.ones(2, jnp.bfloat16))
    assert average.dtype == jnp.float32
    # the weights went 1 -> 0.5; the average moved by (1 - d) * (-0.5), far below bfloat16's
    # resolution near 1
    np.testing.assert_allclose(average, 1.0 - 0.001 * 0.5, rtol=1e-6)
