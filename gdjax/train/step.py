"""One optimizer step, in the two forms the engine compiles.

A step computes the loss and its gradient on a batch, asks the optimizer for the updates and
applies them. What it may write — the new parameters, optimizer state and model state — must
be finite, and so must the loss; a step that breaks this is never applied. Two forms enforce
that at different costs:

- **fast** (:func:`fast_step`): applies every step and reports whether its loss was finite.
  A non-finite value written into the state stays non-finite (IEEE arithmetic propagates NaN
  and inf), so the chunk program checks the state once at its end against the state it
  started from; if the chunk had a non-finite loss or turned a finite value of the state
  non-finite, the driver throws the chunk's result away and runs the same chunk again from
  its start in the guarded form.
- **guarded** (:func:`guarded_step`): checks everything the step would write, and keeps the
  old state (a select) where a check fails, applying the ``on_nonfinite`` policy.

"Non-finite" for the state means a value that was finite and is not any more: states may hold
infinities on purpose (a best value not seen yet starts at ``inf``).

For finite steps the two compute the same values. The fast form costs nothing per step beyond
the step itself; the guarded form is compiled only when a run meets a non-finite step.

Bits of the ``bad_parts`` code in the stopping state, for messages: 1 the loss, 2 the
parameters, 4 the optimizer state, 8 the model state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax.train import diagnostics as diag_lib
from gdjax.train.precision import loss_scale_of
from gdjax.train.spec import Spec
from gdjax.train.state import TrainState

LOSS, PARAMS, OPT_STATE, MODEL_STATE = 1, 2, 4, 8
PART_NAMES = {
    LOSS: "the loss",
    PARAMS: "the parameters",
    OPT_STATE: "the optimizer state",
    MODEL_STATE: "the model state",
}


def stays_finite(old: Any, new: Any) -> jax.Array:
    """Whether no element of ``new`` is non-finite where ``old`` held a finite value.

    States may hold infinities on purpose (a best value not seen yet starts at ``inf``); what
    a step must not do is turn a finite value into NaN or inf.
    """
    groups: dict[Any, tuple[list, list]] = {}
    for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        if jnp.issubdtype(jnp.result_type(b), jnp.inexact):
            olds, news = groups.setdefault(jnp.result_type(b), ([], []))
            olds.append(jnp.ravel(a))
            news.append(jnp.ravel(b))
    # One check over all leaves of a dtype, not one per leaf: fewer operations for XLA to
    # compile (and a small fused kernel to run).
    checks = [
        (jnp.isfinite(jnp.concatenate(news)) | ~jnp.isfinite(jnp.concatenate(olds))).all()
        for olds, news in groups.values()
    ]
    return jnp.stack(checks).all() if checks else jnp.asarray(True)


def _compute(spec: Spec, state: TrainState, batch: Any, epoch_key: jax.Array, hp: Any):
    """Loss, gradients, aux, input gradient and the candidate new state of one step."""
    opt = spec.make_optimizer(hp)
    loss_hp = hp["member"]
    step_key = jax.random.fold_in(epoch_key, state.pos + 1)
    diag = spec.diagnostics
    want_input = diag is not None and diag.input_gradients
    # dynamic loss scaling (gdjax.train.precision): differentiate scale * loss, then unscale
    scale = loss_scale_of(state.opt_state)

    def loss_of(p, b):
        loss, ms, aux = spec.loss(p, state.model_state, b, step_key, loss_hp)
        return (loss if scale is None else loss * scale), (ms, aux, loss)

    if want_input:
        leaves, treedef = jax.tree.flatten(batch)

        def loss_of_input(p, x):
            parts = [*leaves[: diag.input_leaf], x, *leaves[diag.input_leaf + 1 :]]
            return loss_of(p, jax.tree.unflatten(treedef, parts))

        (_, (ms, aux, loss)), (grads, input_grad) = jax.value_and_grad(
            loss_of_input, argnums=(0, 1), has_aux=True
        )(state.params, leaves[diag.input_leaf])
    else:
        (_, (ms, aux, loss)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params, batch)
        input_grad = None
    if scale is not None:
        grads, input_grad = jax.tree.map(lambda g: g / scale.astype(g.dtype), (grads, input_grad))

    extra = {}
    if isinstance(opt, optax.GradientTransformationExtraArgs):
        # What second-order methods and line searches need (optax's names): the loss, the
        # gradient and the loss as a function of the parameters on this batch.
        extra = {
            "value": loss,
            "grad": grads,
            "value_fn": lambda p: spec.loss(p, state.model_state, batch, step_key, loss_hp)[0],
        }
    updates, opt_state = opt.update(grads, state.opt_state, state.params, **extra)
    params = optax.apply_updates(state.params, updates)
    return loss, grads, aux or {}, input_grad, updates, params, opt_state, ms


def _add_aux(spec: Spec, acc_aux: dict, aux: dict, weight: jax.Array) -> dict:
    out = {}
    for key, total in acc_aux.items():
        value = aux[key]
        if tuple(value.shape) != tuple(total.shape):
            raise ValueError(
                f"loss_fn aux entry {key!r} has shape {tuple(value.shape)} on a batch of "
                f"another size but {tuple(total.shape)} on full batches; aux entries are "
                "averaged per epoch, so their shape must not depend on the batch (reduce "
                "per-example values, e.g. with .mean())"
            )
        out[key] = total + jnp.real(value).astype(jnp.float32) * weight
    return out


def _record(spec: Spec, state: TrainState, loss32: jax.Array) -> Any:
    if state.step_losses is None:
        return None
    return state.step_losses.at[state.pos].set(loss32)


def fast_step(
    spec: Spec, state: TrainState, batch: Any, n: int, epoch_key: jax.Array, hp: Any
) -> tuple[TrainState, jax.Array]:
    """Apply one step on a batch of ``n`` examples; also return whether its loss was finite."""
    loss, grads, aux, input_grad, updates, params, opt_state, ms = _compute(
        spec, state, batch, epoch_key, hp
    )
    loss32 = loss.astype(jnp.float32)
    acc = dict(state.acc)
    acc["loss"] = acc["loss"] + loss32 * n
    acc["count"] = acc["count"] + n
    acc["aux"] = _add_aux(spec, acc["aux"], aux, jnp.float32(n))
    if spec.diagnostics is not None:
        acc["diag"] = diag_lib.accumulate(
            spec.diagnostics, acc["diag"], grads, updates, state.params, input_grad, n
        )
    new = state._replace(
        params=params,
        opt_state=opt_state,
        model_state=ms,
        step=state.step + 1,
        pos=state.pos + 1,
        acc=acc,
        step_losses=_record(spec, state, loss32),
    )
    return new, jnp.isfinite(loss32)


def guarded_step(
    spec: Spec, state: TrainState, batch: Any, n: int, epoch_key: jax.Array, hp: Any
) -> TrainState:
    """One step that is applied only if everything it writes is finite (``on_nonfinite``)."""
    loss, grads, aux, input_grad, updates, params, opt_state, ms = _compute(
        spec, state, batch, epoch_key, hp
    )
    loss32 = loss.astype(jnp.float32)
    parts = (
        jnp.where(jnp.isfinite(loss32), 0, LOSS)
        | jnp.where(stays_finite(state.params, params), 0, PARAMS)
        | jnp.where(stays_finite(state.opt_state, opt_state), 0, OPT_STATE)
        | jnp.where(stays_finite(state.model_state, ms), 0, MODEL_STATE)
    ).astype(jnp.int32)
    stop = state.stop
    finite = parts == 0
    ok = finite & ~stop.halted
    # A select, not lax.cond: XLA fuses it into the update's own loops.
    new = (params, opt_state, ms, updates)
    old = (state.params, state.opt_state, state.model_state, jax.tree.map(jnp.zeros_like, updates))
    params, opt_state, ms, updates = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)

    acc = dict(state.acc)
    weight = jnp.where(ok, jnp.float32(n), 0.0)
    acc["loss"] = acc["loss"] + jnp.where(ok, loss32, 0.0) * n
    acc["count"] = acc["count"] + weight
    counted = ~finite & ~stop.halted
    acc["nonfinite_steps"] = acc["nonfinite_steps"] + counted.astype(jnp.int32)
    safe_aux = jax.tree.map(lambda v: jnp.where(ok, v, jnp.zeros_like(v)), aux)
    acc["aux"] = _add_aux(spec, acc["aux"], safe_aux, weight)
    if spec.diagnostics is not None:
        acc["diag"] = diag_lib.accumulate(
            spec.diagnostics, acc["diag"], grads, updates, state.params, input_grad, n
        )
    first = counted & (stop.bad_step < 0)
    halted = stop.halted | (~finite if spec.stop.on_nonfinite != "skip" else False)
    stop = stop._replace(
        halted=halted,
        bad_step=jnp.where(first, state.step, stop.bad_step),
        bad_parts=jnp.where(first, parts, stop.bad_parts),
    )
    step_losses = None
    if state.step_losses is not None:
        # a step after the run halted (on_nonfinite="stop") is not run: NaN, like later epochs
        step_losses = _record(spec, state, jnp.where(state.stop.halted, jnp.nan, loss32))
    return state._replace(
        params=params,
        opt_state=opt_state,
        model_state=ms,
        step=state.step + 1,
        pos=state.pos + 1,
        acc=acc,
        stop=stop,
        step_losses=step_losses,
    )
