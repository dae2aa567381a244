r"""Mixed precision: parameters and optimizer state in float32, the loss computed in bfloat16 or
float16, and dynamic loss scaling for float16.

A :class:`Precision` policy (``fit(..., precision="bfloat16")``) changes three things:

- **storage**: the parameters are kept in ``params`` (float32), and so is the optimizer state
  the optimizer builds from them; the returned parameters are float32;
- **compute**: the loss sees the parameters, the model state and the floating-point arrays of
  each batch cast to ``compute`` (bfloat16 or float16), so the model's matrix products run in
  that type; the gradient flows back through the casts and reaches the optimizer in float32;
- **output**: the loss (and the aux entries) are cast to ``output`` (float32) before they are
  averaged, and the new model state back to the dtype it is stored in.

Validation uses the same casts (the validation loss is the training loss's computation);
``metrics`` get the float32 parameters as they are.

**Dynamic loss scaling** (the default for float16, whose smallest normal number is
:math:`6 \cdot 10^{-5}`, so small gradients underflow to zero): the step differentiates
:math:`s \cdot L` instead of :math:`L`, so every gradient on the way back is :math:`s` times
larger, and divides the result by :math:`s`. With :math:`g` the unscaled gradient and
:math:`n` the finite steps since the scale last changed:

.. math::

    \text{if } g \text{ is finite:}\quad \theta \leftarrow \theta + u(g),\;
        n \leftarrow n + 1,\; \text{and if } n = N:\; s \leftarrow 2s,\; n \leftarrow 0;
    \qquad \text{else:}\quad \theta \text{ unchanged},\; s \leftarrow \max(s/2, 1),\;
        n \leftarrow 0.

Overflowing steps are part of normal training here, so they are handled inside the optimizer
(:func:`dynamic_loss_scale`, a select like optax's ``apply_if_finite``): the update and the
inner optimizer state of such a step are the old ones, the parameters stay finite, and the
engine's fast program (:mod:`gdjax.train.step`) never falls back to its guarded form for them.
A non-finite *loss* is not an overflow of the scaled gradient; it is handled by
``on_nonfinite`` as without scaling. The history records ``loss_scale`` (the scale at the end
of each epoch) and ``overflow_steps`` (steps skipped for an overflow in the epoch).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

COMPUTE_TYPES = ("float32", "bfloat16", "float16")
#: History keys recorded under dynamic loss scaling.
HISTORY_KEYS = ("loss_scale", "overflow_steps")


@dataclass(frozen=True)
class Precision:
    """A mixed-precision policy for :func:`gdjax.fit` and :func:`gdjax.sweep`.

    Attributes:
        compute: The dtype the loss is computed in: ``"bfloat16"``, ``"float16"`` or
            ``"float32"``.
        params: The dtype the parameters and the optimizer state are kept in.
        output: The dtype of the loss and the aux entries as the engine averages them.
        loss_scale: ``"dynamic"`` for dynamic loss scaling (the default with float16), or
            ``None`` for none (the default otherwise).
        initial_scale: The first loss scale :math:`s` (a power of two).
        growth_interval: :math:`N`, the finite steps after which the scale doubles.

    ``fit(..., precision="bfloat16")`` is ``Precision(compute="bfloat16")``.

    Examples:
        >>> from gdjax.train.precision import Precision
        >>> Precision("float16").loss_scale
        'dynamic'
    """

    compute: str = "float32"
    params: str = "float32"
    output: str = "float32"
    loss_scale: str | None = "default"
    initial_scale: float = 2.0**15
    growth_interval: int = 2000

    def __post_init__(self) -> None:
        for name in ("compute", "params", "output"):
            value = getattr(self, name)
            kind = np.dtype(jnp.dtype(value)).name if _is_dtype(value) else None
            if kind not in COMPUTE_TYPES:
                raise ValueError(
                    f"Precision.{name} must be one of {', '.join(COMPUTE_TYPES)}, got {value!r}"
                )
            object.__setattr__(self, name, kind)
        if self.loss_scale == "default":
            object.__setattr__(self, "loss_scale", "dynamic" if self.compute == "float16" else None)
        if self.loss_scale not in ("dynamic", None):
            raise ValueError(
                f"Precision.loss_scale must be 'dynamic' or None, got {self.loss_scale!r}"
            )
        scale = self.initial_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale >= 1:
            raise ValueError(f"Precision.initial_scale must be a number >= 1, got {scale!r}")
        interval = self.growth_interval
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"Precision.growth_interval must be an int >= 1, got {interval!r}")


def _is_dtype(value: Any) -> bool:
    try:
        jnp.dtype(value)
    except TypeError:
        return False
    return not isinstance(value, bool)


def as_precision(value: Any) -> Precision | None:
    """The ``precision`` option as a policy: ``None``, a dtype name, or a :class:`Precision`."""
    if value is None or isinstance(value, Precision):
        return value
    if isinstance(value, str):
        return Precision(compute=value)
    raise TypeError(
        f"precision must be None, 'bfloat16', 'float16', 'float32' or a "
        f"gdjax.train.precision.Precision, got {type(value).__name__}: {value!r}"
    )


def cast_floats(tree: Any, dtype: Any) -> Any:
    """``tree`` with its floating-point leaves cast to ``dtype`` (other leaves unchanged)."""

    def cast(x: Any) -> Any:
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype:
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


class CastLoss:
    """The user's loss with the policy's casts around it (see the module docstring)."""

    def __init__(self, fn: Callable[..., Any], policy: Precision, has_state: bool) -> None:
        self.fn = fn
        self.policy = policy
        self.has_state = has_state
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compute, output = jnp.dtype(self.policy.compute), jnp.dtype(self.policy.output)
        out = self.fn(*(cast_floats(a, compute) for a in args), **kwargs)
        if not isinstance(out, tuple):
            return cast_floats(out, output)
        if self.has_state and len(out) >= 2:  # (loss, new model state[, aux])
            stored = jax.tree.map(lambda a: a.dtype, args[1])
            state = jax.tree.map(lambda x, d: x.astype(d), out[1], stored)
            return (cast_floats(out[0], output), state, *cast_floats(out[2:], output))
        return cast_floats(out, output)


_wrapped: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cast_loss(fn: Callable[..., Any], policy: Precision, has_state: bool) -> CastLoss:
    """``fn`` with the casts of ``policy``: the same object for the same ``fn`` and policy, so
    that compiled programs are found again by the engine's cache."""
    try:
        table = _wrapped.setdefault(fn, {})
    except TypeError:  # not weakly referenceable: a fresh wrapper (programs are not reused)
        return CastLoss(fn, policy, has_state)
    key = (policy, has_state)
    if key not in table:
        table[key] = CastLoss(fn, policy, has_state)
    return table[key]


