"""Turn the arguments of ``fit``/``sweep`` into a checked :class:`EngineSpec`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax.train import validate as v
from gdjax.train.diagnostics import Diagnostics, layer_names
from gdjax.train.epoch import EngineSpec, aux_keys_of
from gdjax.train.loss_call import LossCall
from gdjax.train.stopping import EarlyStopping, ReduceOnPlateau, StopConfig

RESERVED = ("loss", "val_loss", "nonfinite_steps", "lr_scale", "step_loss", "stopped", "reason")


def _abstract_batch(data: Any, size: int) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((size, *a.shape[1:]), a.dtype), data)


def probe_loss(
    call: LossCall, params: Any, model_state: Any, data: Any, size: int, hp: Any
) -> None:
    """Evaluate the loss abstractly on a batch; raise a clear error if it cannot run."""
    batch = _abstract_batch(data, size)

    def probe(p, ms, b):
        return call(p, ms, b, jax.random.key(0), hp)

    try:
        loss, new_state, _ = jax.eval_shape(probe, params, model_state, batch)
    except (TypeError, ValueError) as err:
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(
            f"{call.name} failed on a batch of {v.describe_batch(batch)} — check that the data "
            f"(and labels' dtype and shape) match what {call.name} expects: {err}"
        ) from err
    v.check_loss_output(loss, new_state, model_state, call.name)


def probe_metrics(
    metrics: Mapping[str, Callable[..., Any]],
    params: Any,
    model_state: Any,
    data: Any,
    size: int,
) -> None:
    """Evaluate each metric abstractly on a validation batch; it must return a real scalar."""
    batch = _abstract_batch(data, size)
    for name, fn in metrics.items():
        args = (params, model_state, batch) if model_state is not None else (params, batch)
        signature = (
            "fn(params, model_state, batch)" if model_state is not None else "fn(params, batch)"
        )
        try:
            out = jax.eval_shape(fn, *args)
        except (TypeError, ValueError) as err:
            kind = TypeError if isinstance(err, TypeError) else ValueError
            raise kind(
                f"metrics[{name!r}] failed when called as {signature} on a batch of "
                f"{v.describe_batch(batch)}: {err}"
            ) from err
        shape = getattr(out, "shape", None)
        if shape is None or not hasattr(out, "dtype"):
            raise TypeError(
                f"metrics[{name!r}] must return a scalar array (the mean over the batch), got "
                f"{type(out).__name__}"
            )
        if shape != ():
            raise ValueError(
                f"metrics[{name!r}] must return a scalar (the mean over the batch), got shape "
                f"{shape}; did you forget .mean()?"
            )
        real = jnp.issubdtype(out.dtype, jnp.floating) or jnp.issubdtype(out.dtype, jnp.integer)
        if not (real or jnp.issubdtype(out.dtype, jnp.bool_)):
            raise TypeError(f"metrics[{name!r}] must return a real number, got dtype {out.dtype}")


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


def validation_sets(validation_data: Any, data: Any) -> tuple[tuple[str, Any], ...]:
    """``validation_data`` as named sets: ``(("val", data),)`` or the items of a dict of sets.

    A dict whose tree structure differs from the training data's is a dict of named sets
    ``{name: data}``; anything else is one set, named ``"val"``. Each set's history keys are
    ``<name>_loss`` and ``<name>_<metric>``.
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
        if name != "val" and f"{name}_loss" in RESERVED:
            raise ValueError(
                f"validation_data name {name!r} would record {name}_loss, which is reserved"
            )
    return tuple(validation_data.items())


def validation_arrays(validation_data: Any, data: Any) -> tuple | None:
    """The validation sets as the compiled programs take them: a tuple in the spec's order."""
    sets = validation_sets(validation_data, data)
    return tuple(val for _, val in sets) if sets else None


