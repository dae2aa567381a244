r"""Loss functions and parameter penalties.

Every loss takes predictions first and targets second, checks that their shapes agree (a
``(N, 1)`` prediction against ``(N,)`` targets would silently broadcast to ``(N, N)``), and
reduces with ``reduction``:

- ``"mean"`` (default): the **mean over the batch** — over all elements for the element-wise
  regression losses (:func:`mse`, :func:`mae`, :func:`huber`), over all examples for the
  classification losses. With ``where`` (a boolean mask broadcastable to the unreduced loss,
  e.g. to skip padding tokens) the mean is over the selected entries only.
- ``"sum"``: the sum (of the selected entries).
- ``"none"``: the unreduced values (masked-out entries set to 0).

The penalties :func:`l2_penalty` and :func:`l1_penalty` sum over a parameter tree, optionally
restricted by a mask (e.g. :func:`kernel_mask` to leave biases and normalization scales out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "hinge",
    "huber",
    "kernel_mask",
    "l1_penalty",
    "l2_penalty",
    "mae",
    "mse",
    "multiclass_hinge",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: jax.Array, reduction: str, where: jax.Array | None) -> jax.Array:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}; got {reduction!r}")
    if where is not None:
        where = jnp.broadcast_to(jnp.asarray(where, bool), values.shape)
        values = jnp.where(where, values, 0.0)
    if reduction == "none":
        return values
    if reduction == "sum":
        return jnp.sum(values)
    if where is None:
        return jnp.mean(values)
    return jnp.sum(values) / jnp.maximum(jnp.sum(where), 1)


def _same_shape(pname: str, p: jax.Array, tname: str, t: jax.Array) -> None:
    if jnp.shape(p) != jnp.shape(t):
        raise ValueError(
            f"{pname} and {tname} must have the same shape; got {pname} {jnp.shape(p)} and "
            f"{tname} {jnp.shape(t)}"
        )


def mse(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Mean squared error :math:`\frac1n \sum_i (\hat y_i - y_i)^2` over all elements.

    Args:
        predictions: model outputs.
        targets: targets of the same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (see the module docstring).
        where: optional boolean mask of entries to include.

    Examples:
        >>> import jax.numpy as jnp
        >>> from gdjax.losses import mse
        >>> assert mse(jnp.array([1.0, 2.0]), jnp.array([0.0, 0.0])) == 2.5
    """
    _same_shape("predictions", predictions, "targets", targets)
    return _reduce(jnp.square(predictions - targets), reduction, where)


