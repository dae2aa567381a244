"""``gdjax.fit``: train one model with batch, stochastic or mini-batch gradient descent."""

from __future__ import annotations

import functools
import hashlib
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jax
import numpy as np
import optax

from gdjax.train import sharding as shard_lib
from gdjax.train import validate as v
from gdjax.train.checkpoint import Checkpointer
from gdjax.train.diagnostics import Diagnostics
from gdjax.train.epoch import (
    CONTROL_KEYS,
    EngineSpec,
    TrainState,
    chunk_plan,
    init_state,
)
from gdjax.train.programs import Programs
from gdjax.train.progress import Progress, running_loss
from gdjax.train.setup import build_spec, validation_arrays
from gdjax.train.stopping import NONFINITE, REASONS, EarlyStopping, ReduceOnPlateau


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        params: Trained parameters (those of the best epoch when
            ``EarlyStopping(restore_best=True)`` saw one).
        opt_state: Final optimizer state.
        model_state: Final model state (``None`` when training had none).
        history: Per-epoch NumPy arrays, one entry per epoch run: ``loss`` (mean training loss
            of the epoch over every example), ``nonfinite_steps``, the loss's scalar ``aux``
            entries, and, when asked for, ``val_loss``, ``val_<metric>``, ``lr_scale``,
            diagnostics and ``step_loss`` (shape ``(epochs, steps_per_epoch)``; NaN for steps
            not run because training stopped on a non-finite loss).
        epochs_run: Number of epochs completed.
        steps: Number of optimizer steps taken (skipped non-finite steps included).
        stop_reason: Why training stopped before ``epochs``, or ``None``.
        best_epoch: Epoch (1-based) of the best monitored value under early stopping, or ``None``.
        epoch_seconds: Wall-clock seconds of each epoch run by this call (the first includes
            XLA's compilation, unless an earlier call compiled the same program; tracing is
            done before the clock starts); not part of checkpoints.
    """

    params: Any
    opt_state: Any
    model_state: Any
    history: dict[str, np.ndarray]
    epochs_run: int
    steps: int
    stop_reason: str | None = None
    best_epoch: int | None = None
    epoch_seconds: np.ndarray | None = None


def history_arrays(history: dict[str, list]) -> dict[str, np.ndarray]:
    """Stack per-epoch values into arrays."""
    return {k: np.stack(vals) for k, vals in history.items() if vals}


def append_stats(history: dict[str, list], stats: dict[str, np.ndarray]) -> None:
    """Add one epoch's statistics to the history lists (control entries excluded)."""
    for k, val in stats.items():
        if k not in CONTROL_KEYS:
            history.setdefault(k, []).append(np.asarray(val))


def _fingerprint(spec: EngineSpec, state: TrainState, data: Any, val: Any, key: Any) -> dict:
    def layout(tree: Any) -> list[str]:
        return [
            f"{p}: {tuple(x.shape)} {np.dtype(x.dtype)}"
            for p, x in zip(v.leaf_paths(tree), jax.tree.leaves(tree), strict=True)
        ]

    key_data = (
        jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    )
    return {
        "params": layout(state.params),
        "data": layout(data),
        "validation_data": layout(val) if val is not None else [],
        "batch_size": spec.batch_size,
        "settings": [
            spec.drop_last,
            spec.shuffle,
            spec.record_steps,
            spec.stop.on_nonfinite,
            repr(spec.stop.early_stopping),
            repr(spec.stop.reduce_on_plateau),
            spec.stop.tol,
            repr(spec.diagnostics),
        ],
        "state": layout(state),
        "key": hashlib.sha256(np.asarray(key_data).tobytes()).hexdigest()[:16],
    }


