"""The compiled training program: a chunk of steps of one epoch, and the end of the epoch.

One call of :func:`run_chunk` shuffles on the device (a permutation drawn from the run key and
the epoch number), runs the steps with ``lax.scan`` (each step gathers its batch rows from the
resident data by index, or, with ``gather="epoch"``, the chunk's batches are gathered at once) and,
on the last chunk of an epoch, the remainder batch, validation, metrics, diagnostics and the
stopping rules. Without step checkpoints an epoch is a single chunk, so a single program.

Randomness is a pure function of ``(key, epoch, position in epoch)``: the permutation uses
``permutation(fold_in(fold_in(key, epoch), 0), n)`` (:func:`gdjax.train.shuffle.permutation`,
which needs no sort) and step ``i`` of the epoch passes
``fold_in(fold_in(key, epoch), i + 1)`` to the loss, so a resumed run draws the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax.train import diagnostics as diag_lib
from gdjax.train.loss_call import LossCall, scalar_aux
from gdjax.train.shuffle import permutation
from gdjax.train.stopping import StopConfig, StopState, init_stop_state, update_stop_state

#: Keys of the per-epoch statistics that are control flow, not history.
CONTROL_KEYS = ("stopped", "reason")


@dataclass(frozen=True)
class EngineSpec:
    """Static description of a training run: everything the compiled program is built from."""

    loss: LossCall
    eval_loss: LossCall
    make_optimizer: Callable[[Any], optax.GradientTransformation]
    n: int
    batch_size: int
    epochs_hint: int = 1
    drop_last: bool = False
    shuffle: bool = True
    metrics: tuple[tuple[str, Callable[..., Any]], ...] = ()
    #: ``(name, N, eval batch size)`` of each validation set, in the order of ``val_data``
    val_sets: tuple[tuple[str, int, int], ...] = ()
    stop: StopConfig = field(default_factory=StopConfig)
    diagnostics: diag_lib.Diagnostics | None = None
    layer_names: tuple[str, ...] = ()
    input_shape: tuple[int, ...] = ()
    record_steps: bool = False
    gather: Literal["epoch", "step"] = "step"
    batch_sharding: Any = None  # PartitionSpec-carrying NamedSharding for a batch, or None

    @property
    def num_full(self) -> int:
        """Number of full batches per epoch."""
        return self.n // self.batch_size

    @property
    def remainder(self) -> int:
        """Size of the last, smaller batch (0 when there is none or it is dropped)."""
        return 0 if self.drop_last else self.n % self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch."""
        return self.num_full + (self.remainder > 0)


class TrainState(NamedTuple):
    """Everything that evolves during training (a pytree of arrays; checkpointed as is)."""

    params: Any
    opt_state: Any
    model_state: Any
    epoch: jax.Array  # epochs completed
    step: jax.Array  # steps run since the start (skipped ones included)
    pos: jax.Array  # index of the next step within the current epoch
    acc: dict  # running sums of the current epoch
    stop: StopState
    step_losses: Any  # (steps_per_epoch,) losses of the current epoch, or None


def _zero_acc(spec: EngineSpec, params: Any, aux_keys: tuple[str, ...]) -> dict:
    acc = {
        "loss": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "nonfinite_steps": jnp.zeros((), jnp.int32),
        "aux": {k: jnp.zeros((), jnp.float32) for k in aux_keys},
    }
    if spec.diagnostics is not None:
        acc["diag"] = diag_lib.init_accumulator(spec.diagnostics, params, spec.input_shape)
    return acc


def aux_keys_of(spec: EngineSpec, params: Any, model_state: Any, batch: Any, hp: Any) -> tuple:
    """Names of the scalar ``aux`` entries the loss returns (found by abstract evaluation)."""

    def f(p, ms, b):
        return scalar_aux(spec.loss(p, ms, b, jax.random.key(0), hp)[2])

    return tuple(sorted(jax.eval_shape(f, params, model_state, batch)))


