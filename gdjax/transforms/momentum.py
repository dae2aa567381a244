r"""Momentum: heavy-ball (Polyak) and Nesterov accelerated gradient.

Two equivalent-looking forms exist. The source documents write momentum with the learning rate
*inside* the velocity,

$$
v_t = \gamma v_{t-1} + \alpha_t \nabla J(\theta), \qquad \theta \leftarrow \theta - v_t,
$$

which is `heavy_ball`. optax (and PyTorch) keep the learning rate *outside*,
$v_t = \gamma v_{t-1} + g_t$, $\theta \leftarrow \theta - \alpha_t v_t$, which is
`trace` followed by `scale_by_learning_rate`. With a constant learning rate
the two produce identical iterates; under a schedule they differ (with the velocity form a
learning-rate drop takes effect gradually).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule
from gdjax.transforms._common import as_arrays, check_updates
from gdjax.transforms.scaling import scale_by_learning_rate
from gdjax.tree_utils import is_none, tree_zeros_like


class TraceState(NamedTuple):
    """State of `trace`: the running momentum buffer."""

    trace: Any


def trace(
    decay: float | jax.Array, nesterov: bool = False, accumulator_dtype: Any = None
) -> optax.GradientTransformation:
    r"""Momentum buffer with the learning rate applied afterwards (optax's ``trace``).

    $$
    v_t = g_t + \gamma v_{t-1}, \qquad
    u_t = \begin{cases} g_t + \gamma v_t & \text{Nesterov} \\ v_t & \text{otherwise} \end{cases}
    $$

    ``decay=1`` sums all past gradients (allowed, as in optax).

    Args:
        decay: the momentum coefficient $\gamma \in [0, 1]$.
        nesterov: use the Nesterov look-ahead form (Sutskever et al., 2013); a Python bool.
        accumulator_dtype: dtype of the buffer (default: that of the parameters).
    """
    _checks.momentum("decay", decay)
    _checks.static_bool("nesterov", nesterov)

    def init_fn(params):
        return TraceState(tree_zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.trace)
        updates = as_arrays(updates)
        new_trace = jax.tree.map(
            lambda g, t: None if g is None else (g + decay * t).astype(t.dtype),
            updates,
            state.trace,
            is_leaf=is_none,
        )
        if nesterov:
            out = jax.tree.map(
                lambda g, t: None if g is None else (g + decay * t).astype(g.dtype),
                updates,
                new_trace,
                is_leaf=is_none,
            )
        else:
            out = jax.tree.map(
                lambda g, t: None if g is None else t.astype(g.dtype),
                updates,
                new_trace,
                is_leaf=is_none,
            )
        return out, TraceState(new_trace)

    return optax.GradientTransformation(init_fn, update_fn)


def heavy_ball(
    learning_rate: ScalarOrSchedule, momentum: float | jax.Array = 0.9, nesterov: bool = False
) -> optax.GradientTransformationExtraArgs:
    r"""Momentum in the source documents' form, the learning rate inside the velocity.

    $$
    v_t = \gamma v_{t-1} + \alpha_t \nabla J(\theta_{t}), \qquad \theta_{t+1} = \theta_t - v_t
    $$

    With ``nesterov=True`` the gradient is taken at the look-ahead point
    $\theta_t - \gamma v_{t-1}$, written in the equivalent form that needs only the
    gradient at the current iterate: $u_t = -(\gamma v_t + \alpha_t \nabla J(\theta_t))$.

    This transformation outputs the final (negative) update, so it is used on its own, not
    followed by `scale_by_learning_rate`. It is ``chain(scale_by_learning_rate(learning_rate),
    trace(momentum, nesterov))``: the trace of the already scaled, negated gradients is
    $-v_t$, so the state holds the velocity with its sign flipped (in `TraceState`), and a
    scheduled learning rate is recorded as in `scale_by_learning_rate`.

    Args:
        learning_rate: $\alpha$: a non-negative number, array or schedule.
        momentum: $\gamma \in [0, 1]$, typically 0.9.
        nesterov: Nesterov accelerated gradient; a Python bool.
    """
    _checks.non_negative("learning_rate", learning_rate, schedule_ok=True)
    _checks.momentum("momentum", momentum)
    _checks.static_bool("nesterov", nesterov)
    return optax.chain(
        scale_by_learning_rate(learning_rate), trace(decay=momentum, nesterov=nesterov)
    )


__all__ = ["TraceState", "heavy_ball", "trace"]
