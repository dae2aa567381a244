"""The programs an epoch runs: its order, chunks of full-batch steps, and the end of the epoch.

:func:`epoch_order` draws the epoch's order of the examples. :func:`run_steps` runs ``n`` full
batches from position ``pos`` (``n`` is an input, so one compiled program serves every chunk
length: whole epochs, step checkpoints, progress updates). :func:`run_end` runs the remainder
batch when N is not a multiple of the batch size, then validation, metrics, diagnostics and
the stopping rules. Keeping them apart keeps each program small — XLA's compile time grows with
the number of operations, and the random-number hashing of the shuffle alone doubled the steps
program's — and lets them compile at once.

Randomness is a pure function of ``(key, epoch, position in epoch)``: the order is
``permutation(fold_in(fold_in(key, epoch), 0), n)`` (:func:`gdjax.train.shuffle.permutation`)
and step ``i`` of the epoch passes ``fold_in(fold_in(key, epoch), i + 1)`` to the loss, so a
resumed run, or one split into other chunks, draws the same numbers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gdjax.train import diagnostics as diag_lib
from gdjax.train import precision
from gdjax.train.ema import EMA, average_of
from gdjax.train.shuffle import permutation
from gdjax.train.spec import Spec
from gdjax.train.state import TrainState, zero_acc
from gdjax.train.step import fast_step, guarded_step, stays_finite
from gdjax.train.stopping import update_stop_state
from gdjax.transforms.plateau import ReduceOnPlateauState, observe_plateau


def epoch_order(spec: Spec, key: jax.Array, epoch: jax.Array) -> jax.Array:
    """The order in which epoch ``epoch`` visits the examples (int32, each index once)."""
    if spec.shuffle:
        return permutation(jax.random.fold_in(jax.random.fold_in(key, epoch), 0), spec.n)
    return jnp.arange(spec.n, dtype=jnp.int32)


def take_rows(data: Any, idx: jax.Array, sharding: Any) -> Any:
    """The rows ``idx`` of every array of ``data``, laid out with ``sharding``."""
    # the order is a permutation: its indices are in bounds, and "clip" lowers to fewer
    # operations than the default "fill"
    return constrain(jax.tree.map(lambda a: jnp.take(a, idx, axis=0, mode="clip"), data), sharding)


def constrain(batch: Any, sharding: Any) -> Any:
    """Lay ``batch`` out with ``sharding`` (rows split over the mesh), if one is given."""
    if sharding is None:
        return batch
    explicit = any(t == jax.sharding.AxisType.Explicit for t in sharding.mesh.axis_types)
    move = jax.sharding.reshard if explicit else jax.lax.with_sharding_constraint
    return jax.tree.map(lambda a: move(a, sharding), batch)


def run_steps(
    spec: Spec,
    guarded: bool,
    state: TrainState,
    key: jax.Array,
    hp: Any,
    data: Any,
    order: jax.Array,
    clock: tuple[jax.Array, jax.Array],
    n: jax.Array,
) -> tuple[TrainState, jax.Array]:
    """Run ``n`` full batches of epoch ``clock[0]`` (in ``order``) from position ``clock[1]``.

    Returns the new state and whether the chunk may be kept: in the fast form, every step's
    loss was finite and no finite value of the state turned non-finite (see
    :mod:`gdjax.train.step`).
    """
    epoch, pos0 = clock
    epoch_key = jax.random.fold_in(key, epoch)  # only computed if the loss takes a key
    bs = spec.batch_size

    def batch_at(i: jax.Array) -> Any:
        idx = jax.lax.dynamic_slice(order, ((pos0 + i) * bs,), (bs,))
        return take_rows(data, idx, spec.batch_sharding)

    return steps_loop(spec, guarded, state, epoch_key, hp, batch_at, n)


def steps_loop(
    spec: Spec,
    guarded: bool,
    state: TrainState,
    epoch_key: jax.Array,
    hp: Any,
    batch_at: Any,
    n: jax.Array,
) -> tuple[TrainState, jax.Array]:
    """The loop of :func:`run_steps`: ``n`` steps on the batches ``batch_at(0)``, ... (also
    used by :mod:`gdjax.train.streaming`, whose batches come from the host)."""
    bs = spec.batch_size

    def body(i, carry):
        state, ok = carry
        batch = batch_at(i)
        if guarded:
            return guarded_step(spec, state, batch, bs, epoch_key, hp), ok
        state, finite = fast_step(spec, state, batch, bs, epoch_key, hp)
        return state, ok & finite

    start = (state.params, state.opt_state, state.model_state)
    state, ok = jax.lax.fori_loop(0, n, body, (state, jnp.asarray(True)))
    if not guarded:
        ok = ok & stays_finite(start, (state.params, state.opt_state, state.model_state))
    return state, ok


def _evaluate(
    spec: Spec,
    state: TrainState,
    val_data: Any,
    key: jax.Array,
    hp: Any,
    name: str,
    val_n: int,
    eb: int,
) -> dict[str, jax.Array]:
    """Weighted means of the loss and metrics over the whole validation set ``name``."""
    nfull, rem = val_n // eb, val_n % eb

    def sums(batch: Any, n: int) -> dict:
        loss, _, _ = spec.eval_loss(state.params, state.model_state, batch, key, hp["member"])
        out = {f"{name}_loss": loss.astype(jnp.float32) * n}
        for metric, fn in spec.metrics:
            args = (
                (state.params, state.model_state, batch)
                if spec.eval_loss.has_state
                else (state.params, batch)
            )
            signature = (
                "fn(params, model_state, batch)"
                if spec.eval_loss.has_state
                else "fn(params, batch)"
            )
            try:
                value = fn(*args)
            except (TypeError, ValueError) as err:
                raise type(err)(
                    f"metrics[{metric!r}] failed when called as {signature} on a validation "
                    f"batch: {err}"
                ) from err
            except Exception as err:
                err.add_note(f"raised by metrics[{metric!r}], called as {signature}")
                raise
            if not isinstance(value, jax.Array):
                raise TypeError(
                    f"metrics[{metric!r}] must return a scalar array (the mean over the batch), "
                    f"got {type(value).__name__}"
                )
            if value.shape != ():
                raise ValueError(
                    f"metrics[{metric!r}] must return a scalar (the mean over the batch), got "
                    f"shape {value.shape}; did you forget .mean()?"
                )
            out[f"{name}_{metric}"] = jnp.real(value).astype(jnp.float32) * n
        return out

    total = None
    if nfull:
        xs = jax.tree.map(lambda a: a[: nfull * eb].reshape(nfull, eb, *a.shape[1:]), val_data)

        def body(carry, batch):
            return jax.tree.map(jnp.add, carry, sums(batch, eb)), None

        zero = jax.tree.map(
            jnp.zeros_like, jax.eval_shape(sums, jax.tree.map(lambda a: a[0], xs), eb)
        )
        total, _ = jax.lax.scan(body, zero, xs)
    if rem:
        tail = sums(jax.tree.map(lambda a: a[nfull * eb :], val_data), rem)
        total = tail if total is None else jax.tree.map(jnp.add, total, tail)
    return {k: v / val_n for k, v in total.items()}


def _plateau_scale(opt_state: Any) -> jax.Array:
    """The scale of the first reduce-on-plateau state inside ``opt_state``."""
    for node in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, ReduceOnPlateauState)):
        if isinstance(node, ReduceOnPlateauState):
            return node.lr_scale
    raise AssertionError("the engine appended reduce_on_plateau, but its state is missing")


def run_end(
    spec: Spec,
    guarded: bool,
    state: TrainState,
    key: jax.Array,
    hp: Any,
    data: Any,
    val_data: Any,
    order: jax.Array,
    clock: tuple[jax.Array, jax.Array],
    *,
    ema: EMA | None = None,
) -> tuple[TrainState, dict, jax.Array]:
    """The remainder batch, then the epoch's statistics and the stopping rules.

    Returns the new state, the statistics and, in the fast form, whether the remainder step
    may be kept (as for :func:`run_steps`). With ``ema`` validating, the validation sets,
    metrics and stopping rules see the weights' moving average (:mod:`gdjax.train.ema`)
    instead of the weights.
    """
    epoch_key = jax.random.fold_in(key, clock[0])
    ok = jnp.asarray(True)
    if spec.remainder:
        tail = order[spec.num_full * spec.batch_size :]
        sharding = spec.batch_sharding
        if sharding is not None and spec.remainder % sharding.mesh.shape[sharding.spec[0]]:
            sharding = None  # a remainder that does not split evenly stays whole on each device
        batch = take_rows(data, tail, sharding)
        state, ok = remainder_step(spec, guarded, state, batch, epoch_key, hp)
    state, stats = finish_epoch(spec, state, epoch_key, hp, val_data, ema)
    return state, stats, ok


def remainder_step(
    spec: Spec, guarded: bool, state: TrainState, batch: Any, epoch_key: jax.Array, hp: Any
) -> tuple[TrainState, jax.Array]:
    """The epoch's last, smaller batch; returns the state and whether it may be kept."""
    if guarded:
        return guarded_step(spec, state, batch, spec.remainder, epoch_key, hp), jnp.asarray(True)
    start = (state.params, state.opt_state, state.model_state)
    state, ok = fast_step(spec, state, batch, spec.remainder, epoch_key, hp)
    return state, ok & stays_finite(start, (state.params, state.opt_state, state.model_state))