def build_spec(
    *,
    loss_fn: Callable[..., Any],
    params: Any,
    make_optimizer: Callable[[Any], optax.GradientTransformation],
    hp: Any,
    data: Any,
    batch_size: int | None,
    epochs: int,
    validation_data: Any,
    metrics: Mapping[str, Callable[..., Any]] | None,
    eval_loss_fn: Callable[..., Any] | None,
    eval_batch_size: int | None,
    model_state: Any,
    takes_key: bool,
    takes_hparams: bool,
    shuffle: bool,
    drop_last: bool,
    early_stopping: EarlyStopping | None,
    tol: float | None,
    reduce_on_plateau: ReduceOnPlateau | None,
    on_nonfinite: str,
    diagnostics: bool | Diagnostics | None,
    record_steps: bool,
    gather: str = "step",
    batch_sharding: Any = None,
) -> tuple[EngineSpec, tuple[str, ...]]:
    """Check every argument and build the engine's static description.

    Returns:
        The spec and the names of the loss's scalar ``aux`` entries.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    n = v.check_data(data, "data")
    bs = v.check_batch_size(batch_size, n)
    v.check_positive_int(epochs, "epochs")
    v.check_choice(on_nonfinite, "on_nonfinite", ("stop", "skip", "raise"))
    if drop_last and n // bs == 0:
        raise ValueError("drop_last=True with batch_size > N leaves no batch to train on")
    if tol is not None and not (isinstance(tol, int | float) and tol >= 0):
        raise ValueError(f"tol must be a number >= 0 or None, got {tol!r}")
    for name, rule, cls in (
        ("early_stopping", early_stopping, EarlyStopping),
        ("reduce_on_plateau", reduce_on_plateau, ReduceOnPlateau),
    ):
        if rule is not None and not isinstance(rule, cls):
            raise TypeError(f"{name} must be a gdjax.{cls.__name__} or None, got {rule!r}")
    if diagnostics is True:
        diagnostics = Diagnostics()
    elif diagnostics is False:
        diagnostics = None
    elif diagnostics is not None and not isinstance(diagnostics, Diagnostics):
        raise TypeError(f"diagnostics must be a bool or gdjax.Diagnostics, got {diagnostics!r}")
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        if not isinstance(name, str) or not callable(fn):
            raise TypeError("metrics must map names (str) to functions fn(params, batch)")
    if metrics and validation_data is None:
        raise ValueError("metrics are computed on validation_data; pass validation_data too")

    has_state = model_state is not None
    call = LossCall(loss_fn, has_state, takes_key, takes_hparams, "loss_fn")
    eval_call = LossCall(
        eval_loss_fn or loss_fn,
        has_state,
        takes_key,
        takes_hparams,
        "eval_loss_fn" if eval_loss_fn else "loss_fn",
    )
    if eval_loss_fn is not None and not callable(eval_loss_fn):
        raise TypeError("eval_loss_fn must be callable or None")

    val_sets = []
    for name, val in validation_sets(validation_data, data):
        label = "validation_data" if val is validation_data else f"validation_data[{name!r}]"
        val_n = v.check_data(val, label)
        v.check_same_layout(val, data, label)
        if eval_batch_size is not None:
            ebs = v.check_batch_size(eval_batch_size, val_n, "eval_batch_size")
        else:
            ebs = min(val_n, max(bs, 1024))
        val_sets.append((name, val, val_n, ebs))

    input_shape: tuple[int, ...] = ()
    if diagnostics is not None:
        diagnostics, input_shape = _resolve_input_gradients(diagnostics, data)

    # Abstract evaluation: errors in loss_fn, the optimizer or metrics surface here, uncompiled.
    probe_loss(call, params, model_state, data, bs, hp)
    for _, val, _, ebs in val_sets:
        probe_loss(eval_call, params, model_state, val, ebs, hp)
        probe_metrics(metrics, params, model_state, val, ebs)
    try:
        jax.eval_shape(lambda p, h: make_optimizer(h).init(p), params, hp)
    except (TypeError, ValueError) as err:
        raise type(err)(f"optimizer.init failed on params: {err}") from err

    v.check_choice(gather, "gather", ("step", "epoch"))
    spec = EngineSpec(
        loss=call,
        eval_loss=eval_call,
        make_optimizer=make_optimizer,
        n=n,
        batch_size=bs,
        epochs_hint=epochs,
        drop_last=bool(drop_last),
        shuffle=bool(shuffle),
        metrics=tuple(metrics.items()),
        val_sets=tuple((name, n, ebs) for name, _, n, ebs in val_sets),
        stop=StopConfig(early_stopping, reduce_on_plateau, tol, on_nonfinite),
        diagnostics=diagnostics,
        layer_names=tuple(layer_names(params)),
        input_shape=input_shape,
        record_steps=bool(record_steps),
        gather=gather,
        batch_sharding=batch_sharding,
    )
    aux_keys = aux_keys_of(spec, params, model_state, _abstract_batch(data, bs), hp)
    prefixes = ("val_", *(f"{name}_" for name, *_ in val_sets))
    clash = [k for k in aux_keys if k in RESERVED or k.startswith(prefixes)]
    if clash:
        raise ValueError(f"loss_fn aux entries {clash} clash with history keys; rename them")
    known = {"loss", *aux_keys}
    for name, *_ in val_sets:
        known |= {f"{name}_loss", *(f"{name}_{m}" for m in metrics)}
    for rule, name in (
        (early_stopping, "early_stopping"),
        (reduce_on_plateau, "reduce_on_plateau"),
    ):
        if rule is not None and rule.monitor not in known:
            raise ValueError(
                f"{name}.monitor={rule.monitor!r} is not recorded; available: {sorted(known)}"
                + ("" if val_sets else " (pass validation_data to monitor val_* keys)")
            )
    return spec, aux_keys
