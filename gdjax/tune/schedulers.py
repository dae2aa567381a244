"""Schedulers: how a search spends its epochs on its trials.

The schedulers here only plan (which rungs, how many survivors, when to exploit); the search
(:mod:`gdjax.tune.search`) trains the plan in vmapped programs.

**Successive halving** (Jamieson and Talwalkar 2016; Li et al. 2018). ``n`` trials train to the
first rung of ``r`` epochs; the best :math:`\\lfloor n/\\eta \\rfloor` go on to
:math:`r\\eta` epochs, and so on, until the survivors reach ``epochs``. Rungs are at
:math:`r, r\\eta, r\\eta^2, \\dots` (below ``epochs``) and at ``epochs``. The survivors of each
rung are *repacked* into a smaller program: a stopped trial costs nothing afterwards.

**Hyperband** (Li et al. 2018) runs successive halving in brackets
:math:`s = s_{\\max}, \\dots, 0` with :math:`s_{\\max} = \\lfloor\\log_\\eta(E/r)\\rfloor`:
bracket ``s`` starts :math:`n_s = \\lceil (s_{\\max}+1)\\,\\eta^s / (s+1) \\rceil` trials at
:math:`E\\eta^{-s}` epochs, hedging between many short trials and few long ones.

**Population-based training** (Jaderberg et al. 2017). All trials train together; every
``interval`` epochs the worst ``fraction`` of them (by the objective) copy the parameters and
optimizer state of a randomly chosen member of the best ``fraction`` (*exploit*) and move its
hyperparameters (*explore*): each one is resampled from its dimension with probability
``resample``, else multiplied by one of ``perturb`` and clipped to its range (a choice moves to
a neighbouring value). Possible in one program because the hyperparameters are its inputs.

Examples:
    >>> from gdjax import tune
    >>> tune.SuccessiveHalving(min_epochs=1, eta=3).rungs(9)
    [1, 3, 9]
    >>> [(n, rungs) for n, rungs in tune.Hyperband(min_epochs=1, eta=3).brackets(9)]
    [(9, [1, 3, 9]), (5, [3, 9]), (3, [9])]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gdjax import _checks


def _budget_error(epochs: int, what: str) -> ValueError:
    return ValueError(f"the budget epochs={epochs} is smaller than one {what}; raise epochs")


@dataclass(frozen=True)
class SuccessiveHalving:
    """Keep the best ``1/eta`` of the trials at each rung (see the module docstring).

    Args:
        min_epochs: Epochs of the first rung (``r``).
        eta: Reduction factor (an int ``>= 2``).
    """

    min_epochs: int = 1
    eta: int = 3

    def __post_init__(self) -> None:
        _checks.python_int(f"{type(self).__name__}(min_epochs=...)", self.min_epochs)
        _checks.python_int(f"{type(self).__name__}(eta=...)", self.eta, minimum=2)

    def check(self, epochs: int) -> None:
        """Refuse a budget smaller than the first rung."""
        if epochs < self.min_epochs:
            raise _budget_error(epochs, f"rung (min_epochs={self.min_epochs})")

    def rungs(self, epochs: int) -> list[int]:
        """Epochs at which the trials are ranked; the last is ``epochs``."""
        self.check(epochs)
        out, r = [], self.min_epochs
        while r < epochs:
            out.append(r)
            r *= self.eta
        return [*out, epochs]

    def keep(self, n: int) -> int:
        """How many of ``n`` trials go on to the next rung."""
        return max(1, n // self.eta)


@dataclass(frozen=True)
class Hyperband(SuccessiveHalving):
    """Successive halving in brackets of different starting budgets (see the module docstring)."""

    def brackets(self, epochs: int) -> list[tuple[int, list[int]]]:
        """``(number of trials, rungs)`` of each bracket, most exploratory first."""
        self.check(epochs)
        s_max = math.floor(math.log(epochs / self.min_epochs, self.eta) + 1e-9)
        out = []
        for s in range(s_max, -1, -1):
            n = math.ceil((s_max + 1) * self.eta**s / (s + 1))
            first = max(self.min_epochs, round(epochs / self.eta**s))
            rungs = sorted({min(epochs, first * self.eta**i) for i in range(s + 1)} | {epochs})
            out.append((n, rungs))
        return out


@dataclass(frozen=True)
class PBT:
    """Population-based training (see the module docstring).

    Args:
        interval: Epochs between two exploit/explore steps.
        fraction: Fraction of the population replaced at each step (and of the best, copied).
        perturb: Factors a hyperparameter is multiplied by, one picked at random.
        resample: Probability of drawing a hyperparameter afresh instead of perturbing it.
    """

    interval: int = 1
    fraction: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.25)
    resample: float = 0.25

    def __post_init__(self) -> None:
        _checks.python_int("PBT(interval=...)", self.interval)
        if not 0 < self.fraction <= 0.5:
            raise ValueError(f"PBT(fraction=...) must be in (0, 0.5], got {self.fraction!r}")
        if not self.perturb or not all(f > 0 for f in self.perturb):
            raise ValueError(f"PBT(perturb=...) needs positive factors, got {self.perturb!r}")
        if not 0 <= self.resample <= 1:
            raise ValueError(f"PBT(resample=...) must be in [0, 1], got {self.resample!r}")

    def check(self, epochs: int) -> None:
        """Refuse a budget with no exploit step (no interval ends before ``epochs``)."""
        if epochs <= self.interval:
            raise _budget_error(epochs, f"PBT interval plus one epoch (interval={self.interval})")

    def boundaries(self, epochs: int) -> list[int]:
        """Epochs after which the population exploits and explores."""
        self.check(epochs)
        return list(range(self.interval, epochs, self.interval))

    def replaced(self, n: int) -> int:
        """How many of ``n`` members are replaced at each step."""
        return max(1, int(n * self.fraction))


__all__ = ["PBT", "Hyperband", "SuccessiveHalving"]
