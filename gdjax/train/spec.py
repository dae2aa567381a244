"""A run's static description: everything its compiled programs are built from.

:func:`build_spec` checks the arguments that need the data's shapes (batch size against N,
validation sets' layouts, monitored keys) and evaluates the loss abstractly once — errors in
the loss surface here, named, before anything is compiled. A :class:`Spec` is hashable: equal
specs build equal programs, which is what the program cache keys on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.train import history as hist
from gdjax.train.diagnostics import Diagnostics, layer_names
from gdjax.train.loss_call import LossCall
from gdjax.train.options import TrainOptions
from gdjax.train.stopping import ReduceOnPlateau, StopConfig


@dataclass(frozen=True)
class Spec:
    """Static description of a run (hashable; the functions are compared by identity).

    ``make_optimizer(hp)`` builds the optimizer from the numbers the programs receive: ``hp``
    is ``{"optimizer": [...], "member": {...}}`` — the optimizer's own numbers (its recipe,
    see ``gdjax/_recipes.py``) and, in a sweep, the member's hyperparameters.
    """

    loss: LossCall
    eval_loss: LossCall
    optimizer_key: Any
    n: int
    batch_size: int
    #: ``(name, shape)`` of each aux entry of the loss, sorted by name
    aux: tuple[tuple[str, tuple[int, ...]], ...]
    drop_last: bool = False
    shuffle: bool = True
    metrics: tuple[tuple[str, Callable[..., Any]], ...] = ()
    #: ``(name, N, eval batch size)`` of each validation set, in the order of ``val_data``
    val_sets: tuple[tuple[str, int, int], ...] = ()
    stop: StopConfig = field(default_factory=StopConfig)
    plateau: ReduceOnPlateau | None = None
    diagnostics: Diagnostics | None = None
    layer_names: tuple[str, ...] = ()
    input_shape: tuple[int, ...] = ()
    record_steps: bool = False
    batch_sharding: Any = None  # NamedSharding of one batch, or None
    make_optimizer: Callable[[Any], optax.GradientTransformation] = field(
        default=None, compare=False, hash=False
    )

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


def validation_sets(validation_data: Any, data: Any) -> tuple[tuple[str, Any], ...]:
    """``validation_data`` as named sets: ``(("val", data),)`` or the items of a dict of sets.

    A dict whose tree structure differs from the training data's is a dict of named sets
    ``{name: data}``; anything else is one set, named ``"val"``.
    """
    if validation_data is None:
        return ()
    if not (
        isinstance(validation_data, Mapping)
        and jax.tree.structure(validation_data) != jax.tree.structure(data)
    ):
        return (("val", validation_data),)
    if not validation_data:
        raise ValueError("validation_data is an empty dict; pass None for no validation")
    for name in validation_data:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"validation_data names must be identifiers (they prefix history keys, e.g. "
                f"'test' -> 'test_loss'); got {name!r}"
            )
    return tuple(validation_data.items())


def abstract(tree: Any, sharding: Any = None) -> Any:
    """Shapes and dtypes of ``tree``'s leaves (what a program is specialised to), placed with
    ``sharding`` when given."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=_weak(x), sharding=sharding),
        tree,
    )


def _weak(x: Any) -> bool:
    return bool(getattr(x, "weak_type", False))


def abstract_batch(data: Any, size: int) -> Any:
    """A batch of ``size`` examples of ``data``, abstractly."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((size, *a.shape[1:]), a.dtype), data)


def describe_batch(batch: Any) -> str:
    """``path: shape dtype`` for every leaf, for error messages."""
    return ", ".join(
        f"batch{p}: {tuple(x.shape)} {x.dtype}"
        for p, x in zip(_checks.leaf_paths(batch), jax.tree.leaves(batch), strict=True)
    )


def _resolve_input_gradients(
    diagnostics: Diagnostics, data: Any
) -> tuple[Diagnostics, tuple[int, ...]]:
    """Decide whether input gradients are recorded; return the settled rule and feature shape.

    ``input_gradients=None`` means "when the input is floating-point": integer inputs such as
    token ids have no gradient and are left out instead of failing.
    """
    if diagnostics.input_gradients is False:
        return diagnostics, ()
    leaves = jax.tree.leaves(data)
    if not 0 <= diagnostics.input_leaf < len(leaves):
        raise ValueError(
            f"Diagnostics.input_leaf={diagnostics.input_leaf} is out of range for a batch "
            f"with {len(leaves)} arrays"
        )
    x = leaves[diagnostics.input_leaf]
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if diagnostics.input_gradients is None:
        return dataclasses.replace(diagnostics, input_gradients=floating), (
            tuple(x.shape[1:]) if floating else ()
        )
    if not floating:
        raise TypeError(
            f"Diagnostics(input_gradients=True) needs a floating-point input; batch leaf "
            f"{diagnostics.input_leaf} has dtype {x.dtype} (token ids and other integer inputs "
            "have no gradient: set input_leaf, or input_gradients=None or False)"
        )
    return diagnostics, tuple(x.shape[1:])


def check_loss_output(loss: Any, new_state: Any, old_state: Any, name: str) -> None:
    """The loss is a float scalar array, and the model state keeps its layout."""
    if loss.shape != ():
        raise ValueError(
            f"{name} must return a scalar loss (the mean over the batch), got shape "
            f"{loss.shape}; did you forget .mean()?"
        )
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise TypeError(f"{name} must return a floating-point loss, got dtype {loss.dtype}")
    old = jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), old_state)
    new = jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), new_state)
    if jax.tree.structure(old) != jax.tree.structure(new) or jax.tree.leaves(
        old
    ) != jax.tree.leaves(new):
        raise ValueError(
            f"{name} must return a new model state with the layout of model_state; "
            f"got {new}, expected {old}"
        )


def probe_loss(
    call: LossCall, params: Any, model_state: Any, batch: Any, hp: Any
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Evaluate the loss abstractly on ``batch``; return the names and shapes of its aux.

    A loss that fails gets an error naming it and the batch it was given.
    """

    def probe(p, ms, b, k):
        return call(p, ms, b, k, hp)

    key = jax.eval_shape(jax.random.key, 0)
    try:
        loss, new_state, aux = jax.eval_shape(probe, params, model_state, batch, key)
    except (TypeError, ValueError) as err:
        if str(err).startswith(call.name):  # the engine's own check of what it returned
            raise
        raise type(err)(
            f"{call.name} failed on a batch of {describe_batch(batch)} — check that the data "
            f"(and labels' dtype and shape) match what {call.name} expects: {err}"
        ) from err
    except Exception as err:
        err.add_note(f"raised by {call.name} on a batch of {describe_batch(batch)}")
        raise
    check_loss_output(loss, new_state, model_state, call.name)
    return tuple(sorted((k, tuple(v.shape)) for k, v in aux.items()))


