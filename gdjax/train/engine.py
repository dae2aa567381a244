"""From a call's arguments to a ready :class:`~gdjax.train.driver.Run`: one pipeline for
``fit`` and ``sweep``.

options → checked inputs → cache lookup (or spec + programs) → data on the device → state
(fresh, or restored from a checkpoint) → run. ``fit`` and ``sweep`` differ only in their
:class:`Members` description: none for ``fit``; for a sweep, how many members there are,
whether they share one key, and how a member's parameters are made.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdjax import _checks, _recipes
from gdjax.train import data as data_lib
from gdjax.train import identity, precision, sources, streaming
from gdjax.train.driver import Run
from gdjax.train.ema import EMA
from gdjax.train.epoch import epoch_order, run_end, run_steps
from gdjax.train.multihost import put_replicated
from gdjax.train.options import TrainOptions
from gdjax.train.programs import Programs, programs_for
from gdjax.train.spec import Spec, abstract, build_spec, validation_sets
from gdjax.train.state import TrainState, init_state

#: Options that change what the programs compute (the others steer the driver).
PROGRAM_OPTIONS = (
    "batch_size",
    "eval_loss_fn",
    "eval_batch_size",
    "takes_key",
    "shuffle",
    "drop_last",
    "early_stopping",
    "tol",
    "reduce_on_plateau",
    "on_nonfinite",
    "diagnostics",
    "record_steps",
    "ema",
    "precision",
)


@dataclass(frozen=True)
class Members:
    """How a sweep's members differ (``fit`` has none).

    Attributes:
        count: Number of members.
        shared_key: All members use one key (so one data order).
        init_fn: ``key -> params`` per member, or ``None`` when all start from ``params``.
    """

    count: int
    shared_key: bool
    init_fn: Callable[[jax.Array], Any] | None = None


@dataclass(frozen=True)
class Optimizer:
    """The optimizer as the programs see it: a key, its numbers, and how to build it."""

    key: Any
    numbers: list
    build: Callable[[Any], optax.GradientTransformation]  # hp -> transformation


def optimizer_of(optimizer: Any, caller: str) -> Optimizer:
    """``fit``'s optimizer, or ``sweep``'s (a transformation or ``hparams -> transformation``)."""
    if isinstance(optimizer, optax.GradientTransformation):
        split = _recipes.split(optimizer)
        return Optimizer(split.key, split.numbers, lambda hp: split.rebuild(hp["optimizer"]))
    if caller == "sweep" and callable(optimizer):
        return Optimizer(
            ("function", _recipes.Opaque(optimizer)), [], lambda hp: optimizer(hp["member"])
        )
    expected = "an optax GradientTransformation (e.g. gdjax.adam(1e-3))"
    if caller == "sweep":
        expected += " or a function hparams -> GradientTransformation"
    raise TypeError(f"optimizer must be {expected}, got {type(optimizer).__name__}")


def as_params(params: Any, name: str = "params") -> Any:
    """Parameters as arrays: Python floats become NumPy scalars; integers and strings are
    refused (gradient descent needs floating-point parameters)."""

    def convert(x: Any) -> Any:
        if isinstance(x, float | complex) and not isinstance(x, bool):
            return np.asarray(x, np.float32 if isinstance(x, float) else np.complex64)
        return x

    params = jax.tree.map(convert, params)
    _checks.float_params(name, params)
    return params


def _program_key(options: TrainOptions) -> tuple:
    out = []
    for name in PROGRAM_OPTIONS:
        value = getattr(options, name)
        out.append(_recipes.Opaque(value) if callable(value) else value)
    metrics = tuple((k, _recipes.Opaque(f)) for k, f in (options.metrics or {}).items())
    return (*out, metrics)


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return (
        treedef,
        tuple((tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False))) for x in leaves),
    )


def _member_axes(members: Members | None) -> tuple:
    key_axis = None if members is None or members.shared_key else 0
    hp_axes = {"optimizer": None, "member": 0}
    return key_axis, hp_axes


def _freeze(fn: Callable) -> Callable:
    """Keep a stopped member's state as it was (its outputs are discarded, its stats NaN)."""

    def member(state, *rest):
        new, *stats, ok = fn(state, *rest)
        frozen = state.stop.stopped
        new = jax.tree.map(lambda a, b: jnp.where(frozen, b, a), new, state)
        stats = [
            {
                k: jnp.where(frozen, jnp.nan, x) if jnp.issubdtype(x.dtype, jnp.floating) else x
                for k, x in s.items()
            }
            for s in stats
        ]
        return new, *stats, ok | frozen

    return member


