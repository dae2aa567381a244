"""Search spaces: the ranges a tuner draws hyperparameters from.

A space is a dict ``{name: dimension}``. Each dimension maps a point ``u`` of the unit interval
to a value (that is how the random and quasi-random samplers use it) and lists grid points:

- :class:`Uniform` ``(low, high)``: :math:`x = \\text{low} + u\\,(\\text{high} - \\text{low})`;
- :class:`LogUniform` ``(low, high)``, ``0 < low``: :math:`\\log x` is uniform,
  :math:`x = \\text{low}\\,(\\text{high}/\\text{low})^u`;
- :class:`IntUniform` ``(low, high)``: integers ``low..high`` (both included), equally likely
  (or log-spaced with ``log=True``);
- :class:`Choice` ``(values)``: one of ``values``, equally likely.

Most hyperparameters reach the compiled programs as *inputs* (a learning rate is an array
argument), so one program trains every value. A dimension whose values change the program —
``batch_size`` (always), a layer width, a string naming an optimizer — is *static*: each
distinct combination of static values is a separate program, hidden from the user. Strings and
booleans are static automatically; a numeric choice is static with ``static=True``.

A dimension may be conditional, ``when={"optimizer": "momentum"}``: it is active only when the
named :class:`Choice` (declared earlier in the space) takes that value (or one of a list of
values). An inactive dimension is reported as ``None``; its program input is its ``default``.

Examples:
    >>> from gdjax import tune
    >>> space = tune.Space(
    ...     {"lr": tune.LogUniform(1e-4, 1e-2), "width": tune.Choice([16, 32], static=True)}
    ... )
    >>> space.static_names, space.input_names
    (('width',), ('lr',))
    >>> [(round(c["lr"], 6), c["width"]) for c in space.from_unit([[0.5, 0.9]])]
    [(0.001, 32)]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Hyperparameter names that always change the program's shapes.
STATIC_NAMES = ("batch_size",)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_bounds(name: str, dim: Any, *, log: bool, allow_equal: bool) -> None:
    """Finite numbers, ``low < high`` (``<=`` for integer ranges), positive for a log range."""
    low, high = dim.low, dim.high
    if not (_number(low) and _number(high)):
        raise TypeError(f"space[{name!r}]: {dim!r} needs numbers for low and high")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"space[{name!r}]: {dim!r} has a non-finite bound")
    if low > high:
        raise ValueError(
            f"space[{name!r}]: {dim!r} is an inverted range (low={low!r} > high={high!r}); "
            "swap the bounds"
        )
    if low == high and not allow_equal:
        raise ValueError(
            f"space[{name!r}]: {dim!r} is an empty range (low == high); a fixed value is not a "
            "hyperparameter to search: leave it out of the space"
        )
    if log and low <= 0:
        raise ValueError(
            f"space[{name!r}]: {dim!r} is a log range touching zero or below (low={low!r}); "
            "log-uniform values need 0 < low < high"
        )


@dataclass(frozen=True)
class Dimension:
    """What every dimension has: static or not, a condition, a default when inactive."""

    static: bool | None = field(default=None, kw_only=True)
    when: Mapping[str, Any] | None = field(default=None, kw_only=True)
    default: Any = field(default=None, kw_only=True)

    #: Whether grid points and plots use a log scale.
    log = False

    def check(self, name: str) -> None:
        """Raise ``ValueError``/``TypeError`` naming ``space[name]`` if the dimension is unusable."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in ``[0, 1)``."""
        raise NotImplementedError

    def grid(self, k: int) -> list:
        """``k`` evenly spaced values (all values of a choice)."""
        raise NotImplementedError

    def is_static(self, name: str) -> bool:
        """Whether the value changes the program (decided by :meth:`Space.__init__`)."""
        return bool(self.static) or name in STATIC_NAMES


@dataclass(frozen=True)
class Uniform(Dimension):
    """A real number drawn uniformly from ``[low, high]``.

    Examples:
        >>> from gdjax import tune
        >>> tune.Uniform(0.0, 0.9).grid(4)
        [0.0, 0.3, 0.6, 0.9]
    """

    low: float
    high: float

    def check(self, name: str) -> None:
        _check_bounds(name, self, log=False, allow_equal=False)

    def from_unit(self, u: float) -> float:
        return float(self.low + u * (self.high - self.low))

    def grid(self, k: int) -> list:
        return [round(float(v), 12) for v in np.linspace(self.low, self.high, k)]

    def clip(self, value: float) -> float:
        return float(min(max(value, self.low), self.high))


