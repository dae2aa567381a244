"""Plots of a search (matplotlib, imported lazily): objective against each hyperparameter,
each trial's curve with the rungs, and the learning-rate range test."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _figure(ncols: int, width: float = 4.2, height: float = 3.4) -> tuple[Any, list]:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    fig.set_layout_engine("constrained")
    return fig, list(axes[0])


def _save(fig: Any, path: Any) -> Any:
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def objective(result: Any, path: Any = None) -> Any:
    """One panel per hyperparameter: each trial's final objective against its value (log axis
    for log dimensions); trials that trained the full budget filled, stopped ones hollow."""
    trials = result.trials
    names = list(trials[0].config) if trials else []
    fig, axes = _figure(max(1, len(names)))
    longest = max((t.epochs for t in trials), default=0)
    for ax, name in zip(axes, names, strict=False):
        dim = result.space.dims.get(name) if result.space is not None else None
        xs, ys, full = [], [], []
        for t in trials:
            value = t.final_config()[name]
            if value is None or not math.isfinite(t.objective):
                continue
            xs.append(value)
            ys.append(t.objective)
            full.append(t.epochs == longest)
        xs_arr, ys_arr, full_arr = np.asarray(xs, object), np.asarray(ys), np.asarray(full, bool)
        numeric = all(isinstance(v, int | float) for v in xs)
        if not numeric:
            labels = sorted({str(v) for v in xs})
            xs_arr = np.asarray([labels.index(str(v)) for v in xs], float)
            ax.set_xticks(range(len(labels)), labels)
        xs_arr = xs_arr.astype(float)
        ax.scatter(xs_arr[full_arr], ys_arr[full_arr], c="tab:blue", s=22, label="full budget")
        ax.scatter(
            xs_arr[~full_arr],
            ys_arr[~full_arr],
            facecolors="none",
            edgecolors="tab:gray",
            s=22,
            label="stopped early",
        )
        if dim is not None and getattr(dim, "log", False):
            ax.set_xscale("log")
        if result.best is not None and result.best.final_config()[name] is not None:
            best = result.best.final_config()[name]
            if numeric:
                ax.axvline(float(best), color="tab:red", lw=1, ls="--", label="best")
        ax.set(xlabel=name, ylabel=result.objective, title=f"{result.objective} vs {name}")
        ax.grid(alpha=0.3)
    if names:
        axes[0].legend(fontsize=7)
    return _save(fig, path)


def rungs(result: Any, path: Any = None) -> Any:
    """Each trial's objective per epoch; rungs as vertical lines (PBT: a dot where a member
    copied another)."""
    fig, (ax,) = _figure(1, width=6.0, height=4.0)
    longest = max((t.epochs for t in result.trials), default=0)
    for t in result.trials:
        ys = np.asarray(t.history.get(result.objective, []), float)
        if ys.size == 0:
            continue
        full = t.epochs == longest
        ax.plot(
            np.arange(1, ys.size + 1),
            ys,
            color="tab:blue" if full else "tab:gray",
            alpha=0.9 if full else 0.35,
            lw=1.2 if full else 0.8,
        )
        for change in t.schedule:
            e = int(change["epoch"])
            if e <= ys.size:
                ax.plot([e], [ys[e - 1]], "o", color="tab:orange", ms=3)
    for epoch in sorted({int(r["epoch"]) for r in result.rungs}):
        ax.axvline(epoch, color="k", lw=0.6, ls=":")
    ax.set(xlabel="epoch", ylabel=result.objective, title="trials per epoch (dotted: rungs)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def lr_range(result: Any, path: Any = None) -> Any:
    """Left: final loss against the learning rate (crosses: diverged; dashed: the suggestion).
    Right: per-step losses of every rate that did not diverge."""
    fig, (left, right) = _figure(2)
    lr, final, bad = result.learning_rates, result.final_loss, result.diverged
    left.plot(lr[~bad], final[~bad], "o-", color="tab:blue", ms=4)
    top = np.nanmax(final[~bad]) if (~bad).any() else 1.0
    left.plot(lr[bad], np.full(bad.sum(), top), "x", color="tab:red", label="diverged")
    left.axvline(
        result.suggested, color="tab:green", ls="--", label=f"suggested {result.suggested:.2g}"
    )
    left.set(xscale="log", xlabel="learning rate", ylabel="final loss", title="LR range test")
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for i in np.flatnonzero(~bad):
        right.plot(result.step_losses[i], color=cmap(i / max(len(lr) - 1, 1)), lw=0.8)
    right.set(xlabel="step", ylabel="loss", title="per-step loss (dark: small rates)")
    right.grid(alpha=0.3)
    return _save(fig, path)
