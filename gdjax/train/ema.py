r"""An exponential moving average (EMA) of the weights, kept by the optimizer during training.

With ``fit(..., ema=gdjax.EMA(decay))`` the engine keeps, next to the trained parameters
:math:`\theta_t`, their average over the steps, updated after every applied step:

.. math::

    \bar\theta_0 = \theta_0, \qquad
    \bar\theta_t = d\,\bar\theta_{t-1} + (1 - d)\,\theta_t ,

so :math:`\bar\theta_t = d^t\theta_0 + (1-d)\sum_{s=1}^{t} d^{t-s}\theta_s`: a smoothed copy of
the weights that often validates better than the last iterate (Polyak averaging).

**Where it lives.** The average is an optimizer-side transformation: :func:`averaged` wraps the
run's optimizer (outermost, after a ``reduce_on_plateau`` the engine appends) and keeps
:math:`\bar\theta` in its state, computing :math:`\theta_t = \theta_{t-1} + u_t` from the
updates it returns. So the average is part of the optimizer state: it is checkpointed and
resumed to the same bits, stacked along the members' axis of a sweep, and dropped with the step
when a step is not finite — with no change to the engine's step. The averages are kept in at
least float32 (a bfloat16 average with :math:`d = 0.999` would not move) and returned in the
parameters' dtypes.

``FitResult.ema_params`` (``SweepResult.ema_params``) holds the final average; with
``validate=True`` (the default) validation, metrics and the stopping rules see the average
instead of the trained weights, and ``EarlyStopping(restore_best=True)`` then returns the
average of the best epoch as ``params``.

Examples:
    >>> import jax, jax.numpy as jnp, optax, gdjax
    >>> x = jnp.linspace(-1, 1, 32)[:, None]; y = 2 * x[:, 0]
    >>> def loss(p, batch):
    ...     xb, yb = batch
    ...     return jnp.mean((xb[:, 0] * p - yb) ** 2)
    >>> res = gdjax.fit(loss, jnp.zeros(()), optax.sgd(0.5), (x, y), batch_size=8, epochs=20,
    ...                 key=jax.random.key(0), ema=gdjax.EMA(0.9))
    >>> round(float(res.params), 2), round(float(res.ema_params), 2)
    (2.0, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks


@dataclass(frozen=True)
class EMA:
    r"""Keep an exponential moving average of the weights (``fit(..., ema=gdjax.EMA(0.999))``).

    After every applied step: :math:`\bar\theta_t = d\,\bar\theta_{t-1} + (1-d)\,\theta_t`,
    starting from :math:`\bar\theta_0 = \theta_0` (see :mod:`gdjax.train.ema`).

    Attributes:
        decay: :math:`d`, in ``[0, 1)``; the average spans about :math:`1/(1-d)` steps.
        validate: Evaluate the validation sets and metrics on the average (so the stopping
            rules monitor it, and ``restore_best`` returns the best epoch's average); with
            ``False`` they see the trained weights and the average is only returned.
    """

    decay: float
    validate: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.decay, bool) or not isinstance(self.decay, int | float):
            raise TypeError(f"EMA.decay must be a number in [0, 1), got {self.decay!r}")
        if not 0.0 <= float(self.decay) < 1.0:
            raise ValueError(
                f"EMA.decay must be in [0, 1), got {self.decay!r} (1 would keep the initial "
                "weights forever)"
            )
        object.__setattr__(self, "decay", float(self.decay))
        _checks.flag("EMA.validate", self.validate)

    def wrap(self, inner: optax.GradientTransformation) -> optax.GradientTransformation:
        """``inner`` with the average kept in its state (see :func:`averaged`)."""
        return averaged(inner, self.decay)


class EmaState(NamedTuple):
    """State of :func:`averaged`: the wrapped optimizer's state and the average."""

    inner: Any
    average: Any


def _average_dtype(x: Any) -> Any:
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


def averaged(
    inner: optax.GradientTransformation, decay: float
) -> optax.GradientTransformationExtraArgs:
    r"""Wrap ``inner`` so that its state also holds the EMA of the parameters it produces.

    ``update(g, state, params)`` returns ``inner``'s updates :math:`u` unchanged and sets
    :math:`\bar\theta \leftarrow d\,\bar\theta + (1-d)(\theta + u)`; extra arguments
    (``value``, ``grad``, ...) reach ``inner``.
    """
    inner = optax.with_extra_args_support(inner)

    def init(params: Any) -> EmaState:
        average = jax.tree.map(lambda p: jnp.array(p, dtype=_average_dtype(p)), params)
        return EmaState(inner.init(params), average)

    def update(updates: Any, state: EmaState, params: Any = None, **extra: Any) -> tuple:
        if params is None:
            raise ValueError("the weights' EMA needs the parameters: call update(g, s, params)")
        updates, inner_state = inner.update(updates, state.inner, params, **extra)
        new_params = optax.apply_updates(params, updates)
        average = jax.tree.map(
            lambda a, p: decay * a + (1.0 - decay) * p.astype(a.dtype), state.average, new_params
        )
        return updates, EmaState(inner_state, average)

    return optax.GradientTransformationExtraArgs(init, update)


def average_of(opt_state: Any, params: Any) -> Any:
    """The EMA held in ``opt_state``, cast to the dtypes of ``params``; ``None`` if there is none."""
    if not isinstance(opt_state, EmaState):
        return None
    return jax.tree.map(lambda a, p: a.astype(jnp.result_type(p)), opt_state.average, params)


__all__ = ["EMA", "EmaState", "average_of", "averaged"]