def mae(
    predictions: jax.Array,
    targets: jax.Array,
    *,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Mean absolute error :math:`\frac1n \sum_i |\hat y_i - y_i|` over all elements.

    Args:
        predictions: model outputs.
        targets: targets of the same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        where: optional boolean mask of entries to include.
    """
    _same_shape("predictions", predictions, "targets", targets)
    return _reduce(jnp.abs(predictions - targets), reduction, where)


def huber(
    predictions: jax.Array,
    targets: jax.Array,
    delta: float = 1.0,
    *,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Huber loss: quadratic near zero, linear in the tails.

    With :math:`r = \hat y - y`,
    :math:`\ell(r) = \tfrac12 r^2` if :math:`|r| \le \delta`, else
    :math:`\delta (|r| - \tfrac12 \delta)`.

    Args:
        predictions: model outputs.
        targets: targets of the same shape.
        delta: where the loss turns linear; must be positive.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        where: optional boolean mask of entries to include.
    """
    if isinstance(delta, (int, float)) and not delta > 0:
        raise ValueError(f"delta must be > 0; got {delta!r}")
    _same_shape("predictions", predictions, "targets", targets)
    r = jnp.abs(predictions - targets)
    quad = jnp.minimum(r, delta)
    # 0.5 q^2 + delta (r - q) equals both branches of the definition.
    return _reduce(0.5 * quad**2 + delta * (r - quad), reduction, where)


def softmax_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Cross-entropy between ``softmax(logits)`` and integer or one-hot/probability labels.

    Per example, :math:`\ell = -\sum_k q_k \log \mathrm{softmax}(z)_k` where :math:`q` is the
    one-hot label (or the given distribution). With label smoothing :math:`\alpha`,
    :math:`q \leftarrow (1 - \alpha) q + \alpha / K`.

    Args:
        logits: unnormalized scores of shape ``(..., K)``.
        labels: integer class indices of shape ``(...)``, or one-hot / probability vectors of
            shape ``(..., K)`` (floating point).
        label_smoothing: :math:`\alpha \in [0, 1)`.
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (shape ``(...)``).
        where: optional boolean mask of shape ``(...)`` selecting examples (e.g. non-padding
            tokens of a language model).

    Examples:
        >>> import jax.numpy as jnp
        >>> from gdjax.losses import softmax_cross_entropy
        >>> logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
        >>> a = softmax_cross_entropy(logits, jnp.array([0, 2]))
        >>> b = softmax_cross_entropy(logits, jnp.eye(3)[jnp.array([0, 2])])
        >>> assert jnp.allclose(a, b)
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if isinstance(label_smoothing, (int, float)) and not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    if logits.ndim < 1:
        raise ValueError(f"logits must have a class axis; got shape {logits.shape}")
    logp = jax.nn.log_softmax(logits, axis=-1)
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.shape == logits.shape[:-1]:
        nll = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    elif jnp.issubdtype(labels.dtype, jnp.floating) and labels.shape == logits.shape:
        nll = -jnp.sum(labels * logp, axis=-1)
    else:
        raise ValueError(
            "labels must be integers of shape logits.shape[:-1] or floats of shape logits.shape; "
            f"got labels {labels.dtype}{labels.shape} for logits {logits.shape}"
        )
    if label_smoothing:
        uniform = -jnp.mean(logp, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    return _reduce(nll, reduction, where)


def sigmoid_binary_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Binary cross-entropy from logits, computed stably.

    :math:`\ell = -y \log \sigma(z) - (1 - y) \log(1 - \sigma(z))
    = \max(z, 0) - z y + \log(1 + e^{-|z|})`.

    Args:
        logits: scores :math:`z` of any shape.
        labels: targets :math:`y \in [0, 1]` of the same shape (``{0, 1}`` or probabilities).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        where: optional boolean mask.
    """
    _same_shape("logits", logits, "labels", labels)
    labels = jnp.asarray(labels, jnp.result_type(logits))
    values = jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return _reduce(values, reduction, where)


def hinge(
    scores: jax.Array,
    labels: jax.Array,
    *,
    margin: float = 1.0,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Binary hinge loss :math:`\max(0, m - y s)` for labels :math:`y \in \{-1, +1\}`.

    With an L2 penalty on the weights this is the soft-margin linear SVM objective.

    Args:
        scores: real-valued scores :math:`s`.
        labels: :math:`\pm 1` labels of the same shape.
        margin: the margin :math:`m`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        where: optional boolean mask.
    """
    _same_shape("scores", scores, "labels", labels)
    return _reduce(jax.nn.relu(margin - labels * scores), reduction, where)


def multiclass_hinge(
    scores: jax.Array,
    labels: jax.Array,
    *,
    reduction: str = "mean",
    where: jax.Array | None = None,
) -> jax.Array:
    r"""Crammer–Singer multiclass hinge loss :math:`\max_k (s_k + [k \ne y]) - s_y`.

    Args:
        scores: scores of shape ``(..., K)``.
        labels: integer classes of shape ``(...)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        where: optional boolean mask of shape ``(...)``.
    """
    scores = jnp.asarray(scores)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != scores.shape[:-1]:
        raise ValueError(
            f"labels must be integers of shape scores.shape[:-1]; got {labels.dtype}"
            f"{labels.shape} for scores {scores.shape}"
        )
    onehot = jax.nn.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    true = jnp.sum(scores * onehot, axis=-1)
    values = jnp.max(scores + 1.0 - onehot, axis=-1) - true
    return _reduce(values, reduction, where)


Mask = Any | Callable[[Any], Any]


def _masked_leaves(params: Any, mask: Mask | None) -> list[jax.Array]:
    leaves = jax.tree.leaves(params)
    if mask is None:
        return leaves
    mask_tree = mask(params) if callable(mask) else mask
    try:
        flags = jax.tree.leaves(jax.tree.map(lambda _, m: m, params, mask_tree))
    except ValueError as e:
        raise ValueError(f"mask must have the structure of params ({e})") from None
    return [leaf for leaf, keep in zip(leaves, flags, strict=True) if keep]


def l2_penalty(params: Any, mask: Mask | None = None) -> jax.Array:
    r"""Half the squared L2 norm of a parameter tree, :math:`\tfrac12 \sum_i w_i^2`.

    The factor :math:`\tfrac12` makes the gradient :math:`w` itself, so adding
    ``lam * l2_penalty(params)`` to a loss is weight decay with rate ``lam`` for plain SGD.

    Args:
        params: a pytree of arrays.
        mask: ``None`` (all leaves), a pytree of booleans with the structure of ``params``, or a
            function ``params -> mask`` such as :func:`kernel_mask`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from gdjax.losses import kernel_mask, l2_penalty
        >>> params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
        >>> assert l2_penalty(params) == 3.0
        >>> assert l2_penalty(params, mask=kernel_mask) == 2.0
    """
    leaves = _masked_leaves(params, mask)
    return sum((0.5 * jnp.sum(jnp.square(x)) for x in leaves), start=jnp.zeros(()))


def l1_penalty(params: Any, mask: Mask | None = None) -> jax.Array:
    r"""L1 norm of a parameter tree, :math:`\sum_i |w_i|` (its subgradient is
    :math:`\mathrm{sign}(w)`).

    Args:
        params: a pytree of arrays.
        mask: as for :func:`l2_penalty`.
    """
    leaves = _masked_leaves(params, mask)
    return sum((jnp.sum(jnp.abs(x)) for x in leaves), start=jnp.zeros(()))


def kernel_mask(params: Any) -> Any:
    """Mask selecting leaves with ``ndim >= 2`` (dense/conv kernels, embeddings).

    Biases and batch-norm scales/offsets (1-D) are left out, the usual choice for weight
    penalties.
    """
    return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)
