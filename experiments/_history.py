"""Reading ``gdjax.fit`` / ``gdjax.sweep`` histories the way the study pages report them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def epoch_loss(history: Mapping[str, np.ndarray]) -> np.ndarray:
    """The training loss per epoch, NaN for an epoch that hit a non-finite loss or gradient.

    The engine never applies a non-finite step: with ``on_nonfinite="stop"`` the epoch in which
    it happens reports the mean over the steps it did apply, and later epochs are NaN. A page
    calls such a run diverged from that epoch on.
    """
    loss = np.asarray(history["loss"])
    return np.where(np.asarray(history["nonfinite_steps"]) > 0, np.nan, loss)


def final(values: np.ndarray, epochs_run: np.ndarray | int) -> np.ndarray:
    """Each run's value at the last epoch it ran (a stopped run's history is NaN after that).

    ``values`` is ``(M, epochs)`` with ``epochs_run`` of shape ``(M,)``, or ``(epochs,)`` with
    an int.
    """
    values = np.asarray(values)
    last = np.maximum(np.asarray(epochs_run), 1) - 1
    if values.ndim == 1:
        return values[int(last)]
    return values[np.arange(len(values)), last]