class CastInit:
    """A sweep's ``key -> params`` with the parameters cast to the policy's storage dtype."""

    def __init__(self, fn: Callable[..., Any], dtype: str) -> None:
        self.fn = fn
        self.dtype = dtype

    def __call__(self, key: Any) -> Any:
        return cast_floats(self.fn(key), jnp.dtype(self.dtype))


def cast_init(fn: Callable[..., Any], policy: Precision) -> CastInit:
    """``fn`` with :class:`CastInit`'s cast, the same object for the same ``fn`` and policy."""
    try:
        table = _wrapped.setdefault(fn, {})
    except TypeError:
        return CastInit(fn, policy.params)
    key = ("init", policy.params)
    if key not in table:
        table[key] = CastInit(fn, policy.params)
    return table[key]


class LossScaleState(NamedTuple):
    """State of :func:`dynamic_loss_scale`.

    Attributes:
        scale: The loss scale :math:`s` (float32).
        good_steps: Finite steps since the scale last changed (:math:`n`).
        overflow_steps: Steps skipped for an overflow in the current epoch.
        growth_interval: :math:`N` (data, like every hyperparameter).
        inner: The wrapped optimizer's state.
    """

    scale: jax.Array
    good_steps: jax.Array
    overflow_steps: jax.Array
    growth_interval: jax.Array
    inner: Any


