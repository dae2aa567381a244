"""``gdjax.sweep``: train many configurations at once, one vmapped program per batch size."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdjax import _checks
from gdjax.train import history as hist
from gdjax.train.callbacks import Hooks
from gdjax.train.driver import drive, nonfinite_message
from gdjax.train.ema import average_of
from gdjax.train.engine import Members, as_params, optimizer_of, start_run
from gdjax.train.multihost import sweep_placement
from gdjax.train.options import make_options, with_option_signature
from gdjax.train.stopping import REASONS


@dataclass
class SweepResult:
    """What ``sweep`` returns; every array has the members on its first axis.

    Attributes:
        params: Trained parameters, each leaf of shape ``(M, ...)`` (best epoch's under
            ``EarlyStopping(restore_best=True)``).
        opt_state: Final optimizer states, stacked.
        model_state: Final model states, stacked (``None`` without one).
        history: ``{key: array (M, epochs, ...)}``; epochs after a member stopped are NaN.
        hparams: The members' hyperparameters, ``{name: array (M,)}`` (``batch_size``
            included when swept).
        seeds: The members' seeds, shape ``(M,)``.
        epochs_run: Epochs each member completed, shape ``(M,)``.
        stop_reason: Why each member stopped early (``None`` if it ran all epochs).
        epoch_seconds: Wall-clock seconds of each epoch of each batch-size group's program
            (``{batch_size: array}``; the first epoch includes XLA's compilation, unless an
            earlier call compiled the same program; tracing is done before the clock starts).
        ema_params: With ``ema=``, the members' final moving averages of the weights (leaves
            of shape ``(M, ...)``), else ``None``.
    """

    params: Any
    opt_state: Any
    model_state: Any
    history: dict[str, np.ndarray]
    hparams: dict[str, np.ndarray]
    seeds: np.ndarray
    epochs_run: np.ndarray
    stop_reason: list[str | None]
    epoch_seconds: dict[int, np.ndarray] | None = None
    ema_params: Any = None

    def member(self, i: int) -> dict[str, Any]:
        """Parameters, history and hyperparameters of member ``i``."""
        return {
            "params": jax.tree.map(lambda a: a[i], self.params),
            "history": {k: a[i] for k, a in self.history.items()},
            "hparams": {k: a[i] for k, a in self.hparams.items()},
            "seed": int(self.seeds[i]),
        }


def grid(**axes: Sequence[Any]) -> dict[str, np.ndarray]:
    """All combinations of the given values, as ``hparams`` for :func:`sweep`.

    Examples:
        >>> import gdjax
        >>> hp = gdjax.grid(learning_rate=[0.1, 0.01], momentum=[0.0, 0.9])
        >>> hp["learning_rate"].tolist(), hp["momentum"].tolist()
        ([0.1, 0.1, 0.01, 0.01], [0.0, 0.9, 0.0, 0.9])
    """
    names = list(axes)
    combos = list(itertools.product(*(list(axes[n]) for n in names)))
    return {n: np.asarray([c[i] for c in combos]) for i, n in enumerate(names)}


def _members(hparams: Mapping[str, Any], seeds: Any) -> tuple[int, dict[str, np.ndarray], Any]:
    sizes = set()
    hp = {}
    for name, value in hparams.items():
        arr = np.asarray(value)
        if arr.ndim > 1:
            raise ValueError(f"hparams[{name!r}] must be a scalar or 1-D array, got {arr.shape}")
        if arr.ndim == 1:
            sizes.add(arr.shape[0])
        hp[name] = arr
    seeds_arr = np.asarray(seeds)
    if not np.issubdtype(seeds_arr.dtype, np.integer) or seeds_arr.ndim > 1:
        raise TypeError(f"seeds must be an int or a 1-D array of ints, got {seeds!r}")
    if seeds_arr.ndim == 1:
        sizes.add(seeds_arr.shape[0])
    if len(sizes) > 1:
        raise ValueError(
            f"hparams and seeds must have one common length (the number of members); got "
            f"lengths {sorted(sizes)}"
        )
    m = sizes.pop() if sizes else 1
    if m == 0:
        raise ValueError("sweep needs at least one member")
    hp = {k: np.broadcast_to(a, (m,)).copy() for k, a in hp.items()}
    return m, hp, seeds_arr


@with_option_signature
def sweep(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: optax.GradientTransformation | Callable[[dict], optax.GradientTransformation],
    data: Any,
    *,
    hparams: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] | np.ndarray = 0,
    model_state: Any = None,
    loss_takes_hparams: bool = False,
    mesh: jax.sharding.Mesh | None = None,
    member_axis: str | None = None,
    data_axis: str | None = None,
    **options: Any,
) -> SweepResult:
    """Train M configurations in one compiled, vmapped program (one per distinct batch size).

    Member ``i`` is exactly the run::

        fit(loss_fn, params_i, optimizer(hparams_i), data, batch_size=batch_size_i,
            key=jax.random.key(seeds_i), ...)

    with ``hparams_i = {name: hparams[name][i]}`` (hyperparameters reach the optimizer as
    traced scalars, so one program serves every value) and ``params_i = params`` or, when
    ``params`` is a function, ``params(jax.random.key(seeds_i))``. With a single ``int`` seed
    all members share it, and so the data order: the shuffled data is then gathered once for
    all members. ``hparams["batch_size"]`` (Python ints) may vary per member: members are
    grouped by batch size, each group is one program, and results come back in member order.
    A member that stops (early stopping, a non-finite step) is frozen while the others go on.

    Args:
        loss_fn: Loss, with ``fit``'s signatures; with ``loss_takes_hparams=True`` it also gets
            ``hparams=`` (a dict of the member's scalars), e.g. for a dropout rate.
        params: Initial parameters shared by all members, or ``init(key) -> params``.
        optimizer: ``optimizer(hparams) -> GradientTransformation``, or one transformation
            shared by all members.
        data: Training data, shared by all members.
        hparams: ``{name: values}``; each value a 1-D array of length M or a scalar.
        seeds: One int for all members, or M ints.
        model_state: Initial model state shared by all members (see :func:`gdjax.fit`).
        loss_takes_hparams: Pass ``hparams=`` to the loss.
        mesh: A ``jax.sharding.Mesh`` to spread the members over: each member's state lives
            on the devices of one slice of ``member_axis`` (each batch-size group's number of
            members must be a multiple of that axis's size); the data is replicated.
        member_axis: Mesh axis of the members (default: the mesh's first axis).
        data_axis: Another mesh axis to split each batch over, data-parallel within every
            member (``batch_size`` a multiple of its size); default: none.
        **options: The training options of :class:`gdjax.TrainOptions`, as for
            :func:`gdjax.fit` (``batch_size`` is the batch size when ``hparams`` has no
            ``batch_size`` entry). With ``checkpoint_dir``, each batch-size group keeps its
            checkpoints in a subdirectory ``batch_size_<b>``.

    Returns:
        A :class:`SweepResult`.

    Examples:
        >>> import jax, jax.numpy as jnp, optax, gdjax
        >>> x = jnp.linspace(-1, 1, 32)[:, None]; y = 2 * x[:, 0]
        >>> def loss(p, batch):
        ...     xb, yb = batch
        ...     return jnp.mean((xb[:, 0] * p - yb) ** 2)
        >>> res = gdjax.sweep(loss, jnp.zeros(()), lambda hp: optax.sgd(hp["lr"]), (x, y),
        ...                   hparams={"lr": jnp.array([0.01, 0.1, 1.0])}, batch_size=8,
        ...                   epochs=5)
        >>> res.history["loss"].shape
        (3, 5)
    """
    opts = make_options("sweep", options)
    _checks.flag("loss_takes_hparams", loss_takes_hparams)
    hparams = dict(hparams or {})
    m, hp_all, seeds_arr = _members(hparams, seeds)
    opt = optimizer_of(optimizer, "sweep")
    sizes = hp_all.pop("batch_size", None)
    if sizes is not None:
        if not np.issubdtype(sizes.dtype, np.integer):
            raise TypeError(f"hparams['batch_size'] must hold ints, got {sizes.dtype}")
        groups = {int(b): np.flatnonzero(sizes == b) for b in dict.fromkeys(sizes.tolist())}
    else:
        groups = {opts.batch_size: np.arange(m)}
    hp_jnp = {
        k: jnp.asarray(a, jnp.float32 if np.issubdtype(a.dtype, np.floating) else None)
        for k, a in hp_all.items()
    }
    shared_key = seeds_arr.ndim == 0
    keys = (
        jax.random.key(int(seeds_arr))
        if shared_key
        else jax.vmap(jax.random.key)(jnp.asarray(seeds_arr))
    )
    init_fn = params if callable(params) else None
    if init_fn is None:
        params = as_params(params)

    hooks = Hooks(opts.callbacks, "sweep", opts.epochs, len(groups)) if opts.callbacks else None
    placement = sweep_placement(mesh, member_axis, data_axis, data, groups)
    results = []
    for bs, idx in groups.items():
        group_opts = dataclasses.replace(
            opts,
            batch_size=bs,
            checkpoint_dir=None
            if opts.checkpoint_dir is None
            else Path(opts.checkpoint_dir) / f"batch_size_{bs}",
        )
        run = start_run(
            caller="sweep",
            loss_fn=loss_fn,
            params=None if init_fn is not None else params,
            optimizer=opt,
            data=data,
            model_state=model_state,
            options=group_opts,
            key=keys if shared_key else keys[idx],
            member_hp={k: a[idx] for k, a in hp_jnp.items()},
            members=Members(len(idx), shared_key, init_fn),
            takes_hparams=loss_takes_hparams,
            desc="sweep",
            **placement,
        )
        if hooks is not None:
            hp_group = {k: a[idx] for k, a in hp_all.items()}
            hooks.program(
                idx, hp_group if sizes is None else {**hp_group, "batch_size": sizes[idx]}
            )
        try:
            drive(run, opts.epochs, hooks=hooks)
        finally:
            if run.checkpointer is not None:
                run.checkpointer.close()
        results.append((idx, run))
    return _assemble(results, m, hparams, sizes, seeds_arr)


def _pad(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.full(shape, np.nan if np.issubdtype(a.dtype, np.floating) else 0, a.dtype)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out


def _best(state: Any, spec: Any) -> tuple[Any, Any]:
    """Each member's parameters and model state: the best epoch's under restore_best."""
    stop = state.stop
    params, model_state = state.params, state.model_state
    es = spec.stop.early_stopping
    if es is None or not es.restore_best:
        return params, model_state
    has_best = stop.best_epoch > 0

    def pick(best, cur):
        mask = has_best.reshape((-1,) + (1,) * (cur.ndim - 1))
        return jnp.where(mask, best, cur)

    return (
        jax.tree.map(pick, stop.best_params, params),
        jax.tree.map(pick, stop.best_model_state, model_state),
    )


def _assemble(results, m, hparams, sizes, seeds_arr) -> SweepResult:
    groups, warned = [], []
    for idx, run in results:
        state, spec = run.state, run.spec
        stop = state.stop
        params, model_state = _best(state, spec)
        reasons = [
            REASONS[int(r)] if bool(s) else run.stop_request
            for r, s in zip(np.asarray(stop.reason), np.asarray(stop.stopped), strict=True)
        ]
        detail = nonfinite_message(stop, spec, len(idx))
        if detail is not None:
            warned.append(f"batch size {spec.batch_size}: {detail}")
        history = hist.stack(run.history, member_axis=True)
        epochs = np.asarray(state.epoch)
        ema = average_of(state.opt_state, state.params)
        groups.append((idx, params, state.opt_state, model_state, history, epochs, reasons, ema))
    if warned:
        warnings.warn(
            "some members met non-finite steps, which were not applied (under "
            "on_nonfinite='stop' such a member keeps its state from before the step): "
            + "; ".join(warned),
            RuntimeWarning,
            stacklevel=3,
        )

    def scatter(trees):
        def leaf(*xs):
            first = np.asarray(xs[0])
            out = np.zeros((m, *first.shape[1:]), first.dtype)
            for (idx, *_), x in zip(groups, xs, strict=True):
                out[idx] = np.asarray(x)
            return jnp.asarray(out)

        return jax.tree.map(leaf, *trees)

    history = {}
    for k in groups[0][4]:
        arrs = [g[4][k] for g in groups]
        shape = (m, *np.max([a.shape[1:] for a in arrs], axis=0).tolist())
        out = (
            np.full(shape, np.nan, arrs[0].dtype)
            if np.issubdtype(arrs[0].dtype, np.floating)
            else np.zeros(shape, arrs[0].dtype)
        )
        for (idx, *_), a in zip(groups, arrs, strict=True):
            out[idx] = _pad(a, (len(idx), *shape[1:]))
        history[k] = out
    epochs_run = np.zeros(m, np.int32)
    reasons: list[str | None] = [None] * m
    for idx, *_, ep, rs, _ in groups:
        epochs_run[idx] = ep
        for i, r in zip(idx, rs, strict=True):
            reasons[i] = r
    hp_out = {k: np.broadcast_to(np.asarray(val), (m,)).copy() for k, val in hparams.items()}
    if sizes is not None:
        hp_out["batch_size"] = sizes
    has_state = results[0][1].spec.loss.has_state
    return SweepResult(
        params=scatter([g[1] for g in groups]),
        opt_state=scatter([g[2] for g in groups]),
        model_state=scatter([g[3] for g in groups]) if has_state else None,
        history=history,
        hparams=hp_out,
        seeds=np.broadcast_to(seeds_arr, (m,)).copy(),
        epochs_run=epochs_run,
        stop_reason=reasons,
        epoch_seconds={int(r.spec.batch_size): np.asarray(r.epoch_seconds) for _, r in results},
        ema_params=None if groups[0][7] is None else scatter([g[7] for g in groups]),
    )


__all__ = ["SweepResult", "grid", "sweep"]
