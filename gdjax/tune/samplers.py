"""Samplers: which configurations of a space a search trains.

- :class:`Grid`: every combination of evenly spaced values (log-spaced for log dimensions);
- :class:`Random`: independent uniform draws from each dimension;
- :class:`Sobol`: a scrambled Sobol sequence (SciPy's ``scipy.stats.qmc.Sobol``), points of the
  unit cube that fill it more evenly than random ones, mapped through each dimension;
- :class:`~gdjax.tune.Optuna`: an optuna study asked for batches of trials (ask-tell).

Grid, random and Sobol configurations are drawn up front from the search's seed, so a resumed
search draws the same ones.

Examples:
    >>> import numpy as np
    >>> from gdjax import tune
    >>> space = tune.Space({"lr": tune.LogUniform(1e-3, 1e-1), "wd": tune.Uniform(0.0, 0.1)})
    >>> len(tune.Grid(points=3).draw(space)), len(tune.Sobol(8).draw(space, rng=np.random.default_rng(0)))
    (9, 8)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdjax import _checks
from gdjax.tune.space import Space


def _count(name: str, n: Any) -> int | None:
    return None if n is None else _checks.python_int(name, n)


@dataclass(frozen=True)
class Grid:
    """Every combination of ``points`` values per dimension (all values of a choice).

    Args:
        points: Values per dimension, or ``{name: count}`` (choices may be left out).
    """

    points: int | Mapping[str, int] = 3

    def __post_init__(self) -> None:
        values = self.points.values() if isinstance(self.points, Mapping) else [self.points]
        for v in values:
            _checks.python_int("Grid(points=...)", v)

    @property
    def n(self) -> None:
        """Grids are sized by their points, not by a count."""
        return None

    def draw(
        self, space: Space, n: int | None = None, rng: np.random.Generator | None = None
    ) -> list[dict[str, Any]]:
        """The grid's configurations (``n``, when given, must equal their number)."""
        del rng
        configs = space.grid(self.points)
        if n is not None and n != len(configs):
            raise ValueError(
                f"this search needs {n} configurations, but Grid(points={self.points!r}) has "
                f"{len(configs)}; use Random or Sobol"
            )
        return configs


@dataclass(frozen=True)
class Random:
    """``n`` configurations drawn independently and uniformly (per each dimension's scale)."""

    n: int | None = None

    def __post_init__(self) -> None:
        _count("Random(n=...)", self.n)

    def draw(self, space: Space, n: int | None = None, rng: Any = None) -> list[dict[str, Any]]:
        """``n`` configurations (default ``self.n``) from ``rng``."""
        n = _resolve(self, n)
        rng = np.random.default_rng(rng)
        return space.from_unit(rng.random((n, len(space.names))))


@dataclass(frozen=True)
class Sobol:
    """``n`` configurations from a scrambled Sobol sequence (powers of two balance best)."""

    n: int | None = None
    scramble: bool = True

    def __post_init__(self) -> None:
        _count("Sobol(n=...)", self.n)
        _checks.flag("Sobol(scramble=...)", self.scramble)

    def draw(self, space: Space, n: int | None = None, rng: Any = None) -> list[dict[str, Any]]:
        """``n`` configurations (default ``self.n``) from a Sobol sequence seeded by ``rng``."""
        from scipy.stats import qmc

        n = _resolve(self, n)
        engine = qmc.Sobol(len(space.names), scramble=self.scramble, rng=np.random.default_rng(rng))
        with warnings.catch_warnings():  # n not a power of 2: fine, only less balanced
            warnings.filterwarnings("ignore", "The balance properties", UserWarning)
            points = engine.random(n)
        return space.from_unit(points)


def _resolve(sampler: Random | Sobol, n: int | None) -> int:
    if n is None:
        if sampler.n is None:
            raise ValueError(f"{type(sampler).__name__} needs n, the number of configurations")
        return sampler.n
    if sampler.n is not None and sampler.n != n:
        raise ValueError(
            f"this search needs {n} configurations, but {type(sampler).__name__}(n={sampler.n}) "
            f"was given; pass {type(sampler).__name__}() and let the scheduler size it"
        )
    return n


__all__ = ["Grid", "Random", "Sobol"]
