"""A progress bar over rounds (tqdm), updated after each round; off unless asked."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np


class RoundBar:
    """Rounds done out of ``rounds``, with the round's losses and examples trained per second.

    Args:
        enabled: Whether to draw anything.
        rounds: Total number of rounds.
        initial: Rounds already done (when resuming).
    """

    def __init__(self, enabled: bool, rounds: int, initial: int = 0) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm  # lazy: only when a bar is wanted

            self._bar = tqdm(
                total=rounds, initial=min(initial, rounds), desc="federated", unit="round"
            )
        self._t = time.perf_counter()

    def update(self, examples: int, stats: Mapping[str, Any]) -> None:
        """Advance by one round in which the clients trained on ``examples`` example visits."""
        if self._bar is None:
            return
        now = time.perf_counter()
        post = {
            k: f"{float(stats[k]):.4g}"
            for k in ("loss", "val_loss")
            if k in stats and np.ndim(stats[k]) == 0
        }
        post["ex/s"] = f"{examples / max(now - self._t, 1e-9):.3g}"
        self._t = now
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