def init_state(
    spec: EngineSpec, params: Any, model_state: Any, hp: Any, aux_keys: tuple[str, ...]
) -> TrainState:
    """Fresh training state; copies ``params`` so that donating it never touches the caller's."""
    params = jax.tree.map(jnp.array, params)
    model_state = jax.tree.map(jnp.array, model_state)
    # copy: an init may return one buffer for two leaves, which donation would reject
    opt_state = jax.tree.map(jnp.array, spec.make_optimizer(hp).init(params))
    step_losses = (
        jnp.full((spec.steps_per_epoch,), jnp.nan, jnp.float32) if spec.record_steps else None
    )
    return TrainState(
        params=params,
        opt_state=opt_state,
        model_state=model_state,
        epoch=jnp.zeros((), jnp.int32),
        step=jnp.zeros((), jnp.int32),
        pos=jnp.zeros((), jnp.int32),
        acc=_zero_acc(spec, params, aux_keys),
        stop=init_stop_state(spec.stop, params, model_state),
        step_losses=step_losses,
    )


def _constrain(tree: Any, sharding: Any) -> Any:
    if sharding is None:
        return tree
    explicit = any(t == jax.sharding.AxisType.Explicit for t in sharding.mesh.axis_types)
    move = jax.sharding.reshard if explicit else jax.lax.with_sharding_constraint
    return jax.tree.map(lambda a: move(a, sharding), tree)


def _all_finite(tree: Any) -> jax.Array:
    """Whether every element of every leaf is finite (a scalar bool)."""
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.asarray(True)


def _train_step(
    spec: EngineSpec, state: TrainState, batch: Any, n: int, epoch_key: jax.Array, hp: Any
) -> TrainState:
    """One optimizer step on a batch of ``n`` examples, with the non-finite policy applied."""
    opt = spec.make_optimizer(hp)
    step_key = jax.random.fold_in(epoch_key, state.pos + 1)
    diag = spec.diagnostics
    want_input = diag is not None and diag.input_gradients

    if want_input:
        leaves, treedef = jax.tree.flatten(batch)

        def loss_of(p, x):
            b = jax.tree.unflatten(
                treedef, [*leaves[: diag.input_leaf], x, *leaves[diag.input_leaf + 1 :]]
            )
            loss, ms, aux = spec.loss(p, state.model_state, b, step_key, hp)
            return loss, (ms, aux)

        (loss, (ms, aux)), (grads, input_grad) = jax.value_and_grad(
            loss_of, argnums=(0, 1), has_aux=True
        )(state.params, leaves[diag.input_leaf])
    else:

        def loss_of(p):
            loss, ms, aux = spec.loss(p, state.model_state, batch, step_key, hp)
            return loss, (ms, aux)

        (loss, (ms, aux)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        input_grad = None

    finite = jnp.isfinite(loss) & _all_finite(grads)
    ok = finite & ~state.stop.halted

    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    if spec.stop.reduce_on_plateau is not None:
        scale = state.stop.lr_scale
        updates = jax.tree.map(lambda u: u * scale.astype(u.dtype), updates)
    # A skipped step keeps the old state. A select, not lax.cond: XLA fuses it into the update's
    # own loops, while a conditional cost ~40 us per step on a CPU (3x a batch-1 SGD epoch).
    new = (optax.apply_updates(state.params, updates), opt_state, ms, updates)
    old = (state.params, state.opt_state, state.model_state, jax.tree.map(jnp.zeros_like, updates))
    params, opt_state, ms, updates = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)

    acc = dict(state.acc)
    w = jnp.where(ok, jnp.float32(n), 0.0)
    acc["loss"] = acc["loss"] + jnp.where(ok, loss.astype(jnp.float32), 0.0) * n
    acc["count"] = acc["count"] + w
    acc["nonfinite_steps"] = acc["nonfinite_steps"] + (~finite).astype(jnp.int32)
    aux = scalar_aux(aux)
    acc["aux"] = {
        k: v + jnp.where(ok, aux[k].astype(jnp.float32), 0.0) * n for k, v in acc["aux"].items()
    }
    if diag is not None:
        acc["diag"] = diag_lib.accumulate(
            diag, acc["diag"], grads, updates, state.params, input_grad, n
        )
    step_losses = state.step_losses
    if step_losses is not None:
        # a step after the run halted (on_nonfinite="stop") is not run: NaN, like later epochs
        run_loss = jnp.where(state.stop.halted, jnp.nan, loss.astype(jnp.float32))
        step_losses = step_losses.at[state.pos].set(run_loss)
    halted = state.stop.halted
    if spec.stop.on_nonfinite != "skip":
        halted = halted | ~finite
    return state._replace(
        params=params,
        opt_state=opt_state,
        model_state=ms,
        step=state.step + 1,
        pos=state.pos + 1,
        acc=acc,
        stop=state.stop._replace(halted=halted),
        step_losses=step_losses,
    )


