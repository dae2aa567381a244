"""Markdown tables, number formatting and matplotlib helpers shared by the studies."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table: ``diverged`` for non-finite, ``—`` for ``None``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return str(int(value))
    v = float(value)
    if not math.isfinite(v):
        return "diverged"
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 10 ** (-digits)):
        return f"{v:.{max(digits - 1, 1)}e}"
    return f"{v:.{digits}f}"


def pct(value: float | None) -> str:
    """Format a fraction in [0, 1] as a percentage with one decimal."""
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; cells are formatted with :func:`fmt`, ``|`` escaped."""

    def cell(c: Any) -> str:  # a bare "|" would end the cell
        return fmt(c).replace("\\|", "|").replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines)


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6) -> tuple:
    """A new Agg figure with ``nrows x ncols`` axes (squeezed like ``plt.subplots``)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    fig.set_layout_engine("constrained")
    return fig, (axes[0, 0] if nrows * ncols == 1 else axes.ravel())


def curves(
    series: dict[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    ax: Any = None,
) -> Figure | None:
    """Plot named curves (one line each) on ``ax`` or on a new figure, which is returned."""
    fig = None
    if ax is None:
        fig, ax = figure()
    for name, ys in series.items():
        ax.plot(range(1, len(ys) + 1), ys, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def bars(
    labels: Sequence[str], values: Sequence[float], *, title: str, ylabel: str, ax: Any = None
) -> Figure | None:
    """A bar chart of ``values`` labelled ``labels`` on ``ax`` or on a new figure."""
    fig = None
    if ax is None:
        fig, ax = figure()
    clean = [v if v is not None and math.isfinite(v) else 0.0 for v in values]
    ax.bar(range(len(labels)), clean, color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    return fig


def verdict(holds: bool | str | None) -> str:
    """``holds`` / ``does not hold`` from a measured test, ``not tested`` for ``None``.

    A string is passed through, for computed qualified verdicts such as ``holds per step``.
    """
    if holds is None:
        return "not tested"
    if isinstance(holds, str):
        return holds
    return "holds" if holds else "does not hold"


def claims_table(claims: Sequence[tuple[str, str, bool | str | None]]) -> str:
    """One row per claim of a source document: the claim, the measured evidence, the verdict.

    Each claim is ``(claim, evidence, holds)``, with ``holds`` computed from the numbers.
    """
    return table(
        ["claim (source document)", "measured evidence", "verdict"],
        [[claim, evidence, verdict(holds)] for claim, evidence, holds in claims],
    )
