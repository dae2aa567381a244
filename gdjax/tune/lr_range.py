"""The learning-rate range test (Smith 2017), as one sweep with per-step losses.

Smith's test trains once while the learning rate grows, and reads off the rates where the loss
starts to fall and where it stops falling or blows up. Here every rate is a member of one
vmapped :func:`gdjax.sweep` (``num`` rates, log-spaced from ``min_lr`` to ``max_lr``), trained
for the same short budget from the same start and the same data order, with every step's loss
recorded (``record_steps=True``). That reads the same curve — loss against rate — without the
ramp's lag (in a ramp, the loss at a step still carries the effect of the smaller rates before).

For each rate the *final loss* is the mean loss over the last ``tail`` fraction of its steps. A
rate *diverged* if a step turned non-finite or the final loss ended above the first step's loss.
The suggested rate is the one with the lowest final loss; ``max_stable`` is the largest rate
that did not diverge (the edge Smith's test looks for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdjax import _checks


@dataclass
class LRRangeResult:
    """What :func:`lr_range_test` measured.

    Attributes:
        learning_rates: The rates tried, shape ``(num,)``, increasing.
        step_losses: Every step's training loss per rate, shape ``(num, steps)`` (NaN after a
            rate stopped on a non-finite step).
        final_loss: Mean loss over the last ``tail`` of the steps, per rate.
        diverged: Whether each rate diverged (see the module docstring).
        suggested: The rate with the lowest final loss.
        max_stable: The largest rate that did not diverge.
    """

    learning_rates: np.ndarray
    step_losses: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    suggested: float
    max_stable: float

    def plot(self, path: Any = None) -> Any:
        """Final loss against the rate, and the per-step losses (see :func:`gdjax.tune.plot.lr_range`)."""
        from gdjax.tune import plot

        return plot.lr_range(self, path)


def lr_range_test(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: Callable[[Any], Any],
    data: Any,
    *,
    min_lr: float = 1e-5,
    max_lr: float = 1.0,
    num: int = 16,
    tail: float = 0.1,
    seed: int = 0,
    **options: Any,
) -> LRRangeResult:
    """Train ``num`` learning rates in one sweep and suggest one (see the module docstring).

    Args:
        loss_fn: The loss, as for :func:`gdjax.sweep`.
        params: Initial parameters, or ``init(key) -> params`` (all rates start alike).
        optimizer: ``optimizer(learning_rate) -> GradientTransformation``.
        data: Training data.
        min_lr: Smallest rate (``> 0``).
        max_lr: Largest rate (``> min_lr``).
        num: Number of rates (``>= 3``).
        tail: Fraction of the last steps averaged into the final loss.
        seed: Seed of the initialisation and data order (shared by all rates).
        **options: Training options of :func:`gdjax.sweep` (``batch_size`` required;
            ``epochs`` defaults to 1).

    Returns:
        An :class:`LRRangeResult`.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> from gdjax import tune
        >>> x = jnp.linspace(-1, 1, 64)[:, None]; y = 3 * x[:, 0]
        >>> loss = lambda w, b: jnp.mean((b[0][:, 0] * w - b[1]) ** 2)
        >>> r = tune.lr_range_test(loss, jnp.zeros(()), optax.sgd, (x, y), min_lr=1e-3,
        ...                        max_lr=10.0, num=9, batch_size=8, epochs=2)
        >>> bool(r.diverged[-1]), r.suggested < r.max_stable
        (True, True)
    """
    from gdjax.train.sweep import sweep

    for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a number > 0 (a log range), got {value!r}")
    if not max_lr > min_lr:
        raise ValueError(f"max_lr={max_lr!r} must be larger than min_lr={min_lr!r}")
    _checks.python_int("num", num, minimum=3)
    if not 0 < tail <= 1:
        raise ValueError(f"tail must be in (0, 1], got {tail!r}")
    if options.get("record_steps") is False:
        raise ValueError("the range test needs record_steps; leave it out")
    options = {"epochs": 1, **options, "record_steps": True}
    rates = np.geomspace(min_lr, max_lr, num).astype(np.float32)
    res = sweep(
        loss_fn,
        params,
        lambda hp: optimizer(hp["learning_rate"]),
        data,
        hparams={"learning_rate": rates},
        seeds=seed,
        **options,
    )
    steps = np.asarray(res.history["step_loss"], np.float64).reshape(num, -1)
    k = max(1, round(tail * steps.shape[1]))
    last = steps[:, -k:]
    with np.errstate(invalid="ignore"):
        final = np.where(np.isfinite(last).all(axis=1), last.mean(axis=1), np.nan)
    nonfinite = np.asarray([r == "non-finite loss" for r in res.stop_reason])
    diverged = nonfinite | ~np.isfinite(final) | (final > steps[:, 0])
    ok = np.flatnonzero(~diverged)
    if ok.size == 0:
        raise ValueError(
            f"every learning rate from {min_lr:g} to {max_lr:g} diverged; lower min_lr"
        )
    best = ok[np.argmin(final[ok])]
    return LRRangeResult(
        learning_rates=rates,
        step_losses=steps,
        final_loss=final,
        diverged=diverged,
        suggested=float(rates[best]),
        max_stable=float(rates[ok.max()]),
    )
