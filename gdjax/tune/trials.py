"""Trials and the search's book: every trial's configuration and history, the compute spent,
the best value seen over time, and the best trial's parameters.

The book is filled after every epoch of every program (the engine's ``on_epoch`` hook): each
member still training appends that epoch's statistics to its trial's history. *Compute* is
counted in member-epochs of the programs that ran — a member frozen in a program still costs
its slot, which is why stopped trials are repacked away.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdjax.train.history import CONTROL_KEYS
from gdjax.train.stopping import REASONS
from gdjax.tune import population as pop


@dataclass
class Trial:
    """One configuration and what happened to it.

    Attributes:
        number: The trial's index in the search (also its seed offset with
            ``seed_per_trial=True``).
        config: The hyperparameters it started with (``None`` for an inactive dimension).
        history: ``{key: array (epochs, ...)}`` of the epochs it trained.
        epochs: Epochs trained.
        objective: The objective at its last epoch (NaN if it diverged or never trained).
        status: ``"completed"``, ``"stopped at rung <k>"``, ``"pruned"``, ``"diverged"``,
            ``"early stopping"``, ``"loss change below tolerance"``, or ``"running"``.
        bracket: Its Hyperband bracket (0 for other schedulers).
        schedule: PBT's changes: ``[{"epoch", "donor", "config"}]`` — after ``epoch`` the trial
            copied member ``donor``'s state and continued with ``config``.
    """

    number: int
    config: dict[str, Any]
    history: dict[str, Any] = field(default_factory=dict)
    epochs: int = 0
    objective: float = math.nan
    status: str = "pending"
    bracket: int = 0
    schedule: list[dict[str, Any]] = field(default_factory=list)

    def final_config(self) -> dict[str, Any]:
        """The hyperparameters it ended with (its config, unless PBT moved them)."""
        return dict(self.schedule[-1]["config"]) if self.schedule else dict(self.config)


class Book:
    """The search's records (see the module docstring)."""

    def __init__(self, objective: str, mode: str, trials: list[Trial]) -> None:
        self.objective = objective
        self.mode = mode
        self.trials = trials
        self.compute = 0
        self.timeline: list[dict[str, float]] = []
        self.best_seen = math.nan
        self.best_number: int | None = None
        self.best_params: Any = None
        self.best_model_state: Any = None
        self.elapsed_before = 0.0
        self.compute_before = 0
        self._t0 = time.perf_counter()

    # --- ordering -------------------------------------------------------------------------

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b`` (NaN never beats anything; anything beats NaN)."""
        if not math.isfinite(a):
            return False
        if not math.isfinite(b):
            return True
        return a < b if self.mode == "min" else a > b

    def ranked(self, numbers: list[int] | np.ndarray) -> list[int]:
        """Trial numbers best first; non-finite objectives last (in number order)."""
        numbers = [int(n) for n in numbers]
        sign = 1.0 if self.mode == "min" else -1.0

        def key(n: int) -> tuple:
            v = self.trials[n].objective
            return (0, sign * v, n) if math.isfinite(v) else (1, 0.0, n)

        return sorted(numbers, key=key)

    # --- recording ------------------------------------------------------------------------

    def seconds(self) -> float:
        """Wall-clock seconds of the search so far (earlier processes included on resume)."""
        return self.elapsed_before + time.perf_counter() - self._t0

    def on_epoch(self, group: pop.Group) -> Any:
        """The engine's ``on_epoch`` hook for ``group``."""

        def hook(run: Any, stats: dict) -> None:
            del run
            self.record(group, stats)

        return hook

    def record(self, group: pop.Group, stats: dict) -> None:
        """Append one epoch of ``group``'s statistics to its active members' trials."""
        stats = {k: np.asarray(v) for k, v in stats.items()}
        stopped = stats["stopped"]
        for pos in np.flatnonzero(group.active):
            trial = self.trials[int(group.trials[pos])]
            for key, value in stats.items():
                if key not in CONTROL_KEYS:
                    trial.history.setdefault(key, []).append(value[pos])
            trial.epochs += 1
            trial.status = "running"
            trial.objective = float(stats[self.objective][pos])
            if self.better(trial.objective, self.best_seen):
                self.best_seen = trial.objective
            if stopped[pos]:
                reason = REASONS[int(stats["reason"][pos])]
                trial.status = "diverged" if reason == "non-finite loss" else reason
                trial.objective = math.nan if trial.status == "diverged" else trial.objective
                group.active[pos] = False
        self.compute += group.size
        self.timeline.append(
            {"seconds": self.seconds(), "member_epochs": self.compute, "best": self.best_seen}
        )

    def finish(self, group: pop.Group, positions: Any, status: str | None) -> None:
        """Trials at ``positions`` leave their program: set ``status`` (unless they already
        stopped on their own) and keep their parameters if one is the best so far."""
        for pos in np.asarray(positions, np.int64):
            trial = self.trials[int(group.trials[pos])]
            if status is not None and trial.status == "running":
                trial.status = status
            if trial.status != "diverged" and self.better(
                trial.objective,
                math.nan if self.best_number is None else self.trials[self.best_number].objective,
            ):
                self.best_number = trial.number
                self.best_params, self.best_model_state = pop.member_params(group, int(pos))