@dataclass(frozen=True)
class LogUniform(Uniform):
    """A positive real number whose logarithm is uniform on ``[log low, log high]``.

    Examples:
        >>> from gdjax import tune
        >>> [f"{v:g}" for v in tune.LogUniform(1e-4, 1.0).grid(5)]
        ['0.0001', '0.001', '0.01', '0.1', '1']
    """

    log = True

    def check(self, name: str) -> None:
        _check_bounds(name, self, log=True, allow_equal=False)

    def from_unit(self, u: float) -> float:
        return float(math.exp(math.log(self.low) + u * math.log(self.high / self.low)))

    def grid(self, k: int) -> list:
        return [float(v) for v in np.geomspace(self.low, self.high, k)]


@dataclass(frozen=True)
class IntUniform(Dimension):
    """An integer from ``low`` to ``high`` (both included), each equally likely; with
    ``log=True`` its logarithm is uniform (for widths, batch sizes).

    Examples:
        >>> from gdjax import tune
        >>> tune.IntUniform(1, 4).grid(10)
        [1, 2, 3, 4]
    """

    low: int
    high: int
    log: bool = False  # type: ignore[misc]

    def check(self, name: str) -> None:
        for bound in (self.low, self.high):
            if not isinstance(bound, numbers.Integral) or isinstance(bound, bool):
                raise TypeError(f"space[{name!r}]: {self!r} needs integer bounds")
        _check_bounds(name, self, log=self.log, allow_equal=True)

    def from_unit(self, u: float) -> int:
        if self.log:  # log-uniform over [low - 1/2, high + 1/2], rounded
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            value = round(math.exp(lo + u * (hi - lo)))
        else:
            value = math.floor(self.low + u * (self.high - self.low + 1))
        return int(min(max(value, self.low), self.high))

    def grid(self, k: int) -> list:
        space = np.geomspace if self.log else np.linspace
        return sorted({int(v) for v in np.rint(space(self.low, self.high, k))})

    def clip(self, value: float) -> int:
        return int(min(max(round(value), self.low), self.high))


@dataclass(frozen=True)
class Choice(Dimension):
    """One of ``values``, each equally likely. Numbers reach the programs as inputs unless
    ``static=True``; strings, booleans and ``None`` are always static.

    Examples:
        >>> from gdjax import tune
        >>> tune.Choice(["sgd", "adam"]).from_unit(0.7)
        'adam'
    """

    values: Sequence[Any]

    def check(self, name: str) -> None:
        if isinstance(self.values, str) or not isinstance(self.values, Sequence):
            raise TypeError(f"space[{name!r}]: Choice needs a list of values, got {self.values!r}")
        if len(self.values) == 0:
            raise ValueError(f"space[{name!r}]: Choice([]) is empty; give at least one value")
        if self.static is False and not self.numeric:
            raise ValueError(
                f"space[{name!r}]: static=False, but {self.values!r} holds values that are not "
                "numbers, which cannot be program inputs"
            )

    @property
    def numeric(self) -> bool:
        """All values are real numbers (not booleans)."""
        return all(_number(v) for v in self.values)

    def is_static(self, name: str) -> bool:
        return bool(self.static) or not self.numeric or name in STATIC_NAMES

    def from_unit(self, u: float) -> Any:
        return self.values[min(int(u * len(self.values)), len(self.values) - 1)]

    def grid(self, k: int) -> list:
        del k
        return list(self.values)


