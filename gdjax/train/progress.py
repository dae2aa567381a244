"""A progress bar over training steps (tqdm), updated between compiled chunks.

Shown by default when standard error is a terminal (``TrainOptions.show_progress``).

The bar advances after every compiled chunk: once per epoch, or more often when the epoch is
split into chunks (``checkpoint_every_steps``, ``progress_every_steps``). It shows the epoch,
the training loss so far in that epoch (the epoch's mean once it ends), the last validation
loss and the throughput in examples per second since the previous update.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np


def running_loss(acc: Mapping[str, Any]) -> float:
    """Mean training loss so far in the epoch from the engine's running sums (members averaged).

    Reading it waits for the chunk that produced ``acc`` to finish.
    """
    total, count = (np.asarray(x, np.float64) for x in jax.device_get((acc["loss"], acc["count"])))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.atleast_1d(total / count)
    finite = mean[np.isfinite(mean)]
    return float(finite.mean()) if finite.size else float("nan")


class Progress:
    """Steps done out of ``epochs * steps_per_epoch``, with epoch, losses and examples/s.

    Args:
        enabled: Whether to draw anything (``fit(progress=...)``; by default, whether standard
            error is a terminal).
        epochs: Number of epochs.
        steps_per_epoch: Optimizer steps per epoch.
        initial_steps: Steps already done (when resuming).
        desc: Label in front of the bar.
    """

    def __init__(
        self,
        enabled: bool,
        epochs: int,
        steps_per_epoch: int,
        initial_steps: int = 0,
        desc: str = "fit",
    ) -> None:
        self._bar = None
        self._epochs = epochs
        self._post: dict[str, str] = {}
        if enabled:
            from tqdm.auto import tqdm  # lazy: only when a bar is wanted

            total = epochs * steps_per_epoch
            self._bar = tqdm(total=total, initial=min(initial_steps, total), desc=desc, unit="step")
        self._t = time.perf_counter()

    @property
    def enabled(self) -> bool:
        """Whether the bar is drawn (callers skip reading losses from the device otherwise)."""
        return self._bar is not None

    def update(
        self, steps: int, examples: int, epoch: int, losses: Mapping[str, Any] | None = None
    ) -> None:
        """Advance by ``steps`` after ``examples`` examples, during or at the end of ``epoch``.

        Args:
            steps: Optimizer steps run since the last update.
            examples: Examples processed since the last update (all members of a sweep).
            epoch: The epoch (1-based) these steps belong to.
            losses: ``loss`` (the epoch's mean so far) and, at the end of an epoch,
                ``val_loss``; scalars.
        """
        if self._bar is None:
            return
        now = time.perf_counter()
        rate = examples / max(now - self._t, 1e-9)
        self._t = now
        self._post["epoch"] = f"{epoch}/{self._epochs}"
        for k, val in (losses or {}).items():
            if np.ndim(val) == 0:
                self._post[k] = f"{float(val):.4g}"
        self._post.pop("ex/s", None)  # keep it last
        self._post["ex/s"] = f"{rate:.3g}"
        self._bar.set_postfix(self._post, refresh=False)
        self._bar.update(steps)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