def fit(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Any,
    *,
    batch_size: int | None,
    epochs: int,
    key: jax.Array,
    validation_data: Any = None,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    eval_loss_fn: Callable[..., Any] | None = None,
    eval_batch_size: int | None = None,
    model_state: Any = None,
    takes_key: bool = False,
    shuffle: bool = True,
    drop_last: bool = False,
    early_stopping: EarlyStopping | None = None,
    tol: float | None = None,
    reduce_on_plateau: ReduceOnPlateau | None = None,
    on_nonfinite: Literal["stop", "skip", "raise"] = "stop",
    diagnostics: bool | Diagnostics | None = None,
    record_steps: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    checkpoint_every_steps: int | None = None,
    keep_checkpoints: int = 3,
    mesh: jax.sharding.Mesh | None = None,
    data_axis: str | None = None,
    gather: Literal["step", "epoch"] = "step",
    progress: bool = False,
    progress_every_steps: int | None = None,
) -> FitResult:
    """Train ``params`` to minimise ``loss_fn`` over ``data`` with ``optimizer``.

    Each epoch is one compiled XLA program (or a few, with step checkpoints): the data stays
    on the device, is shuffled there with a permutation drawn from ``key``, and ``lax.scan``
    runs the steps, each gathering its batch by index; the state buffers are donated. Every example is used
    exactly once per epoch: when ``batch_size`` does not divide N, the last step uses the
    smaller remainder batch (``drop_last=True`` drops it instead).

    Loss signatures (``key=`` is passed only with ``takes_key=True``)::

        loss_fn(params, batch) -> loss | (loss, aux)
        loss_fn(params, batch, key=key) -> ...                  # dropout etc.
        loss_fn(params, model_state, batch) -> (loss, new_model_state)
                                              | (loss, new_model_state, aux)

    ``batch`` has the structure of ``data`` with leading dimension ``batch_size``; ``loss``
    is the mean over the batch (a float scalar); a dict ``aux`` of scalars is averaged per
    epoch into the history under its own names. Metrics are ``fn(params, batch) -> scalar``
    (``fn(params, model_state, batch)`` with a model state), averaged over
    ``validation_data`` and recorded as ``val_<name>``.

    Args:
        loss_fn: The loss, as above.
        params: Initial parameters (a pytree of arrays; not modified).
        optimizer: Any optax ``GradientTransformation`` (gdjax's or optax's).
        data: An array or a tuple/pytree of arrays sharing the leading dimension N.
        batch_size: ``None`` for batch gradient descent (all N each step), ``1`` for
            stochastic gradient descent, anything in between for mini-batches.
        epochs: Number of passes over the data (``>= 1``).
        key: PRNG key for shuffling and for the loss's ``key=`` (``jax.random.key(0)``).
        validation_data: Held-out data with the layout of ``data``; evaluated each epoch
            (history keys ``val_loss`` and ``val_<metric>``). A dict ``{name: data}`` of several
            sets, e.g. ``{"val": ..., "test": ...}``, records ``<name>_loss`` and
            ``<name>_<metric>`` for each.
        metrics: ``{"name": fn}`` computed on ``validation_data``.
        eval_loss_fn: Loss used for validation (e.g. without dropout); same signature as
            ``loss_fn``; defaults to ``loss_fn``.
        eval_batch_size: Validation batch size (default ``max(batch_size, 1024)``, capped by N).
        model_state: Initial model state (batch-norm statistics); switches ``loss_fn`` to the
            stateful signature.
        takes_key: Pass a fresh key to the loss each step as ``key=``.
        shuffle: Reshuffle every epoch (else the data order is kept).
        drop_last: Drop the last, smaller batch of each epoch.
        early_stopping: A :class:`~gdjax.EarlyStopping` rule.
        tol: Stop when the epoch's training loss changes by less than ``tol``.
        reduce_on_plateau: A :class:`~gdjax.ReduceOnPlateau` rule.
        on_nonfinite: A step with a non-finite loss or gradient is never applied. ``"stop"``
            ends training after that epoch with a warning (``stop_reason`` says so) and returns
            the last finite parameters; ``"skip"`` drops the step and goes on (counted in
            ``history["nonfinite_steps"]``); ``"raise"`` raises ``FloatingPointError``.
        diagnostics: ``True`` or a :class:`~gdjax.Diagnostics` for per-epoch gradient
            statistics in the history.
        record_steps: Also record every step's loss as ``history["step_loss"]``.
        checkpoint_dir: Save checkpoints here with orbax; if it already holds checkpoints of
            this run, resume from the newest valid one (bit-identical to an uninterrupted run).
        checkpoint_every: Save every this many epochs (and always at the end).
        checkpoint_every_steps: Also save every this many steps within an epoch.
        keep_checkpoints: How many recent checkpoints to keep.
        mesh: A ``jax.sharding.Mesh`` for data-parallel training: batches are split over
            ``data_axis``, parameters and data are replicated.
        data_axis: Mesh axis for the batch (default: the mesh's first axis).
        gather: ``"step"`` gathers each batch from the permutation inside the step (least
            memory, fastest measured on CPU); ``"epoch"`` gathers a chunk's batches at once.
            Results are identical.
        progress: Show a tqdm progress bar over the steps, with the epoch, the training loss
            so far in the epoch, the last validation loss and examples per second. It is
            updated between compiled chunks: after every epoch, and within one at each step
            checkpoint and every ``progress_every_steps`` steps.
        progress_every_steps: With ``progress``, also update the bar every this many steps
            within an epoch, by splitting the epoch into compiled chunks as step checkpoints
            do (one more short program to compile; results are bit-identical). Each update
            waits for its chunk to finish.

    Returns:
        A :class:`FitResult` with ``params``, ``opt_state``, ``model_state`` and ``history``.

    Raises:
        ValueError: Mismatched leading dimensions, ``batch_size`` outside ``[1, N]``,
            ``epochs < 1``, a non-scalar loss, NaN/inf in the data, validation data of another
            layout, or a checkpoint directory holding a run with other shapes.
            A checkpoint directory whose run already completed more than ``epochs`` epochs is
            refused too.
        TypeError: Arguments of the wrong type, or a loss that fails on the data's dtypes.

    Example:
        >>> import jax, jax.numpy as jnp, optax, gdjax
        >>> x = jnp.linspace(-1, 1, 64)[:, None]; y = 3 * x[:, 0] + 1
        >>> def loss(p, batch):
        ...     xb, yb = batch
        ...     return jnp.mean((xb[:, 0] * p["w"] + p["b"] - yb) ** 2)
        >>> res = gdjax.fit(loss, {"w": 0.0, "b": 0.0}, optax.sgd(0.5), (x, y),
        ...                 batch_size=16, epochs=50, key=jax.random.key(0))
        >>> round(float(res.params["w"]), 2)
        3.0
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "optimizer must be an optax GradientTransformation (e.g. gdjax.adam(1e-3)), got "
            f"{type(optimizer).__name__}"
        )
    key = v.check_key(key)
    params = jax.tree.map(np.asarray, params) if _has_python_scalars(params) else params
    for name, value in (
        ("checkpoint_every", checkpoint_every),
        ("keep_checkpoints", keep_checkpoints),
    ):
        v.check_positive_int(value, name)
    for name, value in (
        ("checkpoint_every_steps", checkpoint_every_steps),
        ("progress_every_steps", progress_every_steps),
    ):
        if value is not None:
            v.check_positive_int(value, name)
    batch_sharding = None
    if mesh is not None:
        axis = shard_lib.data_axis_of(mesh, data_axis)
        batch_sharding = shard_lib.batch_shardings(mesh, axis)
    spec, aux_keys = build_spec(
        loss_fn=loss_fn,
        params=params,
        make_optimizer=lambda _: optimizer,
        hp=None,
        data=data,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=validation_data,
        metrics=metrics,
        eval_loss_fn=eval_loss_fn,
        eval_batch_size=eval_batch_size,
        model_state=model_state,
        takes_key=takes_key,
        takes_hparams=False,
        shuffle=shuffle,
        drop_last=drop_last,
        early_stopping=early_stopping,
        tol=tol,
        reduce_on_plateau=reduce_on_plateau,
        on_nonfinite=on_nonfinite,
        diagnostics=diagnostics,
        record_steps=record_steps,
        gather=gather,
        batch_sharding=batch_sharding,
    )
    if mesh is not None:
        shard_lib.check_divisible(spec.batch_size, mesh, axis)

    state = init_state(spec, params, model_state, None, aux_keys)
    history: dict[str, list] = {}
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Checkpointer(
            checkpoint_dir, keep_checkpoints, _fingerprint(spec, state, data, validation_data, key)
        )
        restored = ckpt.restore(state)
        if restored is not None:
            state, history = restored
            done = int(state.epoch)
            if done > epochs:
                ckpt.close()
                raise ValueError(
                    f"checkpoint_dir {checkpoint_dir} holds a run that already completed {done} "
                    f"epochs, more than epochs={epochs}; pass epochs >= {done} to continue it "
                    "(or use another directory)"
                )
    val = validation_arrays(validation_data, data)
    if mesh is not None:
        state, data, val = shard_lib.replicate((state, data, val), mesh)
    else:
        data = jax.device_put(data)
        val = jax.device_put(val)
    state = jax.device_put(state)

    place = None if mesh is None else functools.partial(shard_lib.replicate, mesh=mesh)
    programs = Programs(spec, place=place)
    epoch0 = int(state.epoch)
    splits = (checkpoint_every_steps, progress_every_steps if progress else None)
    bar = Progress(
        progress,
        epochs,
        spec.steps_per_epoch,
        initial_steps=epoch0 * spec.steps_per_epoch + int(state.pos),
    )
    # Trace the programs (and find them compiled, when an earlier call compiled them) before
    # any epoch's clock starts.
    if epoch0 < epochs and not bool(state.stop.stopped):
        plans = {*chunk_plan(spec, int(state.pos), splits), *chunk_plan(spec, 0, splits)}
        for num_full, finish in plans:
            programs(num_full, finish).prepare(state, key, None, data, val)
    seconds = []
    try:
        stopped = bool(state.stop.stopped)
        for epoch in range(epoch0 + 1, epochs + 1):
            if stopped:
                break
            pos = int(state.pos)
            stats = {}
            t0 = time.perf_counter()
            for num_full, finish in chunk_plan(spec, pos, splits):
                state, stats = programs(num_full, finish)(state, key, None, data, val)
                pos += num_full
                if finish:
                    continue
                # chunks also end at progress updates; checkpoints keep their own cadence
                at_checkpoint = checkpoint_every_steps and (
                    pos % checkpoint_every_steps == 0 or pos == spec.num_full
                )
                if ckpt is not None and at_checkpoint:
                    ckpt.save(int(state.step), state, history)
                if bar.enabled:
                    loss = {"loss": running_loss(state.acc)}
                    bar.update(num_full, num_full * spec.batch_size, epoch, loss)
            stats = jax.device_get(stats)
            seconds.append(time.perf_counter() - t0)
            append_stats(history, stats)
            stopped = bool(stats["stopped"])
            bar.update(
                num_full + (spec.remainder > 0),
                num_full * spec.batch_size + spec.remainder,
                epoch,
                {k: stats[k] for k in ("loss", "val_loss") if k in stats},
            )
            if ckpt is not None and (epoch % checkpoint_every == 0 or epoch == epochs or stopped):
                ckpt.save(int(state.step), state, history)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    result = _result(spec, state, history)
    result.epoch_seconds = np.asarray(seconds)
    return result


def _has_python_scalars(tree: Any) -> bool:
    return any(isinstance(x, int | float) for x in jax.tree.leaves(tree))


def _result(spec: EngineSpec, state: TrainState, history: dict) -> FitResult:
    stop = state.stop
    reason_code = int(stop.reason)
    reason = REASONS[reason_code] if bool(stop.stopped) else None
    if reason_code == NONFINITE:
        where = f"epoch {int(state.epoch)}"
        msg = (
            f"training stopped: non-finite loss or gradient in {where}; returning the last "
            "finite parameters (lower the learning rate, or pass on_nonfinite='skip')"
        )
        if spec.stop.on_nonfinite == "raise":
            raise FloatingPointError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    params, model_state = state.params, state.model_state
    best_epoch = None
    es = spec.stop.early_stopping
    if es is not None and int(stop.best_epoch) > 0:
        best_epoch = int(stop.best_epoch)
        if es.restore_best:
            params, model_state = stop.best_params, stop.best_model_state
    return FitResult(
        params=params,
        opt_state=state.opt_state,
        model_state=model_state if spec.loss.has_state else None,
        history=history_arrays(history),
        epochs_run=int(state.epoch),
        steps=int(state.step),
        stop_reason=reason,
        best_epoch=best_epoch,
    )