def finish_epoch(
    spec: Spec,
    state: TrainState,
    epoch_key: jax.Array,
    hp: Any,
    val_data: Any,
    ema: EMA | None = None,
) -> tuple[TrainState, dict]:
    """After the epoch's last step: its statistics, validation and the stopping rules."""
    acc = state.acc
    count = acc["count"]
    mean = lambda total: jnp.where(count > 0, total / jnp.maximum(count, 1.0), jnp.nan)  # noqa: E731
    stats = {"loss": mean(acc["loss"]), "nonfinite_steps": acc["nonfinite_steps"]}
    for k, total in acc["aux"].items():
        stats[k] = mean(total)
    judged = state.params
    if ema is not None and ema.validate:
        judged = average_of(state.opt_state, state.params)
    if spec.val_sets:
        eval_key = jax.random.fold_in(epoch_key, 2**31 - 1)
        seen = state._replace(params=judged)
        for vdata, (name, val_n, eb) in zip(val_data, spec.val_sets, strict=True):
            stats.update(_evaluate(spec, seen, vdata, eval_key, hp, name, val_n, eb))
    if spec.diagnostics is not None:
        stats.update(diag_lib.finalize(spec.diagnostics, acc["diag"], list(spec.layer_names)))
    opt_state = state.opt_state
    scaling, opt_state = precision.end_of_epoch(opt_state)  # loss_scale, overflow_steps
    stats.update(scaling)
    if spec.plateau is not None:
        stats["lr_scale"] = _plateau_scale(opt_state)  # the scale this epoch trained with
        opt_state = observe_plateau(opt_state, stats[spec.plateau.monitor])
    if spec.record_steps:
        stats["step_loss"] = state.step_losses
    done = state.epoch + 1
    stop = update_stop_state(spec.stop, state.stop, stats, judged, state.model_state, done)
    stats["stopped"], stats["reason"] = stop.stopped, stop.reason
    state = state._replace(
        opt_state=opt_state,
        epoch=done,
        pos=jnp.zeros((), jnp.int32),
        acc=zero_acc(spec, state.params),
        stop=stop,
        step_losses=None
        if state.step_losses is None
        else jnp.full_like(state.step_losses, jnp.nan),
    )
    return state, stats
