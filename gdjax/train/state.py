"""The training state: everything that evolves during a run, as one pytree of arrays.

It is what the compiled programs take and return, what a checkpoint holds, and, in a sweep,
what is stacked along the members' axis.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gdjax.train import diagnostics as diag_lib
from gdjax.train.spec import Spec
from gdjax.train.stopping import StopState, init_stop_state


class TrainState(NamedTuple):
    """Everything that evolves during training (a pytree of arrays; checkpointed as is).

    Attributes:
        params: The parameters.
        opt_state: The optimizer state.
        model_state: The model state (batch-norm statistics), or ``None``.
        epoch: Epochs completed.
        step: Steps run since the start (skipped ones included).
        pos: Index of the next step within the current epoch.
        acc: Running sums of the current epoch (loss, examples, aux entries, diagnostics).
        stop: State of the stopping rules.
        step_losses: Losses of the current epoch's steps (``record_steps``), or ``None``.
    """

    params: Any
    opt_state: Any
    model_state: Any
    epoch: jax.Array
    step: jax.Array
    pos: jax.Array
    acc: dict
    stop: StopState
    step_losses: Any


def zero_acc(spec: Spec, params: Any) -> dict:
    """The running sums at the start of an epoch."""
    acc = {
        "loss": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "nonfinite_steps": jnp.zeros((), jnp.int32),
        "aux": {k: jnp.zeros(shape, jnp.float32) for k, shape in spec.aux},
    }
    if spec.diagnostics is not None:
        acc["diag"] = diag_lib.init_accumulator(spec.diagnostics, params, spec.input_shape)
    return acc


def init_state(spec: Spec, params: Any, model_state: Any, hp: Any) -> TrainState:
    """A fresh training state (a pure function: the engine compiles it).

    Every array is a new buffer — the guarded programs donate the state, and neither
    the caller's parameters nor one buffer shared by two leaves may be donated.
    """
    params = jax.tree.map(lambda x: jnp.array(x, copy=True), params)
    model_state = jax.tree.map(lambda x: jnp.array(x, copy=True), model_state)
    opt_state = spec.make_optimizer(hp).init(params)
    opt_state = jax.tree.map(lambda x: jnp.array(x, copy=True), opt_state)
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
        acc=zero_acc(spec, params),
        stop=init_stop_state(spec.stop, params, model_state),
        step_losses=step_losses,
    )
