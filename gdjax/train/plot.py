"""``gdjax.plot_history``: loss curves of one run or many (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _histories(runs: Any, labels: Sequence[str] | None) -> list[tuple[str, Mapping]]:
    """Normalise the accepted inputs to ``[(label, history dict)]``."""
    from gdjax.train.fit import FitResult
    from gdjax.train.sweep import SweepResult

    if isinstance(runs, SweepResult):
        names = [
            ", ".join(f"{k}={v[i]:.3g}" for k, v in runs.hparams.items()) or f"member {i}"
            for i in range(len(runs.seeds))
        ]
        items = [
            (names[i], {k: a[i] for k, a in runs.history.items()}) for i in range(len(runs.seeds))
        ]
    elif isinstance(runs, FitResult):
        items = [("", runs.history)]
    elif (
        isinstance(runs, Mapping)
        and runs
        and all(isinstance(r, FitResult | Mapping) for r in runs.values())
        and not any(isinstance(r, np.ndarray | list) for r in runs.values())
    ):
        items = [(str(k), r.history if isinstance(r, FitResult) else r) for k, r in runs.items()]
    elif isinstance(runs, Mapping):
        items = [("", runs)]
    elif isinstance(runs, Sequence):
        items = [
            (f"run {i}", r.history if isinstance(r, FitResult) else r) for i, r in enumerate(runs)
        ]
    else:
        raise TypeError(
            "runs must be a FitResult, SweepResult, history dict, or a list/dict of them; got "
            f"{type(runs).__name__}"
        )
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"labels has {len(labels)} entries for {len(items)} runs")
        items = [(lab, h) for lab, (_, h) in zip(labels, items, strict=True)]
    return items


def plot_history(
    runs: Any,
    keys: Sequence[str] = ("loss", "val_loss"),
    *,
    labels: Sequence[str] | None = None,
    ax: Any = None,
    logy: bool = False,
    title: str | None = None,
) -> Any:
    """Draw per-epoch curves of ``keys`` for one run or many.

    Args:
        runs: A :class:`~gdjax.FitResult`, a :class:`~gdjax.SweepResult` (one curve per
            member), a history dict, or a list or ``{label: run}`` dict of results/histories.
        keys: History keys to draw; keys a run lacks are skipped. Training curves are solid,
            ``val_*`` curves dashed, in the run's colour.
        labels: Legend labels, one per run.
        ax: A matplotlib ``Axes`` to draw on (default: a new figure).
        logy: Logarithmic y axis.
        title: Axes title.

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> import numpy as np, gdjax
        >>> fig = gdjax.plot_history({"loss": np.array([1.0, 0.5, 0.2])})
        >>> len(fig.axes[0].lines)
        1
    """
    import matplotlib.pyplot as plt  # lazy: matplotlib is optional and slow to import

    items = _histories(runs, labels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for i, (label, hist) in enumerate(items):
        color = colors[i % len(colors)]
        for key in keys:
            if key not in hist:
                continue
            y = np.asarray(hist[key], dtype=np.float64)
            if y.ndim != 1:
                raise ValueError(f"history[{key!r}] has shape {y.shape}; pick a per-epoch key")
            name = f"{label} {key}".strip() if len(items) > 1 or label else key
            ax.plot(
                np.arange(1, len(y) + 1),
                y,
                color=color,
                linestyle="--" if key.startswith("val_") else "-",
                label=name,
            )
            drawn += 1
    if drawn == 0:
        raise ValueError(f"none of the keys {list(keys)} is in the history")
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(keys))
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if drawn > 1:
        ax.legend(fontsize="small")
    return fig