def _finite_leaves(tree: Any) -> jax.Array:
    """Per leaf of ``tree``: whether all its values are finite (integer leaves are)."""
    flags = [
        jnp.isfinite(x).all() if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.asarray(True)
        for x in jax.tree.leaves(tree)
    ]
    return jnp.stack(flags) if flags else jnp.ones((0,), bool)


def _refuse_non_finite(flags: Any, params_like: Any, model_state: Any) -> None:
    """Name the first parameter (or model state) array that holds NaN or inf."""
    flags = np.asarray(flags)
    ok = flags.all(axis=0) if flags.ndim == 2 else flags
    if ok.all():
        return
    names = [f"params{p}" for p in _checks.leaf_paths(params_like)]
    names += [f"model_state{p}" for p in _checks.leaf_paths(model_state)]
    bad = names[int(np.flatnonzero(~ok)[0])]
    raise ValueError(f"{bad} contains NaN or inf; initial parameters and state must be finite")


def _constrained(fn: Callable, sharding: Any) -> Callable:
    """``fn`` with its output laid out with ``sharding``."""

    def laid_out(*args):
        return jax.lax.with_sharding_constraint(fn(*args), sharding)

    return laid_out


def _make_programs(
    spec: Spec,
    members: Members | None,
    params: Any,
    model_state: Any,
    hp: Any,
    key: Any,
    data: Any,
    val: Any,
    place: Callable,
    sharding: Any = None,
    ema: EMA | None = None,
    stream: tuple[Any, int | None] | None = None,
    member_sharding: Any = None,
) -> Programs:
    """The programs of a run, as functions of arguments like these (abstract, placed with
    ``sharding`` when the run is replicated over a mesh; a sweep's state with
    ``member_sharding`` when its members are split over the mesh); ``ema`` is the run's
    weight average.

    ``stream`` is ``(tail, data_axis)`` for a streamed run: ``data`` is then one chunk of
    batches and ``tail`` the remainder batch (:mod:`gdjax.train.streaming`), and
    ``data_axis`` their members' axes when each member has its own order.
    """
    key_axis, hp_axes = _member_axes(members)
    steps_fn, end_fn, end_data, data_axis = run_steps, run_end, data, None
    if stream is not None:
        steps_fn, end_fn = streaming.steps_program, streaming.end_program
        end_data, data_axis = stream
    i32 = jax.ShapeDtypeStruct((), jnp.int32, sharding=sharding)
    clock = (i32, i32)

    if members is None:

        def init(p, ms, h, k):
            del k
            return init_state(spec, p, ms, h), _finite_leaves((p, ms))

        vm = lambda fn, axes: fn  # noqa: E731
    else:
        init_fn = members.init_fn

        def init_member(p, ms, h, k):
            p = init_fn(k) if init_fn is not None else p
            return init_state(spec, p, ms, h), _finite_leaves((p, ms))

        # members split over a mesh axis: constraints inside (the batch's) keep that split
        split = None if member_sharding is None else member_sharding.spec[0]
        init = jax.vmap(
            init_member,
            in_axes=(None, None, hp_axes, key_axis),
            axis_size=members.count,
            spmd_axis_name=split,
        )

        def vm(fn, axes):
            return jax.vmap(fn, in_axes=axes, axis_size=members.count, spmd_axis_name=split)

    init_args = (params, model_state, hp, key)
    state_like = abstract(jax.eval_shape(init, *init_args)[0], member_sharding or sharding)
    shared = (key_axis, hp_axes, data_axis)

    def pin(fn: Callable) -> Callable:
        """The state a program returns stays split over the members, where the next program
        expects it (XLA's propagation alone may choose otherwise)."""
        if member_sharding is None:
            return fn

        def pinned(*args):
            state, *rest = fn(*args)
            return jax.lax.with_sharding_constraint(state, member_sharding), *rest

        return pinned

    order_fn = functools.partial(epoch_order, spec)
    order_like = jax.ShapeDtypeStruct((spec.n,), jnp.int32, sharding=sharding)
    if members is not None and not members.shared_key:
        order_fn = vm(order_fn, (0, None))
        by_member = sharding if member_sharding is None else member_sharding
        order_like = jax.ShapeDtypeStruct((members.count, spec.n), jnp.int32, sharding=by_member)
        if member_sharding is not None:  # each member's order where its state is
            order_fn = _constrained(order_fn, member_sharding)
    order_axis = None if members is None or members.shared_key else 0

    def make(name: str) -> tuple:
        if name == "init":
            return pin(init), init_args, False
        if name == "order":
            return order_fn, (key, i32), False
        guarded = name.endswith("guarded")
        if name in ("steps", "steps_guarded"):
            fn = functools.partial(steps_fn, spec, guarded)
            if members is not None:
                fn = vm(_freeze(fn), (0, *shared, order_axis, None, None))
            return pin(fn), (state_like, key, hp, data, order_like, clock, i32), guarded
        if name in ("end", "end_guarded"):
            fn = functools.partial(end_fn, spec, guarded, ema=ema)
            if members is not None:
                fn = vm(_freeze(fn), (0, *shared, None, order_axis, None))
            return pin(fn), (state_like, key, hp, end_data, val, order_like, clock), guarded
        raise KeyError(name)

    return Programs(spec, make, place)


