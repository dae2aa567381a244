"""Sliding windows over time series for sequence prediction."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["make_windows"]


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}")
    return int(value)


def make_windows(
    series: np.ndarray,
    window: int,
    horizon: int = 1,
    *,
    stride: int = 1,
    target_columns: int | list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into (input window, following values) pairs.

    Window ``i`` takes ``x = series[s : s + window]`` and ``y = series[s + window :
    s + window + horizon]`` with ``s = i * stride``.

    Args:
        series: array ``(T,)`` or ``(T, F)`` ordered in time.
        window: input steps per example.
        horizon: future steps to predict.
        stride: steps between window starts.
        target_columns: feature columns to predict (default: all); an int keeps that column's
            axis squeezed.

    Returns:
        ``(x, y)`` with ``x`` of shape ``(N, window, F)`` and ``y`` of shape
        ``(N, horizon, F')``, or ``(N, horizon)`` for a 1-D series or an int
        ``target_columns``. Split these chronologically (``shuffle=False`` in
        :func:`train_val_test_split`) to avoid leaking the future.

    Examples:
        >>> import numpy as np
        >>> from gdjax.data import make_windows
        >>> x, y = make_windows(np.arange(10.0), window=3, horizon=2)
        >>> assert x.shape == (6, 3, 1) and y.shape == (6, 2)
        >>> assert x[0].ravel().tolist() == [0, 1, 2] and y[0].tolist() == [3, 4]
    """
    window = _check_int("window", window, 1)
    horizon = _check_int("horizon", horizon, 1)
    stride = _check_int("stride", stride, 1)
    s = np.asarray(series)
    if s.ndim not in (1, 2):
        raise ValueError(f"series must have shape (T,) or (T, F); got {s.shape}")
    squeeze = s.ndim == 1
    s2 = s[:, None] if squeeze else s
    if len(s2) < window + horizon:
        raise ValueError(
            f"series of length {len(s2)} is shorter than window + horizon = {window + horizon}"
        )
    starts = np.arange(0, len(s2) - window - horizon + 1, stride)
    x = s2[starts[:, None] + np.arange(window)]
    y = s2[starts[:, None] + window + np.arange(horizon)]
    if target_columns is not None:
        if isinstance(target_columns, numbers.Integral):
            squeeze = True
            target_columns = [int(target_columns)]
        cols = list(target_columns)
        bad = [c for c in cols if not -s2.shape[1] <= c < s2.shape[1]]
        if bad:
            raise ValueError(f"target_columns {bad} out of range for {s2.shape[1]} features")
        y = y[..., cols]
    if squeeze:
        y = y[..., 0]
    return x, y