class Space:
    """A checked search space: names in order, which are static, which are conditional.

    Args:
        dims: ``{name: dimension}``; a conditional dimension's parents come before it.

    Raises:
        ValueError: An empty or inverted range, a log range touching zero, an empty choice, a
            condition on an unknown or later name, a conditional dimension without a default.
    """

    def __init__(self, dims: Mapping[str, Dimension] | Space) -> None:
        if isinstance(dims, Space):
            dims = dims.dims
        if not isinstance(dims, Mapping) or not dims:
            raise ValueError(
                "space must be a non-empty dict {name: dimension}, e.g. "
                "{'learning_rate': tune.LogUniform(1e-4, 1e-1)}"
            )
        seen: dict[str, Dimension] = {}
        for name, dim in dims.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"space names must be identifiers, got {name!r}")
            if not isinstance(dim, Dimension):
                raise TypeError(
                    f"space[{name!r}] must be a tune dimension (Uniform, LogUniform, IntUniform, "
                    f"Choice), got {type(dim).__name__}: {dim!r}"
                )
            dim.check(name)
            if name in STATIC_NAMES and dim.static is False:
                raise ValueError(f"space[{name!r}]: {name} changes shapes, so it is always static")
            if name == "batch_size" and not (
                isinstance(dim, IntUniform)
                or (isinstance(dim, Choice) and all(isinstance(v, int) for v in dim.values))
            ):
                raise TypeError("space['batch_size'] must be an IntUniform or a Choice of ints")
            self._check_condition(name, dim, seen)
            seen[name] = dim
        self.dims: dict[str, Dimension] = dict(dims)
        self.names: tuple[str, ...] = tuple(self.dims)
        self.static_names = tuple(n for n, d in self.dims.items() if d.is_static(n))
        self.input_names = tuple(n for n in self.names if n not in self.static_names)

    @staticmethod
    def _check_condition(name: str, dim: Dimension, earlier: Mapping[str, Dimension]) -> None:
        if dim.when is None:
            return
        if not isinstance(dim.when, Mapping) or not dim.when:
            raise TypeError(f"space[{name!r}]: when= must be a dict {{parent name: value(s)}}")
        for parent, accepted in dim.when.items():
            if parent not in earlier or not isinstance(earlier[parent], Choice):
                raise ValueError(
                    f"space[{name!r}]: when= names {parent!r}, which must be a Choice declared "
                    "before it in the space"
                )
            values = accepted if isinstance(accepted, list | tuple) else [accepted]
            missing = [v for v in values if v not in earlier[parent].values]
            if missing:
                raise ValueError(
                    f"space[{name!r}]: when={{{parent!r}: ...}} accepts {missing!r}, which "
                    f"space[{parent!r}] never takes"
                )
        if dim.default is None:
            raise ValueError(
                f"space[{name!r}] is conditional, so it needs default= (its value when inactive)"
            )

    def __repr__(self) -> str:
        return f"Space({self.dims!r})"

    def active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active in ``config`` (its conditions hold)."""
        when = self.dims[name].when
        if when is None:
            return True
        for parent, accepted in when.items():
            values = accepted if isinstance(accepted, list | tuple) else [accepted]
            if config.get(parent) not in values:
                return False
        return True

    def settle(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with inactive dimensions set to ``None``."""
        out: dict[str, Any] = {}
        for name in self.names:
            out[name] = config[name] if self.active(name, out) else None
        return out

    def input_value(self, name: str, config: Mapping[str, Any]) -> Any:
        """What the programs receive for ``name``: its value, or its default when inactive."""
        value = config.get(name)
        return self.dims[name].default if value is None else value

    def from_unit(self, points: Any) -> list[dict[str, Any]]:
        """Configurations from points of the unit cube, shape ``(n, len(names))``."""
        points = np.asarray(points, np.float64)
        return [
            self.settle(
                {n: self.dims[n].from_unit(float(u)) for n, u in zip(self.names, row, strict=True)}
            )
            for row in points
        ]

    def grid(self, points: int | Mapping[str, int]) -> list[dict[str, Any]]:
        """Every combination of each dimension's grid values (conditions applied, duplicates
        dropped), the last name varying fastest."""
        import itertools

        if isinstance(points, Mapping):
            unknown = sorted(set(points) - set(self.names))
            if unknown:
                raise ValueError(f"Grid(points=...) names {unknown}, which are not in the space")
            missing = [
                n for n in self.names if n not in points and not isinstance(self.dims[n], Choice)
            ]
            if missing:
                raise ValueError(f"Grid(points=...) needs a number of points for {missing}")
        per = {n: points.get(n, 0) if isinstance(points, Mapping) else points for n in self.names}
        axes = [self.dims[n].grid(per[n]) for n in self.names]
        out, seen = [], set()
        for combo in itertools.product(*axes):
            config = self.settle(dict(zip(self.names, combo, strict=True)))
            key = repr(sorted(config.items()))
            if key not in seen:
                seen.add(key)
                out.append(config)
        return out


__all__ = ["Choice", "Dimension", "IntUniform", "LogUniform", "Space", "Uniform"]