def _take(data: Any, idx: jax.Array) -> Any:
    return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)


def _evaluate(
    spec: EngineSpec,
    state: TrainState,
    val_data: Any,
    key: jax.Array,
    hp: Any,
    name: str,
    val_n: int,
    eb: int,
):
    """Weighted means of the loss and metrics over the whole validation set ``name``."""
    nfull, rem = val_n // eb, val_n % eb

    def sums(batch: Any, n: int) -> dict:
        loss, _, _ = spec.eval_loss(state.params, state.model_state, batch, key, hp)
        out = {f"{name}_loss": loss.astype(jnp.float32) * n}
        for metric, fn in spec.metrics:
            args = (
                (state.params, state.model_state, batch)
                if spec.eval_loss.has_state
                else (state.params, batch)
            )
            out[f"{name}_{metric}"] = jnp.asarray(fn(*args), jnp.float32) * n
        return out

    total = None
    if nfull:
        xs = jax.tree.map(lambda a: a[: nfull * eb].reshape(nfull, eb, *a.shape[1:]), val_data)

        def body(carry, batch):
            s = sums(batch, eb)
            return jax.tree.map(jnp.add, carry, s), None

        zero = jax.tree.map(
            jnp.zeros_like, jax.eval_shape(sums, jax.tree.map(lambda a: a[0], xs), eb)
        )
        total, _ = jax.lax.scan(body, zero, xs)
    if rem:
        tail = sums(jax.tree.map(lambda a: a[nfull * eb :], val_data), rem)
        total = tail if total is None else jax.tree.map(jnp.add, total, tail)
    return {k: v / val_n for k, v in total.items()}


def _end_epoch(
    spec: EngineSpec, state: TrainState, val_data: Any, epoch_key: jax.Array, hp: Any
) -> tuple[TrainState, dict]:
    acc = state.acc
    count = acc["count"]
    stats = {
        "loss": jnp.where(count > 0, acc["loss"] / jnp.maximum(count, 1.0), jnp.nan),
        "nonfinite_steps": acc["nonfinite_steps"],
    }
    for k, v in acc["aux"].items():
        stats[k] = jnp.where(count > 0, v / jnp.maximum(count, 1.0), jnp.nan)
    if spec.val_sets:
        eval_key = jax.random.fold_in(epoch_key, 2**31 - 1)
        for data, (name, val_n, eb) in zip(val_data, spec.val_sets, strict=True):
            stats.update(_evaluate(spec, state, data, eval_key, hp, name, val_n, eb))
    if spec.diagnostics is not None:
        stats.update(diag_lib.finalize(spec.diagnostics, acc["diag"], list(spec.layer_names)))
    if spec.stop.reduce_on_plateau is not None:
        stats["lr_scale"] = state.stop.lr_scale
    if spec.record_steps:
        stats["step_loss"] = state.step_losses
    epoch = state.epoch + 1
    stop = update_stop_state(spec.stop, state.stop, stats, state.params, state.model_state, epoch)
    stats["stopped"], stats["reason"] = stop.stopped, stop.reason
    state = state._replace(
        epoch=epoch,
        pos=jnp.zeros((), jnp.int32),
        acc=_zero_acc(spec, state.params, tuple(acc["aux"])),
        stop=stop,
        step_losses=None
        if state.step_losses is None
        else jnp.full_like(state.step_losses, jnp.nan),
    )
    return state, stats


