r"""A model summary: parameters per layer, their bytes, and the FLOPs of one example.

:func:`summary` groups the parameter arrays by layer (a leaf's path without its last key:
``params/Dense_0/kernel`` and ``params/Dense_0/bias`` make the layer ``params/Dense_0``), counts
their elements and bytes, and — given the model's function and a batch — asks XLA how many
floating-point operations the compiled function performs (``jax.jit(fn).lower(params,
batch).compile().cost_analysis()["flops"]``), divided by the batch's size. XLA counts a
multiply-add as two operations, so a dense layer :math:`x W + b` with :math:`W` of shape
:math:`n \times m` costs :math:`2nm + m` per example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from gdjax.train.diagnostics import layer_names


@dataclass(frozen=True)
class LayerSummary:
    """One layer of a :class:`ModelSummary`.

    Attributes:
        name: The layer's path (``params/Dense_0``).
        shapes: ``{array name: shape}`` of its arrays (``kernel``, ``bias``).
        params: Number of elements.
        bytes: Their size in bytes.
    """

    name: str
    shapes: dict[str, tuple[int, ...]]
    params: int
    bytes: int


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summary` returns; ``str()`` is the printed table.

    Attributes:
        layers: One :class:`LayerSummary` per layer, in the parameters' order.
        params: Total number of parameters.
        bytes: Their total size in bytes.
        flops_per_example: FLOPs of ``fn`` per example, from XLA's cost analysis (``None``
            without ``fn``).
    """

    layers: tuple[LayerSummary, ...]
    params: int
    bytes: int
    flops_per_example: float | None = None

    def __str__(self) -> str:
        rows = [("Layer", "Arrays", "Params", "Bytes")]
        for layer in self.layers:
            arrays = ", ".join(f"{k} {v}" for k, v in layer.shapes.items())
            rows.append((layer.name, arrays, f"{layer.params:,}", _size(layer.bytes)))
        rows.append(("Total", "", f"{self.params:,}", _size(self.bytes)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = []
        for i, row in enumerate(rows):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [row[2].rjust(widths[2]), row[3].rjust(widths[3])]
            lines.append("  ".join(cells).rstrip())
            if i == 0 or i == len(rows) - 2:
                lines.append("-" * len(lines[0]))
        if self.flops_per_example is not None:
            lines.append(f"FLOPs per example: {self.flops_per_example:,.0f} (XLA cost analysis)")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _flops(fn: Callable[..., Any], params: Any, batch: Any) -> float:
    leaves = jax.tree.leaves(batch)
    if not leaves or np.ndim(leaves[0]) == 0:
        raise ValueError("batch must be arrays with a leading batch dimension")
    n = int(np.shape(leaves[0])[0])
    if n == 0:
        raise ValueError("batch has no examples")
    analysis = jax.jit(fn).lower(params, batch).compile().cost_analysis()
    if isinstance(analysis, list | tuple):  # one entry per device in older JAX versions
        analysis = analysis[0]
    if not analysis or "flops" not in analysis:
        raise RuntimeError("XLA's cost analysis gave no FLOP count for fn on this backend")
    return float(analysis["flops"]) / n


def summary(
    params: Any,
    fn: Callable[[Any, Any], Any] | None = None,
    batch: Any = None,
    *,
    show: bool = True,
) -> ModelSummary:
    """Summarise a model: parameters per layer, bytes, and FLOPs per example.

    Args:
        params: The parameters (any pytree of arrays; flax variables such as
            ``model.init(key, x)`` work as they are).
        fn: ``fn(params, batch) -> outputs``, e.g. ``model.apply``; with ``batch``, compiled
            once to count its FLOPs.
        batch: Inputs of ``fn`` with a leading batch dimension (a few examples suffice).
        show: Print the table.

    Returns:
        A :class:`ModelSummary` (``str()`` of it is the table).

    Examples:
        >>> import jax, jax.numpy as jnp, flax.linen as nn, gdjax
        >>> model = nn.Sequential([nn.Dense(4), nn.relu, nn.Dense(2)])
        >>> x = jnp.ones((8, 3))
        >>> s = gdjax.summary(model.init(jax.random.key(0), x), model.apply, x, show=False)
        >>> s.params, [layer.params for layer in s.layers]
        (26, [16, 10])
    """
    if (fn is None) != (batch is None):
        raise ValueError("pass fn and batch together (FLOPs need both), or neither")
    if fn is not None and not callable(fn):
        raise TypeError(f"fn must be a function fn(params, batch), got {type(fn).__name__}")
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise ValueError("params has no arrays")
    names = layer_names(params)
    layers: dict[str, dict] = {}
    for name, leaf in zip(names, leaves, strict=True):
        layer, _, array = name.rpartition("/")
        layer = layer or array
        entry = layers.setdefault(layer, {"shapes": {}, "params": 0, "bytes": 0})
        size = int(np.size(leaf))
        entry["shapes"][array] = tuple(int(d) for d in np.shape(leaf))
        entry["params"] += size
        entry["bytes"] += (
            size * np.dtype(getattr(leaf, "dtype", None) or np.result_type(leaf)).itemsize
        )
    out = ModelSummary(
        layers=tuple(LayerSummary(name, **entry) for name, entry in layers.items()),
        params=sum(e["params"] for e in layers.values()),
        bytes=sum(e["bytes"] for e in layers.values()),
        flops_per_example=None if fn is None else _flops(fn, params, batch),
    )
    if show:
        print(out)
    return out


__all__ = ["LayerSummary", "ModelSummary", "summary"]
