r"""Schedule-free learning (Defazio et al., 2024): averaging in place of a decaying schedule.

The wrapper keeps three sequences. The base optimizer steps $z$ (with its momentum off); the
evaluation point $x$ is a weighted running average of the $z$'s; gradients are taken at an
interpolation $y$ of the two, and $y$ is what the training loop sees as the parameters. After
training, evaluate at $x$: `schedule_free_eval_params` recovers it from $y$ and $z$.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule
from gdjax.transforms._common import check_inner, increment


class ScheduleFreeState(NamedTuple):
    """State of `schedule_free`.

    Attributes:
        b1: the interpolation weight $\\beta_1$.
        weight_sum: $\\sum_{i \\le t} w_i$, the averaging weights so far.
        step_count: the step $t$ (starts at 1).
        max_lr: $\\max_{i \\le t} \\gamma_i$.
        base_optimizer_state: the base optimizer's state.
        z: the base optimizer's iterate $z_t$.
    """

    b1: jax.Array
    weight_sum: jax.Array
    step_count: jax.Array
    max_lr: jax.Array
    base_optimizer_state: Any
    z: Any


def schedule_free_eval_params(state: ScheduleFreeState, params: Any) -> Any:
    r"""The averaged parameters $x_t = (y_t - (1-\beta_1) z_t)/\beta_1$ to evaluate a model at.

    Args:
        state: the `ScheduleFreeState` (``schedule_free_sgd``/``adamw``'s state is one).
        params: the training parameters $y_t$.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> opt = gdjax.schedule_free_sgd(0.5)
        >>> y = jnp.array([2.0])
        >>> state = opt.init(y)
        >>> for _ in range(20):
        ...     u, state = opt.update(2 * y, state, y)  # the gradient of y**2
        ...     y = gdjax.apply_updates(y, u)
        >>> x = gdjax.schedule_free_eval_params(state, y)
        >>> bool(abs(x[0]) < 0.2)
        True
    """
    b1, z = getattr(state, "b1", None), getattr(state, "z", None)
    if b1 is None or z is None:
        raise TypeError(
            "schedule_free_eval_params needs a ScheduleFreeState (the state of schedule_free, "
            f"schedule_free_sgd or schedule_free_adamw); got {type(state).__name__}"
        )
    return jax.tree.map(lambda y, zi: (y - (1.0 - b1) * zi) / b1, params, z)


def schedule_free(
    base_optimizer: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Make ``base_optimizer`` schedule-free (Defazio et al., 2024, "The Road Less Scheduled").

    With $\Delta_t$ the base optimizer's update for the gradient $g_t = \nabla f(y_t)$ and
    $\gamma_t$ the learning rate (a warm-up schedule at most, no decay):

    $$
    z_{t+1} = z_t + \Delta_t, \qquad
    x_{t+1} = (1 - c_{t+1})\,x_t + c_{t+1}\,z_{t+1}, \qquad
    y_{t+1} = \beta_1 x_{t+1} + (1-\beta_1)\,z_{t+1}
    $$

    $$
    c_{t+1} = \frac{w_t}{\sum_{i \le t} w_i}, \qquad
    w_t = \Big(\max_{i \le t}\gamma_i\Big)^{p}
    $$

    ($p$ = ``weight_lr_power``; $x_1 = z_1 = y_1$ are the initial parameters). The update
    returned moves the parameters from $y_t$ to $y_{t+1}$. Turn the base optimizer's momentum
    off (``b1=0`` for Adam): the interpolation replaces it. ``update`` needs ``params``.

    Args:
        base_optimizer: the optimizer that steps $z$ (e.g. ``gdjax.sgd(lr)``).
        learning_rate: $\gamma_t$ (the base optimizer's): a number, array or schedule.
        b1: $\beta_1 \in (0, 1]$.
        weight_lr_power: $p$ (2 in the paper).
        state_dtype: dtype of $z$ (default: the parameters').
    """
    check_inner("base_optimizer", base_optimizer)
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.check_range("b1", b1, low=0.0, high=1.0, low_inclusive=False)
    _checks.check_hyperparam("weight_lr_power", weight_lr_power)
    base = optax.with_extra_args_support(base_optimizer)

    def init_fn(params):
        dtype = optax.tree.dtype(params, "lowest")
        z = params if state_dtype is None else optax.tree.cast(params, state_dtype)
        return ScheduleFreeState(
            jnp.asarray(b1, dtype),
            jnp.zeros([], dtype),
            jnp.ones([], jnp.int32),
            jnp.zeros([], dtype),
            base.init(params),
            jax.tree.map(lambda t: t.copy(), z),
        )

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("schedule_free needs params: call update(grads, state, params)")
        lr = learning_rate
        if callable(learning_rate):
            lr = jnp.asarray(learning_rate(state.step_count), state.max_lr.dtype)
        max_lr = jnp.maximum(state.max_lr, lr)
        weight = max_lr**weight_lr_power
        weight_sum = state.weight_sum + weight
        c = jnp.where(
            jnp.isnan(weight) | jnp.isnan(weight_sum),
            jnp.nan,
            jnp.nan_to_num(weight / weight_sum, nan=0.0, posinf=jnp.inf),
        )
        base_updates, base_state = base.update(
            updates, state.base_optimizer_state, params, **extra_args
        )
        z = jax.tree.map(lambda zi, u: (zi + u).astype(zi.dtype), state.z, base_updates)

        def new_y(y, z_old, z_new):
            x = (y - (1.0 - b1) * z_old) / b1
            x = (1.0 - c) * x + c * z_new
            return (b1 * x + (1.0 - b1) * z_new - y).astype(y.dtype)

        out = jax.tree.map(new_y, params, state.z, z)
        return out, ScheduleFreeState(
            state.b1, weight_sum, increment(state.step_count), max_lr, base_state, z
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["ScheduleFreeState", "schedule_free", "schedule_free_eval_params"]