def build_spec(
    *,
    loss_fn: Callable[..., Any],
    params: Any,
    model_state: Any,
    optimizer_key: Any,
    make_optimizer: Callable[[Any], optax.GradientTransformation],
    hp: Any,
    data: Any,
    options: TrainOptions,
    takes_hparams: bool = False,
    batch_sharding: Any = None,
) -> Spec:
    """Check what needs the data's shapes and build the run's :class:`Spec`.

    ``params``, ``model_state``, ``data`` and ``hp`` may be abstract (shapes and dtypes).
    """
    _checks.function("loss_fn", loss_fn)
    n = _checks.data_set("data", data)
    bs = _checks.batch_size("batch_size", options.batch_size, n)
    if options.drop_last and n // bs == 0:
        raise ValueError("drop_last=True with batch_size > N leaves no batch to train on")
    metrics = dict(options.metrics or {})
    if metrics and options.validation_data is None:
        raise ValueError("metrics are computed on validation_data; pass validation_data too")

    has_state = model_state is not None
    call = LossCall(loss_fn, has_state, options.takes_key, takes_hparams, "loss_fn")
    eval_fn = options.eval_loss_fn or loss_fn
    eval_name = "eval_loss_fn" if options.eval_loss_fn else "loss_fn"
    eval_call = LossCall(eval_fn, has_state, options.takes_key, takes_hparams, eval_name)

    val_sets = []
    for name, val in validation_sets(options.validation_data, data):
        label = "validation_data" if name == "val" else f"validation_data[{name!r}]"
        val_n = _checks.data_set(label, val)
        _checks.same_layout(label, val, data)
        if options.eval_batch_size is not None:
            ebs = _checks.batch_size("eval_batch_size", options.eval_batch_size, val_n)
        else:
            ebs = min(val_n, max(bs, 1024))
        val_sets.append((name, val_n, ebs))

    diagnostics, input_shape = options.diagnostics_rule, ()
    if diagnostics is not None:
        diagnostics, input_shape = _resolve_input_gradients(diagnostics, data)

    aux = probe_loss(call, params, model_state, abstract_batch(data, bs), hp["member"])
    aux_keys = [k for k, _ in aux]
    hist.check_names(aux_keys, [name for name, *_ in val_sets], list(metrics))

    known = {"loss", *aux_keys, *hist.validation_keys([s[0] for s in val_sets], metrics)}
    for rule, name in (
        (options.early_stopping, "early_stopping"),
        (options.reduce_on_plateau, "reduce_on_plateau"),
    ):
        if rule is not None and rule.monitor not in known:
            raise ValueError(
                f"{name}.monitor={rule.monitor!r} is not recorded; available: {sorted(known)}"
                + ("" if val_sets else " (pass validation_data to monitor val_* keys)")
            )
    stop = StopConfig(options.early_stopping, options.tol, options.on_nonfinite)
    return Spec(
        loss=call,
        eval_loss=eval_call,
        optimizer_key=optimizer_key,
        n=n,
        batch_size=bs,
        aux=aux,
        drop_last=options.drop_last,
        shuffle=options.shuffle,
        metrics=tuple(metrics.items()),
        val_sets=tuple(val_sets),
        stop=stop,
        plateau=options.reduce_on_plateau,
        diagnostics=diagnostics,
        layer_names=tuple(layer_names(params)),
        input_shape=input_shape,
        record_steps=options.record_steps,
        batch_sharding=batch_sharding,
        make_optimizer=make_optimizer,
    )
