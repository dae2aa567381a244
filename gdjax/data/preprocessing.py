"""Splits, normalization fitted on the training split only, and one-hot encoding."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

__all__ = [
    "Normalizer",
    "fit_min_max",
    "fit_standardizer",
    "one_hot",
    "train_test_split",
    "train_val_test_split",
]


def _check_fraction(name: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return float(value)


def _check_arrays(arrays: tuple[np.ndarray, ...]) -> int:
    if not arrays:
        raise ValueError("arrays: pass at least one array to split")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if np.ndim(a) == 0:
            raise ValueError(f"arrays[{i}] must have a leading example axis; got a scalar")
        if len(a) != n:
            raise ValueError(
                f"arrays must share their first dimension; arrays[0] has {n}, arrays[{i}] "
                f"has {len(a)}"
            )
    return n


def train_val_test_split(
    *arrays: np.ndarray,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    shuffle: bool = True,
    seed: int = 0,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Split arrays along their first axis into train, validation and test parts.

    With ``shuffle=False`` the order is kept (train first, then validation, then test), which is
    the right split for time series. Sizes are ``round(n * fraction)`` for validation and test
    and the rest for training.

    Args:
        *arrays: arrays with the same first dimension (e.g. ``x, y``).
        val_fraction: fraction for validation, in ``[0, 1)``.
        test_fraction: fraction for test, in ``[0, 1)``.
        shuffle: permute examples first (with a NumPy generator seeded by ``seed``).
        seed: the permutation's seed.

    Returns:
        ``(train, val, test)``, each a tuple with one array per input.

    Raises:
        ValueError: if fractions are out of range, sum to ``>= 1``, or arrays disagree in length.

    Examples:
        >>> import numpy as np
        >>> from gdjax.data import train_val_test_split
        >>> x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
        >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(
        ...     x, y, val_fraction=0.2, test_fraction=0.2
        ... )
        >>> assert len(x_tr) == 6 and len(x_va) == 2 and len(x_te) == 2
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1; got {val_fraction} + {test_fraction}"
        )
    n = _check_arrays(arrays)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise ValueError(f"no training examples left: n={n}, val={n_val}, test={n_test}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    idx = np.split(order, [n - n_val - n_test, n - n_test])
    parts = tuple(tuple(np.asarray(a)[i] for a in arrays) for i in idx)
    return parts  # type: ignore[return-value]


def train_test_split(
    *arrays: np.ndarray, test_fraction: float = 0.2, shuffle: bool = True, seed: int = 0
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Split arrays into train and test parts; see :func:`train_val_test_split`.

    Returns:
        ``(train, test)``, each a tuple with one array per input.
    """
    train, _, test = train_val_test_split(
        *arrays, val_fraction=0.0, test_fraction=test_fraction, shuffle=shuffle, seed=seed
    )
    return train, test


class Normalizer(NamedTuple):
    r"""An affine feature map :math:`x \mapsto (x - \text{shift}) / \text{scale}`.

    Fit it on the training split only (:func:`fit_standardizer`, :func:`fit_min_max`) and
    apply the same map to validation and test data, so no statistic leaks from them.

    Attributes:
        shift: per-feature offset.
        scale: per-feature divisor (never zero: constant features get scale 1).
    """

    shift: np.ndarray
    scale: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Normalize ``x``."""
        return ((np.asarray(x) - self.shift) / self.scale).astype(self.shift.dtype)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Map normalized values back: ``z * scale + shift``."""
        return (np.asarray(z) * self.scale + self.shift).astype(self.shift.dtype)


def _float_train(x_train: np.ndarray) -> np.ndarray:
    x = np.asarray(x_train)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"x_train must be a non-empty array of examples; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"x_train must be numeric; got dtype {x.dtype}")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    return x.astype(dtype)


def fit_standardizer(x_train: np.ndarray, axis: int | tuple[int, ...] = 0) -> Normalizer:
    r"""Fit standardization :math:`z = (x - \mu) / \sigma` on training data.

    Args:
        x_train: training examples; statistics are reduced over ``axis``.
        axis: axes to average over (default: the example axis, giving per-feature statistics).

    Returns:
        A :class:`Normalizer` with ``shift = mean`` and ``scale = std`` (1 where std is 0).

    Examples:
        >>> import numpy as np
        >>> from gdjax.data import fit_standardizer
        >>> x_train, x_test = np.array([[1.0], [3.0]]), np.array([[5.0]])
        >>> norm = fit_standardizer(x_train)
        >>> assert np.allclose(norm(x_train).ravel(), [-1, 1]) and np.allclose(norm(x_test), 3)
    """
    x = _float_train(x_train)
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    std = np.where(std > 0, std, 1).astype(x.dtype)
    return Normalizer(
        np.squeeze(mean, 0) if axis == 0 else mean, np.squeeze(std, 0) if axis == 0 else std
    )


def fit_min_max(
    x_train: np.ndarray, feature_range: tuple[float, float] = (0.0, 1.0), axis: int = 0
) -> Normalizer:
    r"""Fit min-max scaling of each feature to ``feature_range`` on training data.

    :math:`z = a + (x - \min) (b - a) / (\max - \min)` for ``feature_range = (a, b)``; values
    outside the training range (in validation/test data) map outside ``[a, b]``.

    Args:
        x_train: training examples.
        feature_range: target interval ``(a, b)`` with ``a < b``.
        axis: the example axis.

    Returns:
        A :class:`Normalizer` (constant features map to ``a``).
    """
    try:
        low, high = (float(v) for v in feature_range)
    except (TypeError, ValueError):
        raise TypeError(f"feature_range must be a pair of numbers; got {feature_range!r}") from None
    if not low < high:
        raise ValueError(f"feature_range must satisfy low < high; got {feature_range!r}")
    x = _float_train(x_train)
    lo, hi = x.min(axis=axis), x.max(axis=axis)
    span = np.where(hi > lo, hi - lo, 1).astype(x.dtype)
    scale = span / (high - low)
    return Normalizer((lo - low * scale).astype(x.dtype), scale.astype(x.dtype))


def one_hot(labels: np.ndarray, num_classes: int, dtype: np.dtype = np.float32) -> np.ndarray:
    """One-hot encode integer labels.

    Args:
        labels: integer array of any shape with values in ``[0, num_classes)``.
        num_classes: number of classes ``K``.
        dtype: output dtype.

    Returns:
        Array of shape ``labels.shape + (K,)``.

    Raises:
        ValueError: if a label is out of range or ``num_classes < 1``.
        TypeError: if labels are not integers.
    """
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool):
        raise TypeError(f"num_classes must be an int; got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers; got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}); got values in [{labels.min()}, {labels.max()}]"
        )
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)