def start_run(
    *,
    caller: str,
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: Optimizer,
    data: Any,
    model_state: Any,
    options: TrainOptions,
    key: Any,
    member_hp: dict,
    members: Members | None,
    takes_hparams: bool = False,
    place: Callable[[Any], Any] = jax.device_put,
    placement_key: Any = None,
    batch_sharding: Any = None,
    replicated: Any = None,
    member_sharding: Any = None,
    desc: str = "fit",
) -> Run:
    """Check the inputs, find or build the programs, place the data, make or restore the state.

    ``place`` puts arrays where the run keeps them; ``replicated`` is their sharding when that
    is a mesh (``None``: the default device). ``member_sharding`` splits a sweep's members'
    axis (state, member hyperparameters, keys) over a mesh axis.
    """
    plateau = options.reduce_on_plateau
    source, layout = sources.as_source(data), None
    if source is not None:  # streamed: checks and traces see stand-in arrays of its layout
        layout = sources.probe(source)
        data = layout.stand_in()
    options = _load_validation_sources(options)
    policy = options.precision
    if policy is not None:  # mixed precision: float32 storage, the loss in policy.compute
        if params is not None:
            params = precision.cast_floats(params, policy.params)
        if members is not None and members.init_fn is not None:
            members = dataclasses.replace(
                members, init_fn=precision.cast_init(members.init_fn, policy)
            )
        loss_fn, eval_fn = precision.apply(
            policy, loss_fn, options.eval_loss_fn, model_state is not None
        )
        options = dataclasses.replace(options, eval_loss_fn=eval_fn)

    def build_optimizer(hp: Any) -> optax.GradientTransformation:
        opt = optimizer.build(hp)
        opt = optax.chain(opt, plateau.transform()) if plateau is not None else opt
        opt = precision.wrap_optimizer(policy, opt)
        return options.ema.wrap(opt) if options.ema is not None else opt  # outermost

    hp = {"optimizer": _recipes.as_inputs(optimizer.numbers), "member": member_hp}
    per_member_key = members is not None and not members.shared_key
    by_member = replicated if member_sharding is None else member_sharding
    sets = validation_sets(options.validation_data, data)
    val = tuple(v for _, v in sets) or None
    model_state = None if model_state is None else jax.tree.map(jnp.asarray, model_state)
    cache_key = (
        caller,
        _recipes.Opaque(loss_fn),
        _program_key(options),
        optimizer.key,
        _signature(params),
        _signature(model_state),
        _signature(data),
        tuple((name, _signature(v)) for name, v in sets),
        _signature(hp),
        _signature(key),  # the PRNG implementation is part of the key's dtype
        None
        if members is None
        else (members.count, members.shared_key, _recipes.Opaque(members.init_fn)),
        takes_hparams,
        placement_key,
        None if source is None else ("stream", options.stream_chunk_steps),
    )
    params_like = (
        jax.eval_shape(members.init_fn, key if members.shared_key else key[0])
        if members is not None and members.init_fn is not None
        else params
    )
    member_one = jax.tree.map(lambda a: a[0], hp["member"]) if members is not None else hp["member"]
    hp_one = {"optimizer": hp["optimizer"], "member": member_one}
    if member_sharding is not None:  # placed once, where the programs expect them
        hp = {"optimizer": place(hp["optimizer"]), "member": jax.device_put(member_hp, by_member)}
        key = jax.device_put(key, by_member if per_member_key else replicated)

    def create() -> Programs:
        spec = build_spec(
            loss_fn=loss_fn,
            params=params_like,
            model_state=model_state,
            optimizer_key=optimizer.key,
            make_optimizer=build_optimizer,
            hp=hp_one,
            data=data,
            options=options,
            takes_hparams=takes_hparams,
            batch_sharding=batch_sharding,
        )
        if members is None:
            _check_optimizer(build_optimizer(hp), params_like)
        data_like, stream = abstract(data, replicated), None
        if layout is not None:
            k = streaming.chunk_steps(spec, layout, options.stream_chunk_steps)
            per_member = members is not None and not members.shared_key
            data_like, tail = streaming.chunk_like(
                spec, layout, k, members.count if per_member else None
            )
            stream = (tail, (None, 0) if per_member else None)
        return _make_programs(
            spec,
            members,
            abstract(params, replicated),
            abstract(model_state, replicated),
            {
                "optimizer": abstract(hp["optimizer"], replicated),
                "member": abstract(hp["member"], by_member),
            },
            abstract(key, by_member if per_member_key else replicated),
            data_like,
            abstract(val, replicated),
            lambda consts: place(consts),
            replicated,
            options.ema,
            stream,
            member_sharding,
        )

    programs, _ = programs_for(cache_key, create)
    spec = programs.spec
    # Start compiling before the data moves: XLA works on other threads meanwhile. The steps
    # program takes longest, so it goes first.
    for name in ("steps", "end", "init", "order"):
        programs.get(name)
    stream = None
    if source is None:
        data_dev, prints = data_lib.put("data", data, place)
    else:
        per_member = members is not None and not members.shared_key
        k = streaming.chunk_steps(spec, layout, options.stream_chunk_steps)
        stream = streaming.Stream(source, layout, spec, k, key, per_member)
        data_dev, prints = None, stream.fingerprint()
    val_dev = None
    if val is not None:
        val_dev = []
        for name, v in sets:
            label = (
                "validation_data"
                if name == "val" and len(sets) == 1
                else f"validation_data[{name!r}]"
            )
            v_dev, p = data_lib.put(label, v, place)
            val_dev.append(v_dev)
            prints += p
        val_dev = tuple(val_dev)
    state, flags = programs.get("init")(params, model_state, hp, key)
    _refuse_non_finite(flags, params_like, model_state)
    run = Run(
        spec=spec,
        programs=programs,
        options=options,
        state=state,
        key=key,
        hp=hp,
        data=data_dev,
        val=val_dev,
        members=None if members is None else members.count,
        desc=desc,
        stream=stream,
    )
    if options.checkpoint_dir is not None:
        _open_checkpoints(run, params_like, model_state, data, val, prints)
    return run


