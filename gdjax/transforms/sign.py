r"""Sign-based steps: signSGD's $\operatorname{sign}(g)$ and Rprop's per-parameter step sizes.

Both discard the gradient's magnitude. `scale_by_sign` keeps only each component's sign;
`scale_by_rprop` also adapts a per-parameter step size from whether the sign persists.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import as_state_value
from gdjax.transforms._common import check_params, check_updates
from gdjax.tree_utils import is_none, tree_map_none, tree_zeros_like


def scale_by_sign() -> optax.GradientTransformation:
    r"""Replace each gradient component by its sign: $u_t = \operatorname{sign}(g_t)$.

    Follow it with `scale_by_learning_rate` (as `gdjax.sign_sgd` does).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.scale_by_sign().update({"w": jnp.array([-3.0, 0.0, 0.2])}, gdjax.EmptyState())
        >>> u["w"].tolist()
        [-1.0, 0.0, 1.0]
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return tree_map_none(jnp.sign, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleByRpropState(NamedTuple):
    """State of `scale_by_rprop`.

    Attributes:
        step_sizes: the per-parameter step sizes $\\Delta_t$.
        prev_updates: the previous output $u_{t-1}$ (zero where the sign flipped).
        learning_rate: the initial step size $\\Delta_0$ (readable with `get_hyperparam`).
    """

    step_sizes: Any
    prev_updates: Any
    learning_rate: jax.Array


def scale_by_rprop(
    learning_rate: float | jax.Array,
    eta_minus: float | jax.Array = 0.5,
    eta_plus: float | jax.Array = 1.2,
    min_step_size: float | jax.Array = 1e-6,
    max_step_size: float | jax.Array = 50.0,
) -> optax.GradientTransformation:
    r"""Rprop's sign-driven step sizes (Riedmiller & Braun, 1993; the iRprop$^-$ variant).

    With $s_t = g_t\,u_{t-1}$ elementwise,

    $$
    \Delta_t = \begin{cases}
    \min(\eta^+\Delta_{t-1}, \Delta_{\max}) & s_t > 0 \\
    \max(\eta^-\Delta_{t-1}, \Delta_{\min}) & s_t < 0 \\
    \Delta_{t-1} & s_t = 0
    \end{cases}, \qquad
    u_t = \begin{cases} 0 & s_t < 0 \\ \Delta_t \operatorname{sign}(g_t) & \text{otherwise}
    \end{cases}
    $$

    with $\Delta_0$ = ``learning_rate`` and $u_0 = 0$. A sign flip shrinks the step and skips
    that component for one step; a persisting sign grows it. Follow it with ``scale(-1.0)``
    (as `gdjax.rprop` does). Meant for full-batch gradients.

    A deliberate difference from optax 0.2.8: ``optax.scale_by_rprop`` returns the *previous*
    step's $u_{t-1}$ (zeroed on a flip), so its first update is zero and every later one lags
    a step behind (a known bug, optax pull request 1725). gdjax returns $u_t$, as the paper and
    ``torch.optim.Rprop`` do; the step sizes $\Delta_t$ agree with optax's.

    Args:
        learning_rate: the initial step size $\Delta_0 \ge 0$.
        eta_minus: $\eta^- \ge 0$, the shrink factor on a sign flip.
        eta_plus: $\eta^+ \ge 0$, the growth factor while the sign persists.
        min_step_size: $\Delta_{\min} \ge 0$.
        max_step_size: $\Delta_{\max} \ge \Delta_{\min}$.
    """
    _checks.non_negative("learning_rate", learning_rate)
    for name, value in [
        ("eta_minus", eta_minus),
        ("eta_plus", eta_plus),
        ("min_step_size", min_step_size),
        ("max_step_size", max_step_size),
    ]:
        _checks.non_negative(name, value)
    numbers = isinstance(min_step_size, (int, float)) and isinstance(max_step_size, (int, float))
    if numbers and min_step_size > max_step_size:
        raise ValueError(
            f"min_step_size must be <= max_step_size; got {min_step_size} > {max_step_size}"
        )

    def init_fn(params):
        steps = jax.tree.map(lambda p: jnp.full_like(p, learning_rate), params)
        return ScaleByRpropState(steps, tree_zeros_like(params), as_state_value(learning_rate))

    def new_step(g, prev, step):
        s = g * prev
        grown = jnp.clip(step * jnp.where(s > 0, eta_plus, eta_minus), min_step_size, max_step_size)
        return jnp.where(s == 0, step, grown).astype(step.dtype)

    def output(g, prev, step):
        return jnp.where(g * prev < 0, jnp.zeros_like(g), step * jnp.sign(g)).astype(g.dtype)

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.step_sizes)
        steps = jax.tree.map(
            lambda g, p, s: None if g is None else new_step(g, p, s),
            updates,
            state.prev_updates,
            state.step_sizes,
            is_leaf=is_none,
        )
        out = jax.tree.map(
            lambda g, p, s: None if g is None else output(g, p, s),
            updates,
            state.prev_updates,
            steps,
            is_leaf=is_none,
        )
        return out, ScaleByRpropState(steps, out, state.learning_rate)

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["ScaleByRpropState", "scale_by_rprop", "scale_by_sign"]