def run_chunk(
    spec: EngineSpec,
    num_full: int,
    finish: bool,
    state: TrainState,
    key: jax.Array,
    hp: Any,
    data: Any,
    val_data: Any,
    clock: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[TrainState, dict]:
    """Run ``num_full`` full batches from ``state.pos`` on; with ``finish``, end the epoch.

    ``num_full`` and ``finish`` are static (one compiled program per distinct pair). A sweep
    passes ``clock = (epoch, pos)`` shared by all members, so that with a shared key the
    permutation and the gathered batches are computed once, not once per member.
    """
    bs = spec.batch_size
    epoch, pos = clock if clock is not None else (state.epoch, state.pos)
    epoch_key = jax.random.fold_in(key, epoch)
    perm = (
        permutation(jax.random.fold_in(epoch_key, 0), spec.n)
        if spec.shuffle
        else jnp.arange(spec.n)
    )
    sharding = spec.batch_sharding

    if num_full:
        idx = jax.lax.dynamic_slice(perm, (pos * bs,), (num_full * bs,))
        idx = idx.reshape(num_full, bs)
        if spec.gather == "epoch":
            xs = _take(data, idx.reshape(-1))
            xs = jax.tree.map(lambda a: a.reshape(num_full, bs, *a.shape[1:]), xs)
            if sharding is not None:
                xs = _constrain(xs, sharding["stacked"])

            def body(s, batch):
                return _train_step(spec, s, batch, bs, epoch_key, hp), None
        else:
            xs = idx

            def body(s, ix):
                batch = _constrain(_take(data, ix), sharding and sharding["batch"])
                return _train_step(spec, s, batch, bs, epoch_key, hp), None

        # unroll=2 measured ~10-20% faster on a 2-core CPU for long epochs; short chunks are
        # not worth the extra compile time.
        state, _ = jax.lax.scan(body, state, xs, unroll=2 if num_full >= 16 else 1)
    stats: dict = {}
    if finish:
        if spec.remainder:
            tail = _take(data, perm[spec.num_full * bs :])
            state = _train_step(spec, state, tail, spec.remainder, epoch_key, hp)
        state, stats = _end_epoch(spec, state, val_data, epoch_key, hp)
    return state, stats


def chunk_plan(
    spec: EngineSpec, pos: int, every_steps: int | Sequence[int | None] | None
) -> list[tuple[int, bool]]:
    """The ``(num_full, finish)`` chunks that take an epoch from step ``pos`` to its end.

    Chunks break at the multiples within the epoch of ``every_steps`` (one period, or several:
    step checkpoints and progress updates), so a run resumed from a step checkpoint runs exactly
    the programs an uninterrupted run would. Splitting an epoch does not change its results.
    """
    periods = every_steps if isinstance(every_steps, Sequence) else (every_steps,)
    periods = tuple(p for p in periods if p)
    nf = spec.num_full
    if not periods:
        return [(nf - pos, True)]
    plan = []
    while pos < nf:
        nxt = min(min((pos // p + 1) * p for p in periods), nf)
        plan.append((nxt - pos, False))
        pos = nxt
    if plan and not spec.remainder:
        plan[-1] = (plan[-1][0], True)
    else:
        plan.append((0, True))
    return plan
