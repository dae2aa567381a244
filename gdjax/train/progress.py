"""A progress bar over epochs (tqdm), updated between compiled chunks; off unless asked for."""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """Shows epochs done, the latest losses and the throughput in examples per second.

    Args:
        enabled: Whether to draw anything (``fit(progress=...)``; off by default).
        total: Number of epochs.
        initial: Epochs already done (when resuming).
        desc: Label in front of the bar.
    """

    def __init__(self, enabled: bool, total: int, initial: int = 0, desc: str = "fit") -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm  # lazy: only when a bar is wanted

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch")
        self._t = time.perf_counter()

    def update(self, examples: int, stats: dict[str, Any], epochs: int = 1) -> None:
        """Advance by ``epochs`` after ``examples`` examples were processed."""
        if self._bar is None:
            return
        now = time.perf_counter()
        rate = examples / max(now - self._t, 1e-9)
        self._t = now
        post = {
            k: f"{float(stats[k]):.4g}"
            for k in ("loss", "val_loss")
            if k in stats and getattr(stats[k], "ndim", 1) == 0
        }
        post["ex/s"] = f"{rate:.3g}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(epochs)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