def _load_validation_sources(options: TrainOptions) -> TrainOptions:
    """Validation data given as sources, read into memory (validation is not streamed)."""
    val = options.validation_data
    if sources.as_source(val) is not None:
        val = sources.load_all(sources.as_source(val), "validation_data")
    elif isinstance(val, dict) and any(sources.as_source(v) is not None for v in val.values()):
        val = {
            name: v
            if sources.as_source(v) is None
            else sources.load_all(sources.as_source(v), f"validation_data[{name!r}]")
            for name, v in val.items()
        }
    else:
        return options
    return dataclasses.replace(options, validation_data=val)


def _check_optimizer(opt: optax.GradientTransformation, params: Any) -> None:
    """Refuse an optimizer whose updates are the gradients themselves (``optax.chain()``):
    ``params + grads`` climbs the loss."""
    grads = abstract(params)
    try:
        state = jax.eval_shape(opt.init, grads)
        closed = jax.make_jaxpr(lambda g, s, p: opt.update(g, s, p)[0])(grads, state, grads)
    except Exception as err:
        err.add_note("raised by the optimizer's init or update on the parameters")
        raise
    n = len(jax.tree.leaves(grads))
    if n and list(closed.jaxpr.outvars) == list(closed.jaxpr.invars[:n]):
        raise ValueError(
            "the optimizer returns the gradients unchanged as updates, so training would "
            "climb the loss (params + grads); add a learning rate, e.g. gdjax.sgd(0.1) or "
            "optax.chain(..., optax.scale(-lr))"
        )


