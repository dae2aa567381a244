"""``gdjax.sweep``: train many configurations at once, one vmapped program per batch size."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gdjax.train.diagnostics import Diagnostics
from gdjax.train.epoch import CONTROL_KEYS, chunk_plan, init_state
from gdjax.train.fit import append_stats
from gdjax.train.programs import Programs
from gdjax.train.progress import Progress, running_loss
from gdjax.train.setup import build_spec, validation_arrays
from gdjax.train.stopping import REASONS, EarlyStopping, ReduceOnPlateau
from gdjax.train.validate import check_positive_int


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

    Example:
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


def sweep(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: optax.GradientTransformation | Callable[[dict], optax.GradientTransformation],
    data: Any,
    *,
    hparams: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] | np.ndarray = 0,
    batch_size: int | None,
    epochs: int,
    validation_data: Any = None,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    eval_loss_fn: Callable[..., Any] | None = None,
    eval_batch_size: int | None = None,
    model_state: Any = None,
    takes_key: bool = False,
    loss_takes_hparams: bool = False,
    shuffle: bool = True,
    drop_last: bool = False,
    early_stopping: EarlyStopping | None = None,
    tol: float | None = None,
    reduce_on_plateau: ReduceOnPlateau | None = None,
    on_nonfinite: Literal["stop", "skip"] = "stop",
    diagnostics: bool | Diagnostics | None = None,
    record_steps: bool = False,
    progress: bool = False,
    progress_every_steps: int | None = None,
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
    Other arguments are those of :func:`gdjax.fit`.

    Args:
        loss_fn: Loss, with ``fit``'s signatures; with ``loss_takes_hparams=True`` it also gets
            ``hparams=`` (a dict of the member's scalars), e.g. for a dropout rate.
        params: Initial parameters shared by all members, or ``init(key) -> params``.
        optimizer: ``optimizer(hparams) -> GradientTransformation``, or one transformation
            shared by all members.
        data: Training data, shared by all members.
        hparams: ``{name: values}``; each value a 1-D array of length M or a scalar.
        seeds: One int for all members, or M ints.
        batch_size: The batch size when ``hparams`` has no ``batch_size`` entry.
        epochs: Epochs per member.
        validation_data: See :func:`gdjax.fit`.
        metrics: See :func:`gdjax.fit`.
        eval_loss_fn: See :func:`gdjax.fit`.
        eval_batch_size: See :func:`gdjax.fit`.
        model_state: See :func:`gdjax.fit` (shared initial state).
        takes_key: See :func:`gdjax.fit`.
        loss_takes_hparams: Pass ``hparams=`` to the loss.
        shuffle: See :func:`gdjax.fit`.
        drop_last: See :func:`gdjax.fit`.
        early_stopping: Applied to each member separately; a stopped member is frozen.
        tol: See :func:`gdjax.fit`.
        reduce_on_plateau: See :func:`gdjax.fit`.
        on_nonfinite: ``"stop"`` (freeze that member) or ``"skip"``.
        diagnostics: See :func:`gdjax.fit`.
        record_steps: See :func:`gdjax.fit` (``step_loss`` padded with NaN across batch sizes).
        progress: Show a progress bar (see :func:`gdjax.fit`; the loss is the members' mean
            and examples per second count every member's examples).
        progress_every_steps: See :func:`gdjax.fit`.

    Returns:
        A :class:`SweepResult`.

    Example:
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
    if progress_every_steps is not None:
        check_positive_int(progress_every_steps, "progress_every_steps")
    if on_nonfinite not in ("stop", "skip"):
        raise ValueError(f"on_nonfinite must be 'stop' or 'skip' in a sweep, got {on_nonfinite!r}")
    hparams = dict(hparams or {})
    m, hp_all, seeds_arr = _members(hparams, seeds)
    if isinstance(optimizer, optax.GradientTransformation):
        fixed = optimizer
        make_opt = lambda _hp: fixed  # noqa: E731
    elif callable(optimizer):
        make_opt = optimizer
    else:
        raise TypeError("optimizer must be a GradientTransformation or hparams -> one")
    sizes = hp_all.pop("batch_size", None)
    if sizes is not None:
        if not np.issubdtype(sizes.dtype, np.integer):
            raise TypeError(f"hparams['batch_size'] must hold ints, got {sizes.dtype}")
        groups = {int(b): np.flatnonzero(sizes == b) for b in dict.fromkeys(sizes.tolist())}
    else:
        groups = {batch_size: np.arange(m)}
    hp_jnp = {
        k: jnp.asarray(a, jnp.float32 if np.issubdtype(a.dtype, np.floating) else None)
        for k, a in hp_all.items()
    }
    # vmap needs one batched input: without hyperparameters, give each member its own copy of
    # the key (same values, so the same run as with a shared key).
    shared_key = seeds_arr.ndim == 0 and bool(hp_jnp)
    keys = (
        jax.random.key(int(seeds_arr))
        if shared_key
        else jax.vmap(jax.random.key)(jnp.broadcast_to(jnp.asarray(seeds_arr), (m,)))
    )
    init_fn = params if callable(params) else None
    one_key = keys if shared_key else keys[0]
    # abstract: checking the arguments needs shapes only (an eager init compiles op by op)
    params_one = jax.eval_shape(init_fn, one_key) if init_fn else params

    results = []
    for bs, idx in groups.items():
        hp_g = {k: a[idx] for k, a in hp_jnp.items()}
        keys_g = keys if shared_key else keys[idx]
        hp_one = {k: a[0] for k, a in hp_g.items()}
        spec, aux_keys = build_spec(
            loss_fn=loss_fn,
            params=params_one,
            make_optimizer=make_opt,
            hp=hp_one,
            data=data,
            batch_size=bs,
            epochs=epochs,
            validation_data=validation_data,
            metrics=metrics,
            eval_loss_fn=eval_loss_fn,
            eval_batch_size=eval_batch_size,
            model_state=model_state,
            takes_key=takes_key,
            takes_hparams=loss_takes_hparams,
            shuffle=shuffle,
            drop_last=drop_last,
            early_stopping=early_stopping,
            tol=tol,
            reduce_on_plateau=reduce_on_plateau,
            on_nonfinite=on_nonfinite,
            diagnostics=diagnostics,
            record_steps=record_steps,
        )
        results.append(
            (
                idx,
                _run_group(
                    spec,
                    aux_keys,
                    init_fn,
                    params,
                    model_state,
                    keys_g,
                    shared_key,
                    hp_g,
                    data,
                    validation_data,
                    epochs,
                    progress,
                    progress_every_steps,
                ),
            )
        )
    return _assemble(results, m, hparams, sizes, seeds_arr, spec.loss.has_state)


def _run_group(
    spec,
    aux_keys,
    init_fn,
    params,
    model_state,
    keys,
    shared_key,
    hp,
    data,
    val,
    epochs,
    progress,
    progress_every_steps,
):
    key_axis = None if shared_key else 0

    def init_member(key, h):
        p = init_fn(key) if init_fn else params
        return init_state(spec, p, model_state, h, aux_keys)

    state = jax.jit(jax.vmap(init_member, in_axes=(key_axis, 0)))(keys, hp)

    def wrap(fn):
        def member(s, key, h, d, vd, clock):
            new, stats = fn(s, key, h, d, vd, clock)
            frozen = s.stop.stopped
            new = jax.tree.map(lambda a, b: jnp.where(frozen, b, a), new, s)
            stats = {
                k: (jnp.where(frozen, jnp.nan, x) if jnp.issubdtype(x.dtype, jnp.floating) else x)
                for k, x in stats.items()
            }
            return new, stats

        return jax.vmap(member, in_axes=(0, key_axis, 0, None, None, None))

    programs = Programs(spec, wrap)
    data, val = jax.device_put(data), jax.device_put(validation_arrays(val, data))
    history: dict[str, list] = {}
    members = len(jax.tree.leaves(hp)[0]) if hp else len(keys)
    bar = Progress(bool(progress), epochs, spec.steps_per_epoch, desc="sweep")
    every = progress_every_steps if progress else None
    zero = jnp.zeros((), jnp.int32)
    # Trace the programs (and find them compiled, when an earlier call compiled them) before
    # the first epoch's clock starts.
    for num_full, finish in chunk_plan(spec, 0, every):
        programs(num_full, finish).prepare(state, keys, hp, data, val, (zero, zero))
    seconds = []
    try:
        for epoch in range(epochs):
            stats = {}
            t0 = time.perf_counter()
            pos = 0
            for num_full, finish in chunk_plan(spec, 0, every):
                clock = (jnp.asarray(epoch, jnp.int32), jnp.asarray(pos, jnp.int32))
                state, stats = programs(num_full, finish)(state, keys, hp, data, val, clock)
                pos += num_full
                if not finish and bar.enabled:
                    loss = {"loss": running_loss(state.acc)}
                    bar.update(num_full, members * num_full * spec.batch_size, epoch + 1, loss)
            stats = jax.device_get(stats)
            seconds.append(time.perf_counter() - t0)
            append_stats(history, stats)
            bar.update(
                num_full + (spec.remainder > 0),
                members * (num_full * spec.batch_size + spec.remainder),
                epoch + 1,
                stats_mean(stats),
            )
            if bool(np.all(stats["stopped"])):
                break
    finally:
        bar.close()
    return spec, state, history, np.asarray(seconds)


def stats_mean(stats: dict) -> dict:
    """Mean over members of the losses, for the progress bar."""
    out = {}
    for k in ("loss", "val_loss"):
        if k in stats:
            x = np.asarray(stats[k])
            out[k] = np.float32(x[np.isfinite(x)].mean()) if np.isfinite(x).any() else np.nan
    return out


def _pad(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.full(shape, np.nan if np.issubdtype(a.dtype, np.floating) else 0, a.dtype)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out


def _assemble(results, m, hparams, sizes, seeds_arr, has_state) -> SweepResult:
    per_group = []
    for idx, (spec, state, history, _) in results:
        stop = state.stop
        params, model_state = state.params, state.model_state
        es = spec.stop.early_stopping
        if es is not None and es.restore_best:
            has_best = stop.best_epoch > 0

            def pick(best, cur, has_best=has_best):
                mask = has_best.reshape((-1,) + (1,) * (cur.ndim - 1))
                return jnp.where(mask, best, cur)

            params = jax.tree.map(pick, stop.best_params, params)
            model_state = jax.tree.map(pick, stop.best_model_state, model_state)
        hist = {
            k: np.swapaxes(np.stack(vals), 0, 1)
            for k, vals in history.items()
            if k not in CONTROL_KEYS
        }
        reasons = [
            REASONS[int(r)] if bool(s) else None
            for r, s in zip(np.asarray(stop.reason), np.asarray(stop.stopped), strict=True)
        ]
        per_group.append(
            (idx, params, state.opt_state, model_state, hist, np.asarray(state.epoch), reasons)
        )

    def scatter(trees):
        def leaf(*xs):
            first = np.asarray(xs[0])
            out = np.zeros((m, *first.shape[1:]), first.dtype)
            for (idx, *_), x in zip(per_group, xs, strict=True):
                out[idx] = np.asarray(x)
            return jnp.asarray(out)

        return jax.tree.map(leaf, *trees)

    keys = per_group[0][4].keys()
    history = {}
    for k in keys:
        arrs = [g[4][k] for g in per_group]
        shape = (m, *np.max([a.shape[1:] for a in arrs], axis=0).tolist())
        out = (
            np.full(shape, np.nan, arrs[0].dtype)
            if np.issubdtype(arrs[0].dtype, np.floating)
            else np.zeros(shape, arrs[0].dtype)
        )
        for (idx, *_), a in zip(per_group, arrs, strict=True):
            out[idx] = _pad(a, (len(idx), *shape[1:]))
        history[k] = out
    epochs_run = np.zeros(m, np.int32)
    reasons: list[str | None] = [None] * m
    for idx, *_, ep, rs in per_group:
        epochs_run[idx] = ep
        for i, r in zip(idx, rs, strict=True):
            reasons[i] = r
    hp_out = {k: np.broadcast_to(np.asarray(val), (m,)).copy() for k, val in hparams.items()}
    if sizes is not None:
        hp_out["batch_size"] = sizes
    return SweepResult(
        params=scatter([g[1] for g in per_group]),
        opt_state=scatter([g[2] for g in per_group]),
        model_state=scatter([g[3] for g in per_group]) if has_state else None,
        history=history,
        hparams=hp_out,
        seeds=np.broadcast_to(seeds_arr, (m,)).copy(),
        epochs_run=epochs_run,
        stop_reason=reasons,
        epoch_seconds={int(r[1][0].batch_size): r[1][3] for r in results},
    )


__all__ = ["SweepResult", "grid", "sweep"]
