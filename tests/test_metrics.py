"""Metrics against NumPy computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax import metrics

RNG = np.random.default_rng(1)
LOGITS = jnp.asarray(RNG.normal(size=(50, 6)), jnp.float32)
LABELS = jnp.asarray(RNG.integers(0, 6, 50), jnp.int32)


def test_accuracy_integer_and_one_hot():
    expected = np.mean(np.argmax(np.asarray(LOGITS), 1) == np.asarray(LABELS))
    np.testing.assert_allclose(metrics.accuracy(LOGITS, LABELS), expected)
    np.testing.assert_allclose(metrics.accuracy(LOGITS, jax.nn.one_hot(LABELS, 6)), expected)
    assert metrics.accuracy(jnp.eye(3), jnp.arange(3)) == 1.0


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_top_k_accuracy_matches_numpy(k):
    top = np.argsort(-np.asarray(LOGITS), axis=1)[:, :k]
    expected = np.mean([label in row for label, row in zip(np.asarray(LABELS), top, strict=True)])
    np.testing.assert_allclose(metrics.top_k_accuracy(LOGITS, LABELS, k), expected)
    if k == 1:
        np.testing.assert_allclose(expected, metrics.accuracy(LOGITS, LABELS))


def test_where_mask_and_sequences():
    logits = jnp.stack([LOGITS[:10], LOGITS[10:20]])  # (2, 10, 6)
    labels = jnp.stack([LABELS[:10], LABELS[10:20]])
    mask = jnp.arange(10)[None, :] < jnp.array([[10], [0]])
    np.testing.assert_allclose(
        metrics.accuracy(logits, labels, where=mask), metrics.accuracy(LOGITS[:10], LABELS[:10])
    )


def test_binary_accuracy():
    scores = jnp.array([2.0, -1.0, 0.5, -3.0])
    assert metrics.binary_accuracy(scores, jnp.array([1, 0, 0, 0])) == 0.75
    assert metrics.binary_accuracy(scores, jnp.array([1, -1, 1, -1])) == 1.0
    assert metrics.binary_accuracy(jax.nn.sigmoid(scores), jnp.array([1, 0, 1, 0]), 0.5) == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="labels"):
        metrics.accuracy(LOGITS, LABELS[:3])
    with pytest.raises(ValueError, match="k must be"):
        metrics.top_k_accuracy(LOGITS, LABELS, 7)
    with pytest.raises(TypeError, match="k must be"):
        metrics.top_k_accuracy(LOGITS, LABELS, 2.0)
    with pytest.raises(ValueError, match="same shape"):
        metrics.binary_accuracy(jnp.ones(3), jnp.ones(4))