def _settings(options: TrainOptions) -> list:
    return [
        options.drop_last,
        options.shuffle,
        options.record_steps,
        options.on_nonfinite,
        repr(options.early_stopping),
        repr(options.reduce_on_plateau),
        options.tol,
        repr(options.diagnostics),
        options.takes_key,
        options.eval_batch_size,
        sorted(options.metrics or {}),
        *([repr(options.ema)] if options.ema is not None else []),
        repr(options.precision),
    ]


def _open_checkpoints(
    run: Run, params: Any, model_state: Any, data: Any, val: Any, prints: list[str]
) -> None:
    from gdjax.train.checkpoint import Checkpointer  # lazy: orbax is slow to import

    options = run.options
    fp = identity.fingerprint(
        run.spec,
        state=run.state,
        params=params,
        model_state=model_state,
        data=data,
        val=val,
        hp=run.hp,
        key=run.key if run.members is None or np.ndim(run.key) == 0 else run.key[0],
        data_prints=prints,
        settings=_settings(options),
    )
    ckpt = Checkpointer(options.checkpoint_dir, options.keep_checkpoints, fp)
    try:
        restored = ckpt.restore(run.state)
    except BaseException:
        ckpt.close()
        raise
    if restored is not None:
        state, history = restored
        done = int(np.max(np.asarray(state.epoch)))
        if done > options.epochs:
            ckpt.close()
            raise ValueError(
                f"checkpoint_dir {options.checkpoint_dir} holds a run that already completed "
                f"{done} epochs, more than epochs={options.epochs}; pass epochs >= {done} to "
                "continue it (or use another directory)"
            )
        run.state = put_replicated(state, jax.tree.map(lambda a: a.sharding, run.state))
        run.history = history
    run.checkpointer = ckpt


__all__ = ["Members", "Optimizer", "TrainState", "start_run"]
