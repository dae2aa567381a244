"""Per-epoch gradient diagnostics against hand-computed gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 3)).astype(np.float32)
Y = RNG.normal(size=6).astype(np.float32)


def _loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def test_full_batch_diagnostics_match_closed_form():
    lr = 0.1
    p = {"b": np.float32(0.5), "w": np.array([0.2, -0.1, 0.3], np.float32)}
    res = gdjax.fit(
        _loss,
        p,
        optax.sgd(lr),
        (X, Y),
        batch_size=None,
        epochs=2,
        key=jax.random.key(0),
        diagnostics=True,
    )
    h = res.history
    b, w = 0.5, np.array([0.2, -0.1, 0.3])
    for e in range(2):
        r = X @ w + b - Y  # residuals
        gw, gb = 2 * X.T @ r / 6, 2 * r.mean()
        np.testing.assert_allclose(h["grad_norm"][e], np.sqrt(gw @ gw + gb**2), rtol=1e-5)
        np.testing.assert_allclose(h["grad_norm/w"][e], np.linalg.norm(gw), rtol=1e-5)
        np.testing.assert_allclose(h["grad_norm/b"][e], abs(gb), rtol=1e-5)
        np.testing.assert_allclose(
            h["update_ratio/w"][e], lr * np.linalg.norm(gw) / np.linalg.norm(w), rtol=1e-5
        )
        # d loss_i / d x_i = 2 r_i w; mean over examples of its absolute value
        np.testing.assert_allclose(
            h["input_grad"][e], np.mean(np.abs(2 * r[:, None] * w), 0), rtol=1e-5
        )
        w, b = w - lr * gw, b - lr * gb
    assert h["input_grad"].shape == (2, 3)
    np.testing.assert_array_equal(h["vanishing"], [0, 0])
    np.testing.assert_array_equal(h["exploding"], [0, 0])


def test_minibatch_input_gradient_is_mean_over_all_examples():
    # lr = 0: params fixed, so the epoch mean over batches of 4 (+ remainder 2) must equal the
    # mean over all six examples.
    p = {"b": np.float32(0.0), "w": np.array([1.0, 2.0, -1.0], np.float32)}
    res = gdjax.fit(
        _loss,
        p,
        optax.sgd(0.0),
        (X, Y),
        batch_size=4,
        epochs=1,
        key=jax.random.key(1),
        diagnostics=gdjax.Diagnostics(per_layer=False),
    )
    r = X @ p["w"] - Y
    np.testing.assert_allclose(
        res.history["input_grad"][0], np.mean(np.abs(2 * r[:, None] * p["w"]), 0), rtol=1e-5
    )
    assert "grad_norm/w" not in res.history


def test_vanishing_and_exploding_flags():
    p = {"b": np.float32(0.0), "w": np.zeros(3, np.float32)}
    flat = gdjax.fit(
        lambda q, b: 0.0 * _loss(q, b),
        p,
        optax.sgd(0.1),
        (X, Y),
        batch_size=None,
        epochs=1,
        key=jax.random.key(0),
        diagnostics=True,
    )
    assert flat.history["vanishing"][0] == 1.0 and flat.history["exploding"][0] == 0.0
    steep = gdjax.fit(
        lambda q, b: 1e6 * _loss(q, b),
        p,
        optax.sgd(0.0),
        (X, Y),
        batch_size=None,
        epochs=1,
        key=jax.random.key(0),
        diagnostics=gdjax.Diagnostics(exploding_above=1e3),
    )
    assert steep.history["exploding"][0] == 1.0 and steep.history["vanishing"][0] == 0.0


TOKENS = np.array([0, 2, 2, 1, 0, 2, 3], np.int32)
TARGETS = np.linspace(-1.0, 1.0, 7).astype(np.float32)


def _embedding_loss(p, batch):
    tokens, y = batch
    return jnp.mean((p["table"][tokens] - y) ** 2)


def test_integer_inputs_skip_input_gradients_by_default():
    table = np.array([0.5, -0.2, 0.1, 0.3], np.float32)
    res = gdjax.fit(
        _embedding_loss,
        {"table": table},
        optax.sgd(0.0),
        (TOKENS, TARGETS),
        batch_size=None,
        epochs=1,
        key=jax.random.key(0),
        diagnostics=True,
    )
    # d loss / d table[v] = (2 / n) * sum over examples with token v of (table[v] - y_i)
    grad = np.zeros(4)
    np.add.at(grad, TOKENS, 2 * (table[TOKENS] - TARGETS) / len(TOKENS))
    np.testing.assert_allclose(res.history["grad_norm"], [np.linalg.norm(grad)], rtol=1e-5)
    assert "input_grad" not in res.history


def test_explicit_input_gradients_on_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"input_gradients=True\) needs a floating-point.*int32"):
        gdjax.fit(
            _embedding_loss,
            {"table": np.zeros(4, np.float32)},
            optax.sgd(0.1),
            (TOKENS, TARGETS),
            batch_size=None,
            epochs=1,
            key=jax.random.key(0),
            diagnostics=gdjax.Diagnostics(input_gradients=True),
        )
    with pytest.raises(TypeError, match="input_gradients must be None, True or False"):
        gdjax.Diagnostics(input_gradients="yes")
