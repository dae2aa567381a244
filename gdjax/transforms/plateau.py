r"""Reduce the step size when a monitored value stops improving (reduce-on-plateau).

The transformation owns its scale: the state records ``lr_scale``, the factor applied to every
update, and the plateau bookkeeping. It multiplies the updates it receives by ``lr_scale``, so
placed after an optimizer (``gdjax.chain(gdjax.adam(1e-3), reduce_on_plateau(...))``) it
scales the learning rate.

The monitored value reaches it in one of two ways:

- per step, as the extra argument ``value`` (optax's convention, e.g. the batch loss), averaged
  over ``accumulation_size`` steps before each plateau decision;
- from outside, with :func:`observe_plateau` — ``gdjax.fit`` does this once per epoch with the
  monitored history entry (``val_loss``, ``loss``, ...) when given
  ``reduce_on_plateau=gdjax.ReduceOnPlateau(...)``. Built with ``accumulation_size=None``, the
  transformation ignores ``value`` and waits for :func:`observe_plateau`.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks


class ReduceOnPlateauState(NamedTuple):
    """State of `reduce_on_plateau`.

    Attributes:
        lr_scale: The factor applied to the updates (starts at 1).
        best: Best monitored value so far.
        wait: Decisions since the last improvement.
        cooldown: Decisions left before waiting counts again.
        total: Sum of the values accumulated since the last decision.
        count: Number of values accumulated since the last decision.
        factor, patience, min_delta, cooldown_steps, min_scale, maximize: The hyperparameters
            (data, so that a sweep can vary them and `observe_plateau` needs nothing else).
    """

    lr_scale: jax.Array
    best: jax.Array
    wait: jax.Array
    cooldown: jax.Array
    total: jax.Array
    count: jax.Array
    factor: jax.Array
    patience: jax.Array
    min_delta: jax.Array
    cooldown_steps: jax.Array
    min_scale: jax.Array
    maximize: jax.Array


def _decide(state: ReduceOnPlateauState, value: jax.Array) -> ReduceOnPlateauState:
    value = jnp.asarray(value, jnp.float32)
    better = jnp.where(
        state.maximize, value > state.best + state.min_delta, value < state.best - state.min_delta
    )
    better = jnp.isfinite(value) & better
    cooling = state.cooldown > 0
    wait = jnp.where(better | cooling, 0, state.wait + 1)
    reduce = wait >= state.patience
    scale = jnp.where(
        reduce, jnp.maximum(state.lr_scale * state.factor, state.min_scale), state.lr_scale
    )
    return state._replace(
        lr_scale=scale.astype(jnp.float32),
        best=jnp.where(better, value, state.best),
        wait=jnp.where(reduce, 0, wait).astype(jnp.int32),
        cooldown=jnp.where(reduce, state.cooldown_steps, jnp.maximum(state.cooldown - 1, 0)).astype(
            jnp.int32
        ),
        total=jnp.zeros((), jnp.float32),
        count=jnp.zeros((), jnp.int32),
    )


def reduce_on_plateau(
    factor: float = 0.5,
    patience: int = 3,
    min_delta: float = 0.0,
    mode: Literal["min", "max"] = "min",
    cooldown: int = 0,
    min_scale: float = 0.0,
    accumulation_size: int | None = 1,
) -> optax.GradientTransformationExtraArgs:
    r"""Multiply updates by a scale that drops by ``factor`` when a value stops improving.

    At each decision the monitored value $v$ (the mean of the values accumulated since the last
    decision) improves if $v < b - \delta$ (``mode="min"``; $v > b + \delta$ for ``"max"``),
    where $b$ is the best value so far and $\delta$ is ``min_delta``. After ``patience``
    decisions without improvement (not counting ``cooldown`` decisions after a reduction)

    $$
    s \leftarrow \max(\rho\, s,\ s_{\min}), \qquad u \leftarrow s\,u,
    $$

    with $\rho$ = ``factor`` and $s_{\min}$ = ``min_scale``. The scale is recorded in the
    state as ``lr_scale`` (``gdjax.get_hyperparam(state, "lr_scale")``).

    Unlike ``optax.contrib.reduce_on_plateau`` (relative and absolute tolerances, ``min``
    only), improvement here is measured by an absolute ``min_delta`` and can be a maximum
    (accuracies); the decision cadence is the same (``accumulation_size`` values per decision).

    Args:
        factor: $\rho \in (0, 1)$.
        patience: Decisions without improvement before reducing (``>= 1``).
        min_delta: $\delta \ge 0$.
        mode: ``"min"`` for losses, ``"max"`` for accuracies.
        cooldown: Decisions to wait after a reduction before counting again (``>= 0``).
        min_scale: $s_{\min} \ge 0$.
        accumulation_size: Values per decision when they come as the ``value`` extra argument;
            ``None`` to take decisions only through :func:`observe_plateau`.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.chain(gdjax.sgd(0.1), gdjax.reduce_on_plateau(factor=0.5, patience=1))
        >>> params = {"w": jnp.ones(2)}
        >>> state = opt.init(params)
        >>> for loss in [1.0, 1.0, 1.0]:  # no improvement after the first value
        ...     _, state = opt.update({"w": jnp.ones(2)}, state, params, value=jnp.asarray(loss))
        >>> float(gdjax.get_hyperparam(state, "lr_scale"))
        0.25
    """
    if not isinstance(factor, int | float) or not 0.0 < factor < 1.0:
        raise ValueError(f"reduce_on_plateau: factor must be in (0, 1), got {factor!r}")
    _checks.python_int("reduce_on_plateau: patience", patience)
    _checks.python_int("reduce_on_plateau: cooldown", cooldown, minimum=0)
    _checks.non_negative_number("reduce_on_plateau: min_delta", min_delta)
    _checks.non_negative_number("reduce_on_plateau: min_scale", min_scale)
    if mode not in ("min", "max"):
        raise ValueError(f"reduce_on_plateau: mode must be 'min' or 'max', got {mode!r}")
    if accumulation_size is not None:
        _checks.python_int("reduce_on_plateau: accumulation_size", accumulation_size)

    def init_fn(params: Any) -> ReduceOnPlateauState:
        del params
        f32, i32 = jnp.float32, jnp.int32
        return ReduceOnPlateauState(
            lr_scale=jnp.ones((), f32),
            best=jnp.asarray(jnp.inf if mode == "min" else -jnp.inf, f32),
            wait=jnp.zeros((), i32),
            cooldown=jnp.zeros((), i32),
            total=jnp.zeros((), f32),
            count=jnp.zeros((), i32),
            factor=jnp.asarray(factor, f32),
            patience=jnp.asarray(patience, i32),
            min_delta=jnp.asarray(min_delta, f32),
            cooldown_steps=jnp.asarray(cooldown, i32),
            min_scale=jnp.asarray(min_scale, f32),
            maximize=jnp.asarray(mode == "max"),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is not None and accumulation_size is not None:
            total = state.total + jnp.asarray(value, jnp.float32)
            count = state.count + 1
            acc = state._replace(total=total, count=count)
            decided = _decide(acc, total / count)
            state = jax.tree.map(
                lambda d, a: jnp.where(count >= accumulation_size, d, a), decided, acc
            )
        scale = state.lr_scale
        updates = jax.tree.map(
            lambda u: None if u is None else u * scale.astype(u.dtype),
            updates,
            is_leaf=lambda u: u is None,
        )
        return updates, state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def observe_plateau(opt_state: Any, value: Any) -> Any:
    """Take one plateau decision with the monitored ``value`` in every `reduce_on_plateau`
    state inside ``opt_state`` (anywhere in a chain); returns the new optimizer state.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.chain(gdjax.sgd(0.1), gdjax.reduce_on_plateau(patience=1, accumulation_size=None))
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> for val_loss in [0.5, 0.6]:  # once per epoch
        ...     state = gdjax.observe_plateau(state, val_loss)
        >>> float(gdjax.get_hyperparam(state, "lr_scale"))
        0.5
    """
    return jax.tree.map(
        lambda s: _decide(s, value) if isinstance(s, ReduceOnPlateauState) else s,
        opt_state,
        is_leaf=lambda s: isinstance(s, ReduceOnPlateauState),
    )