def dynamic_loss_scale(
    inner: optax.GradientTransformation, initial_scale: float = 2.0**15, growth_interval: int = 2000
) -> optax.GradientTransformation:
    """Skip the updates of ``inner`` whose gradients are not finite, and adapt the loss scale.

    The gradients it receives are already divided by the scale (the engine's step does that;
    see the module docstring for the rule). A skipped step returns zero updates and keeps
    ``inner``'s state — a select, so it costs no branch and keeps everything finite.
    """

    def init(params: Any) -> LossScaleState:
        return LossScaleState(
            scale=jnp.asarray(initial_scale, jnp.float32),
            good_steps=jnp.zeros((), jnp.int32),
            overflow_steps=jnp.zeros((), jnp.int32),
            growth_interval=jnp.asarray(growth_interval, jnp.int32),
            inner=inner.init(params),
        )

    def update(grads: Any, state: LossScaleState, params: Any = None, **extra: Any) -> tuple:
        finite = jnp.stack(
            [jnp.isfinite(g).all() for g in jax.tree.leaves(grads)] or [jnp.asarray(True)]
        ).all()
        safe = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), grads)
        updates, new_inner = inner.update(safe, state.inner, params, **extra)
        updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), updates)
        new_inner = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new_inner, state.inner)
        good = state.good_steps + 1
        grow = finite & (good >= state.growth_interval)
        scale = jnp.where(
            finite,
            jnp.where(grow, state.scale * 2, state.scale),
            jnp.maximum(state.scale / 2, 1.0),
        )
        return updates, LossScaleState(
            scale=scale,
            good_steps=jnp.where(finite & ~grow, good, 0),
            overflow_steps=state.overflow_steps + (~finite).astype(jnp.int32),
            growth_interval=state.growth_interval,
            inner=new_inner,
        )

    return optax.GradientTransformationExtraArgs(init, update)


def _is_scale_state(node: Any) -> bool:
    return isinstance(node, LossScaleState)


def find_scale_state(opt_state: Any) -> LossScaleState | None:
    """The :class:`LossScaleState` inside ``opt_state``, or ``None`` (known when tracing)."""
    for node in jax.tree.leaves(opt_state, is_leaf=_is_scale_state):
        if isinstance(node, LossScaleState):
            return node
    return None


def loss_scale_of(opt_state: Any) -> jax.Array | None:
    """The loss scale the step multiplies the loss by, or ``None`` without loss scaling."""
    found = find_scale_state(opt_state)
    return None if found is None else found.scale


def end_of_epoch(opt_state: Any) -> tuple[dict, Any]:
    """The epoch's loss-scaling history entries, and ``opt_state`` with its count reset."""
    found = find_scale_state(opt_state)
    if found is None:
        return {}, opt_state
    stats = {"loss_scale": found.scale, "overflow_steps": found.overflow_steps}
    reset = jax.tree.map(
        lambda node: (
            node._replace(overflow_steps=jnp.zeros_like(node.overflow_steps))
            if isinstance(node, LossScaleState)
            else node
        ),
        opt_state,
        is_leaf=_is_scale_state,
    )
    return stats, reset


def wrap_optimizer(
    policy: Precision | None, opt: optax.GradientTransformation
) -> optax.GradientTransformation:
    """``opt`` under ``policy``: wrapped in :func:`dynamic_loss_scale` when it scales."""
    if policy is None or policy.loss_scale is None:
        return opt
    return dynamic_loss_scale(opt, policy.initial_scale, policy.growth_interval)


def apply(policy: Precision | None, loss_fn: Any, eval_loss_fn: Any, has_state: bool) -> tuple:
    """The loss and validation loss under ``policy`` (unchanged without one)."""
    if policy is None or (policy.compute == policy.output == "float32"):
        return loss_fn, eval_loss_fn
    wrap = lambda f: None if f is None else cast_loss(f, policy, has_state)  # noqa: E731
    return wrap(loss_fn), wrap(eval_loss_fn)


__all__ = [
    "LossScaleState",
    "Precision",
    "as_precision",
    "dynamic_loss_scale",
]
