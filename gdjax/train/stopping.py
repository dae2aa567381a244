"""Stopping rules, as pure per-epoch state machines, and the reduce-on-plateau rule's settings.

The rules run inside the compiled epoch program (so that a vmapped sweep stops each member on its
own) and their state is part of the checkpoint (so that a resumed run stops exactly where an
uninterrupted one would).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax.transforms.plateau import reduce_on_plateau

#: Why a run stopped, indexed by :attr:`StopState.reason`.
REASONS = ("", "early stopping", "loss change below tolerance", "non-finite loss")
NONE, EARLY, TOLERANCE, NONFINITE = range(4)


def _check_mode(mode: str, who: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"{who}: mode must be 'min' or 'max', got {mode!r}")


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when a monitored quantity has not improved for ``patience`` epochs.

    Args:
        monitor: History key to watch, e.g. ``"val_loss"``, ``"loss"`` or ``"val_accuracy"``.
        patience: Epochs without improvement before stopping (``>= 1``).
        min_delta: An epoch improves only if it beats the best value by more than this.
        mode: ``"min"`` for losses, ``"max"`` for accuracies.
        restore_best: Return the parameters (and model state) of the best epoch at the end.

    Examples:
        >>> import gdjax
        >>> stop = gdjax.EarlyStopping(monitor="val_loss", patience=3, min_delta=1e-4)
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: Literal["min", "max"] = "min"
    restore_best: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {self.patience!r}")
        if not self.min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {self.min_delta!r}")
        _check_mode(self.mode, "EarlyStopping")


@dataclass(frozen=True)
class ReduceOnPlateau:
    """Multiply the step size by ``factor`` when a monitored history entry stops improving.

    ``fit`` and ``sweep`` append :func:`gdjax.reduce_on_plateau` to the optimizer, so the scale
    lives in the optimizer state (``gdjax.get_hyperparam(state, "lr_scale")``), and feed it
    the monitored value after every epoch; the history records it as ``lr_scale``. The scale
    multiplies the optimizer's updates: for every optimizer whose last transformation scales
    by the learning rate (all of optax's and gdjax's named optimizers) this is exactly a
    learning-rate reduction. Outside the engine, use :func:`gdjax.reduce_on_plateau` directly.

    Args:
        monitor: History key to watch.
        factor: Multiplier in ``(0, 1)`` applied after ``patience`` epochs without improvement.
        patience: Epochs without improvement before reducing (``>= 1``).
        min_delta: An epoch improves only if it beats the best value by more than this.
        mode: ``"min"`` or ``"max"``.
        cooldown: Epochs to wait after a reduction before counting again.
        min_scale: The scale never goes below this.

    Examples:
        >>> import gdjax
        >>> plateau = gdjax.ReduceOnPlateau(monitor="loss", factor=0.1, patience=2)
    """

    monitor: str = "val_loss"
    factor: float = 0.5
    patience: int = 3
    min_delta: float = 0.0
    mode: Literal["min", "max"] = "min"
    cooldown: int = 0
    min_scale: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.factor < 1.0:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {self.factor!r}")
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(
                f"ReduceOnPlateau: patience must be an int >= 1, got {self.patience!r}"
            )
        if not isinstance(self.cooldown, int) or self.cooldown < 0:
            raise ValueError(
                f"ReduceOnPlateau: cooldown must be an int >= 0, got {self.cooldown!r}"
            )
        if not self.min_delta >= 0 or not self.min_scale >= 0:
            raise ValueError("ReduceOnPlateau: min_delta and min_scale must be >= 0")
        _check_mode(self.mode, "ReduceOnPlateau")

    def transform(self) -> optax.GradientTransformationExtraArgs:
        """The :func:`gdjax.reduce_on_plateau` transformation the engine appends."""
        return reduce_on_plateau(
            factor=self.factor,
            patience=self.patience,
            min_delta=self.min_delta,
            mode=self.mode,
            cooldown=self.cooldown,
            min_scale=self.min_scale,
            accumulation_size=None,
        )


@dataclass(frozen=True)
class StopConfig:
    """Everything that decides when training stops (built from the training options)."""

    early_stopping: EarlyStopping | None = None
    tol: float | None = None
    on_nonfinite: Literal["stop", "skip", "raise"] = "stop"


class StopState(NamedTuple):
    """State of the stopping rules, carried from epoch to epoch (all JAX scalars)."""

    stopped: jax.Array  # bool: no further epoch runs
    reason: jax.Array  # int32 index into REASONS
    halted: jax.Array  # bool: a non-finite step happened under on_nonfinite="stop" or "raise"
    best: jax.Array  # early stopping: best monitored value
    best_epoch: jax.Array  # epoch (1-based) of the best value, 0 if none yet
    wait: jax.Array
    best_params: Any  # copy of params at the best epoch (None unless restore_best)
    best_model_state: Any
    prev_loss: jax.Array
    bad_step: jax.Array  # int32: the first step found non-finite (counted from 0), -1 if none
    bad_parts: jax.Array  # int32: what was non-finite at that step (bits of gdjax.train.step)


def _worst(mode: str) -> float:
    return float("inf") if mode == "min" else -float("inf")


def init_stop_state(cfg: StopConfig, params: Any, model_state: Any) -> StopState:
    """The state before the first epoch."""
    es = cfg.early_stopping
    keep = es is not None and es.restore_best
    f32, i32 = jnp.float32, jnp.int32
    return StopState(
        stopped=jnp.array(False),
        reason=jnp.array(NONE, i32),
        halted=jnp.array(False),
        best=jnp.array(_worst(es.mode) if es else 0.0, f32),
        best_epoch=jnp.array(0, i32),
        wait=jnp.array(0, i32),
        best_params=jax.tree.map(jnp.array, params) if keep else None,
        best_model_state=jax.tree.map(jnp.array, model_state) if keep else None,
        prev_loss=jnp.array(jnp.nan, f32),
        bad_step=jnp.array(-1, i32),
        bad_parts=jnp.array(0, i32),
    )


def _improved(value: jax.Array, best: jax.Array, min_delta: float, mode: str) -> jax.Array:
    better = value < best - min_delta if mode == "min" else value > best + min_delta
    return jnp.isfinite(value) & better


def update_stop_state(
    cfg: StopConfig,
    state: StopState,
    stats: dict[str, jax.Array],
    params: Any,
    model_state: Any,
    epoch: jax.Array,
) -> StopState:
    """Apply every rule to the statistics of the epoch that just ended (``epoch`` is 1-based)."""
    stopped, reason = state.stopped, state.reason

    def stop_if(cond: jax.Array, code: int) -> None:
        nonlocal stopped, reason
        reason = jnp.where(~stopped & cond, code, reason)
        stopped = stopped | cond

    stop_if(state.halted, NONFINITE)
    new = {}
    es = cfg.early_stopping
    if es is not None:
        value = stats[es.monitor].astype(jnp.float32)
        better = _improved(value, state.best, es.min_delta, es.mode)
        wait = jnp.where(better, 0, state.wait + 1)
        new.update(
            best=jnp.where(better, value, state.best),
            best_epoch=jnp.where(better, epoch, state.best_epoch),
            wait=wait,
        )
        if es.restore_best:
            new["best_params"] = jax.tree.map(
                lambda p, b: jnp.where(better, p, b), params, state.best_params
            )
            new["best_model_state"] = jax.tree.map(
                lambda p, b: jnp.where(better, p, b), model_state, state.best_model_state
            )
        stop_if(wait >= es.patience, EARLY)
    if cfg.tol is not None:
        loss = stats["loss"].astype(jnp.float32)
        stop_if(jnp.abs(loss - state.prev_loss) < cfg.tol, TOLERANCE)
        new["prev_loss"] = loss
    return state._replace(stopped=stopped, reason=reason, halted=jnp.array(False), **new)
