"""What a search returns: every trial, the best one and its parameters, compute and time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdjax.tune.trials import Trial


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "nan"
        return f"{v:.4g}"
    return str(value)


@dataclass
class TuneResult:
    """The outcome of :func:`gdjax.tune.search`.

    Attributes:
        trials: Every trial (configuration, history, final objective, status), by number.
        objective: The history key that was optimised, and ``mode`` (``"min"``/``"max"``).
        best: The best trial (by its final objective), or ``None`` if every trial diverged.
        best_params: The best trial's trained parameters (``best_model_state`` its model
            state).
        member_epochs: Compute spent: member-epochs of every program that ran.
        seconds: Wall-clock seconds of the whole search (earlier processes included).
        timeline: After every epoch of every program: ``{"seconds", "member_epochs",
            "best"}``, the best objective value seen so far at any epoch of any trial.
        rungs: Successive halving's decisions: ``{"bracket", "epoch", "entered", "kept"}``
            (trial numbers).
        resumed_from: The stage a resumed search started from (``None``: started afresh).
        member_epochs_here: Compute spent by this call (less than ``member_epochs`` when
            resumed).
        space: The :class:`~gdjax.tune.Space` searched.
    """

    trials: list[Trial]
    objective: str
    mode: str
    best: Trial | None
    best_params: Any
    best_model_state: Any
    member_epochs: int
    seconds: float
    timeline: list[dict[str, float]]
    rungs: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int | None = None
    member_epochs_here: int = 0
    space: Any = None

    @property
    def best_config(self) -> dict[str, Any] | None:
        """The best trial's hyperparameters (the last ones, for PBT)."""
        return None if self.best is None else self.best.final_config()

    def ranked(self) -> list[Trial]:
        """Trials best first; diverged and untrained ones last."""
        sign = 1.0 if self.mode == "min" else -1.0
        return sorted(
            self.trials,
            key=lambda t: (
                (0, sign * t.objective, t.number)
                if math.isfinite(t.objective)
                else (1, 0.0, t.number)
            ),
        )

    def table(self, top: int | None = None) -> str:
        """A Markdown table of the trials, best first (``top`` rows at most)."""
        names = list(self.trials[0].config) if self.trials else []
        header = ["trial", *names, "epochs", self.objective, "status"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for t in self.ranked()[:top]:
            cfg = t.final_config()
            row = [t.number, *(cfg[n] for n in names), t.epochs, t.objective, t.status]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        return "\n".join(lines)

    def plot_objective(self, path: Any = None) -> Any:
        """Objective against each hyperparameter (see :func:`gdjax.tune.plot.objective`)."""
        from gdjax.tune import plot

        return plot.objective(self, path)

    def plot_rungs(self, path: Any = None) -> Any:
        """Each trial's objective per epoch (see :func:`gdjax.tune.plot.rungs`)."""
        from gdjax.tune import plot

        return plot.rungs(self, path)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain Python (histories as lists), e.g. for a JSON file."""

        def plain(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [plain(x) for x in v]
            if isinstance(v, np.ndarray | np.generic):
                return plain(v.tolist())
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return v

        return plain(
            {
                "objective": self.objective,
                "mode": self.mode,
                "best": None if self.best is None else self.best.number,
                "best_config": self.best_config,
                "member_epochs": self.member_epochs,
                "seconds": self.seconds,
                "timeline": self.timeline,
                "rungs": self.rungs,
                "trials": [
                    {
                        "number": t.number,
                        "config": t.config,
                        "final_config": t.final_config(),
                        "epochs": t.epochs,
                        "objective": t.objective,
                        "status": t.status,
                        "bracket": t.bracket,
                        "schedule": t.schedule,
                        "history": t.history,
                    }
                    for t in self.trials
                ],
            }
        )
