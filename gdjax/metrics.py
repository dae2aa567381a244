"""Classification metrics (values in ``[0, 1]``, averaged over examples)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["accuracy", "binary_accuracy", "top_k_accuracy"]


def _int_labels(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if labels.shape == logits.shape[:-1] and jnp.issubdtype(labels.dtype, jnp.integer):
        return labels
    if labels.shape == logits.shape and logits.ndim >= 1:
        return jnp.argmax(labels, axis=-1)
    raise ValueError(
        "labels must be integers of shape logits.shape[:-1] or one-hot of shape logits.shape; "
        f"got labels {labels.dtype}{labels.shape} for logits {logits.shape}"
    )


def _mean(hits: jax.Array, where: jax.Array | None) -> jax.Array:
    hits = hits.astype(jnp.float32)
    if where is None:
        return jnp.mean(hits)
    where = jnp.broadcast_to(jnp.asarray(where, bool), hits.shape)
    return jnp.sum(jnp.where(where, hits, 0.0)) / jnp.maximum(jnp.sum(where), 1)


def accuracy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Fraction of examples whose highest-scoring class is the label.

    Args:
        logits: scores of shape ``(..., K)`` (logits, probabilities, any monotone scores).
        labels: integer classes ``(...)`` or one-hot ``(..., K)``.
        where: optional boolean mask ``(...)`` of examples to count.

    Examples:
        >>> import jax.numpy as jnp
        >>> from gdjax.metrics import accuracy
        >>> logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
        >>> assert accuracy(logits, jnp.array([1, 0, 0])) == 2 / 3
    """
    labels = _int_labels(logits, labels)
    return _mean(jnp.argmax(logits, axis=-1) == labels, where)


def top_k_accuracy(
    logits: jax.Array, labels: jax.Array, k: int = 5, where: jax.Array | None = None
) -> jax.Array:
    """Fraction of examples whose label is among the ``k`` highest-scoring classes.

    Ties are broken in favour of the label (it counts when its score equals the ``k``-th
    largest).

    Args:
        logits: scores of shape ``(..., K)``.
        labels: integer classes ``(...)`` or one-hot ``(..., K)``.
        k: number of top classes, ``1 <= k <= K``.
        where: optional boolean mask ``(...)``.
    """
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    num_classes = jnp.shape(logits)[-1]
    if not 1 <= k <= num_classes:
        raise ValueError(f"k must be in [1, {num_classes}] (the number of classes); got {k}")
    labels = _int_labels(logits, labels)
    true = jnp.take_along_axis(logits, labels[..., None], axis=-1)
    rank = jnp.sum(logits > true, axis=-1)  # classes strictly better than the label
    return _mean(rank < k, where)


def binary_accuracy(
    scores: jax.Array,
    labels: jax.Array,
    threshold: float = 0.0,
    where: jax.Array | None = None,
) -> jax.Array:
    """Accuracy of ``scores > threshold`` against binary labels.

    Args:
        scores: logits (threshold 0) or probabilities (use ``threshold=0.5``).
        labels: labels of the same shape, in ``{0, 1}`` or ``{-1, +1}`` (positive means
            ``label > 0``).
        threshold: decision threshold.
        where: optional boolean mask.
    """
    if jnp.shape(scores) != jnp.shape(labels):
        raise ValueError(
            f"scores and labels must have the same shape; got {jnp.shape(scores)} and "
            f"{jnp.shape(labels)}"
        )
    return _mean((jnp.asarray(scores) > threshold) == (jnp.asarray(labels) > 0), where)
