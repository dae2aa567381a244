"""Losses against optax's losses and closed forms (independent oracles)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdjax import losses

RNG = np.random.default_rng(0)
P = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
T = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
LOGITS = jnp.asarray(RNG.normal(size=(5, 4)) * 3, jnp.float32)
LABELS = jnp.asarray([0, 3, 1, 2, 3])


def test_mse_mae_closed_form():
    np.testing.assert_allclose(
        losses.mse(P, T), np.mean((np.asarray(P) - np.asarray(T)) ** 2), rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.mae(P, T), np.mean(np.abs(np.asarray(P) - np.asarray(T))), rtol=1e-6
    )
    np.testing.assert_allclose(losses.mse(P, T), jnp.mean(optax.squared_error(P, T)), rtol=1e-6)
    assert losses.mse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])) == 2.5


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_matches_optax(delta):
    expected = jnp.mean(optax.huber_loss(P, T, delta=delta))
    np.testing.assert_allclose(losses.huber(P, T, delta), expected, rtol=1e-6)
    # closed form at a quadratic and a linear point
    assert losses.huber(jnp.array([0.5]), jnp.array([0.0]), 1.0) == 0.125
    assert losses.huber(jnp.array([3.0]), jnp.array([0.0]), 1.0) == 2.5


def test_softmax_cross_entropy_integer_and_one_hot_match_optax():
    expected = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS))
    np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, LABELS), expected, rtol=1e-6)
    onehot = jax.nn.one_hot(LABELS, 4)
    np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, onehot), expected, rtol=1e-6)
    probs = jax.nn.softmax(jnp.asarray(RNG.normal(size=(5, 4)), jnp.float32))
    np.testing.assert_allclose(
        losses.softmax_cross_entropy(LOGITS, probs),
        jnp.mean(optax.softmax_cross_entropy(LOGITS, probs)),
        rtol=1e-6,
    )


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_label_smoothing_matches_optax_smooth_labels(alpha):
    smoothed = optax.smooth_labels(jax.nn.one_hot(LABELS, 4), alpha)
    expected = jnp.mean(optax.softmax_cross_entropy(LOGITS, smoothed))
    got = losses.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    got = losses.softmax_cross_entropy(LOGITS, jax.nn.one_hot(LABELS, 4), label_smoothing=alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_cross_entropy_closed_form_uniform_logits():
    assert np.isclose(
        losses.softmax_cross_entropy(jnp.zeros((3, 5)), jnp.array([0, 1, 4])), np.log(5)
    )


def test_sigmoid_bce_matches_optax_and_is_stable():
    labels = jnp.asarray(RNG.integers(0, 2, (6, 3)), jnp.float32)
    expected = jnp.mean(optax.sigmoid_binary_cross_entropy(P * 5, labels))
    np.testing.assert_allclose(
        losses.sigmoid_binary_cross_entropy(P * 5, labels), expected, rtol=1e-6
    )
    big = losses.sigmoid_binary_cross_entropy(
        jnp.array([100.0, -100.0]), jnp.array([0.0, 1.0]), reduction="none"
    )
    np.testing.assert_allclose(big, [100.0, 100.0])


def test_hinge_matches_optax():
    labels = jnp.asarray(RNG.choice([-1.0, 1.0], 6), jnp.float32)
    scores = P[:, 0]
    np.testing.assert_allclose(
        losses.hinge(scores, labels), jnp.mean(optax.hinge_loss(scores, labels)), rtol=1e-6
    )


def test_multiclass_hinge_matches_optax():
    expected = jnp.mean(optax.losses.multiclass_hinge_loss(LOGITS, LABELS))
    np.testing.assert_allclose(losses.multiclass_hinge(LOGITS, LABELS), expected, rtol=1e-6)


def test_reductions_and_where():
    per = losses.mse(P, T, reduction="none")
    assert per.shape == P.shape
    np.testing.assert_allclose(losses.mse(P, T, reduction="sum"), jnp.sum(per), rtol=1e-6)
    where = jnp.array([True, False, True, True, False, True])
    ce = losses.softmax_cross_entropy(
        jnp.tile(LOGITS[:1], (6, 1)), jnp.zeros(6, jnp.int32), where=where
    )
    np.testing.assert_allclose(
        ce, losses.softmax_cross_entropy(LOGITS[:1], jnp.array([0])), rtol=1e-6
    )
    expected = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS))
    masked = losses.softmax_cross_entropy(
        jnp.concatenate([LOGITS, LOGITS]),
        jnp.concatenate([LABELS, LABELS]),
        where=jnp.arange(10) < 5,
    )
    np.testing.assert_allclose(masked, expected, rtol=1e-6)


def test_losses_work_under_jit_and_grad():
    g = jax.jit(jax.grad(lambda p: losses.mse(p, T)))(P)
    np.testing.assert_allclose(g, 2 * (P - T) / P.size, rtol=1e-5)


def test_l2_and_l1_penalties_with_masks():
    params = {"dense": {"kernel": jnp.full((2, 3), 2.0), "bias": jnp.ones(3)}, "w": -jnp.ones(4)}
    assert losses.l2_penalty(params) == 0.5 * (6 * 4 + 3 + 4)
    assert losses.l1_penalty(params) == 12 + 3 + 4
    assert losses.l2_penalty(params, mask=losses.kernel_mask) == 12.0
    mask = {"dense": {"kernel": False, "bias": True}, "w": True}
    assert losses.l1_penalty(params, mask=mask) == 7.0
    grad = jax.grad(losses.l2_penalty)(params)
    np.testing.assert_allclose(grad["dense"]["kernel"], params["dense"]["kernel"])
    with pytest.raises(ValueError, match="mask"):
        losses.l2_penalty(params, mask={"dense": True})


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: losses.mse(jnp.ones((4, 1)), jnp.ones(4)), ValueError, "same shape"),
        (lambda: losses.mse(P, T, reduction="avg"), ValueError, "reduction"),
        (lambda: losses.huber(P, T, delta=0.0), ValueError, "delta"),
        (lambda: losses.softmax_cross_entropy(LOGITS, LABELS[:3]), ValueError, "labels"),
        (
            lambda: losses.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=1.0),
            ValueError,
            "label_smoothing",
        ),
        (lambda: losses.sigmoid_binary_cross_entropy(P, T[:, 0]), ValueError, "same shape"),
        (lambda: losses.multiclass_hinge(LOGITS, LABELS.astype(float)), ValueError, "labels"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
