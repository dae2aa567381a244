"""``gdjax.fit``: train one model with batch, stochastic or mini-batch gradient descent."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import optax

from gdjax import _checks
from gdjax.train import history as hist
from gdjax.train import sharding as shard_lib
from gdjax.train import sources
from gdjax.train.callbacks import Hooks
from gdjax.train.driver import drive, nonfinite_message
from gdjax.train.ema import average_of
from gdjax.train.engine import as_params, optimizer_of, start_run
from gdjax.train.options import make_options, with_option_signature
from gdjax.train.stopping import NONFINITE, REASONS


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        params: Trained parameters (those of the best epoch when
            ``EarlyStopping(restore_best=True)`` saw one).
        opt_state: Final optimizer state.
        model_state: Final model state (``None`` when training had none).
        history: Per-epoch NumPy arrays, one entry per epoch run (see
            :mod:`gdjax.train.history`): ``loss``, ``nonfinite_steps``, the loss's ``aux``
            entries, and, when asked for, ``val_loss``, ``val_<metric>``, ``lr_scale``,
            diagnostics and ``step_loss`` (shape ``(epochs, steps_per_epoch)``; NaN for steps
            not run because training stopped on a non-finite step).
        epochs_run: Number of epochs completed.
        steps: Number of optimizer steps taken (skipped non-finite steps included).
        stop_reason: Why training stopped before ``epochs``, or ``None``.
        best_epoch: Epoch (1-based) of the best monitored value under early stopping, or ``None``.
        epoch_seconds: Wall-clock seconds of each epoch run by this call (the first includes
            waiting for XLA's compilation, unless an earlier call or process compiled the
            same programs); not part of checkpoints.
        ema_params: With ``ema=``, the final moving average of the weights (see
            :class:`gdjax.EMA`), else ``None``.
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
    ema_params: Any = None


@with_option_signature
def fit(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: optax.GradientTransformation,
    data: Any,
    *,
    key: jax.Array,
    model_state: Any = None,
    mesh: jax.sharding.Mesh | None = None,
    data_axis: str | None = None,
    **options: Any,
) -> FitResult:
    """Train ``params`` to minimise ``loss_fn`` over ``data`` with ``optimizer``.

    Each epoch runs as two compiled XLA programs — the full batches, then the remainder batch
    (when N is not a multiple of the batch size) with validation and the stopping rules — with
    the data on the device, shuffled there with a permutation drawn from ``key``. Every example
    is used exactly once per epoch. Compiled programs are kept for later calls: a second
    ``fit`` with the same loss, shapes and optimizer (or a gdjax optimizer built by the same
    factory with other numbers, e.g. ``gdjax.adam(3e-4)`` after ``gdjax.adam(1e-3)``) starts
    training at once.

    Loss signatures (``key=`` is passed only with ``takes_key=True``)::

        loss_fn(params, batch) -> loss | (loss, aux)
        loss_fn(params, batch, key=key) -> ...                  # dropout etc.
        loss_fn(params, model_state, batch) -> (loss, new_model_state)
                                              | (loss, new_model_state, aux)

    ``batch`` has the structure of ``data`` with leading dimension ``batch_size``; ``loss``
    is the mean over the batch (a float scalar); ``aux`` is a dict of arrays (batch means),
    averaged per epoch into the history under their own names.

    Args:
        loss_fn: The loss, as above.
        params: Initial parameters (a pytree of floating-point arrays; not modified).
        optimizer: Any optax ``GradientTransformation`` (gdjax's or optax's). A
            ``GradientTransformationExtraArgs`` also receives ``value`` (the loss),
            ``grad`` and ``value_fn`` (the loss on this batch as a function of the
            parameters), as line searches and second-order methods need.
        data: An array or a tuple/pytree of arrays sharing the leading dimension N.
        key: PRNG key for shuffling and for the loss's ``key=`` (``jax.random.key(0)``).
        model_state: Initial model state (batch-norm statistics); switches ``loss_fn`` to the
            stateful signature.
        mesh: A ``jax.sharding.Mesh`` for data-parallel training: batches are split over
            ``data_axis``, parameters and data are replicated.
        data_axis: Mesh axis for the batch (default: the mesh's first axis).
        **options: The training options, shared with :func:`gdjax.sweep` and documented in
            :class:`gdjax.TrainOptions`: ``batch_size`` and ``epochs`` (required),
            ``validation_data``, ``metrics``, ``eval_loss_fn``, ``eval_batch_size``,
            ``takes_key``, ``shuffle``, ``drop_last``, ``early_stopping``, ``tol``,
            ``reduce_on_plateau``, ``on_nonfinite``, ``diagnostics``, ``record_steps``,
            ``checkpoint_dir``, ``checkpoint_every``, ``checkpoint_every_steps``,
            ``keep_checkpoints``, ``progress``, ``progress_every_steps``, ``callbacks``,
            ``ema``.

    Returns:
        A :class:`FitResult` with ``params``, ``opt_state``, ``model_state`` and ``history``.

    Raises:
        ValueError: Mismatched leading dimensions, ``batch_size`` outside ``[1, N]``,
            ``epochs < 1``, a non-scalar loss, NaN/inf in the data, validation data of another
            layout, a checkpoint directory holding another run (or a run that completed more
            than ``epochs`` epochs).
        TypeError: Arguments of the wrong type, or a loss that fails on the data's dtypes.
        FloatingPointError: A non-finite step under ``on_nonfinite="raise"``.

    Examples:
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
    opts = make_options("fit", options)
    opt = optimizer_of(optimizer, "fit")
    key = _checks.prng_key("key", key)
    params = as_params(params)
    place, placement, batch_sharding, replicated = jax.device_put, None, None, None
    if mesh is not None:
        axis = shard_lib.data_axis_of(mesh, data_axis)
        batch_sharding = shard_lib.batch_sharding(mesh, axis)
        n = sources.size("data", data)
        shard_lib.check_divisible(_checks.batch_size("batch_size", opts.batch_size, n), mesh, axis)
        place = lambda tree: shard_lib.replicate(tree, mesh)  # noqa: E731
        placement = (mesh, axis)
        replicated = shard_lib.replicated(mesh)
    run = start_run(
        caller="fit",
        loss_fn=loss_fn,
        params=params,
        optimizer=opt,
        data=data,
        model_state=model_state,
        options=opts,
        key=key,
        member_hp={},
        members=None,
        place=place,
        placement_key=placement,
        batch_sharding=batch_sharding,
        replicated=replicated,
    )
    hooks = Hooks(opts.callbacks, "fit", opts.epochs) if opts.callbacks else None
    try:
        drive(run, opts.epochs, hooks=hooks)
    finally:
        if run.checkpointer is not None:
            run.checkpointer.close()
    return _result(run)


def _result(run: Any) -> FitResult:
    state, spec = run.state, run.spec
    stop = state.stop
    reason_code = int(stop.reason)
    reason = REASONS[reason_code] if bool(stop.stopped) else run.stop_request
    detail = nonfinite_message(stop, spec, None)
    if reason_code == NONFINITE and bool(stop.stopped):
        warnings.warn(
            f"training stopped: {detail}; returning the state from before that step (pass "
            "on_nonfinite='skip' to drop such steps and go on)",
            RuntimeWarning,
            stacklevel=3,
        )
    elif detail is not None:
        skipped = int(sum(np.asarray(x) for x in run.history.get("nonfinite_steps", [0])))
        warnings.warn(
            f"{skipped} step(s) were skipped because they were not finite; the first: {detail}",
            RuntimeWarning,
            stacklevel=3,
        )
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
        history=hist.stack(run.history),
        epochs_run=int(state.epoch),
        steps=int(state.step),
        stop_reason=reason,
        best_epoch=best_epoch,
        epoch_seconds=np.asarray(run.epoch_seconds),
        ema_params=average_of(state.opt_state, state.params),
    )


__all__ = ["FitResult", "fit"]
