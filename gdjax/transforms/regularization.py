r"""Regularization as gradient transformations: decoupled weight decay, L2 and L1 penalties.

*Coupled* L2 adds $\lambda\theta$ to the **gradient**, before any adaptive rescaling, which
is the same as adding $\tfrac{\lambda}{2}\lVert\theta\rVert^2$ to the loss. *Decoupled*
weight decay (Loshchilov & Hutter, AdamW) adds $\lambda\theta$ to the **update** after the
rescaling, so it is not divided by Adam's second moment. Place each accordingly in a chain:
``chain(add_l2_regularization(1e-4), scale_by_adam(), scale_by_learning_rate(lr))`` versus
``chain(scale_by_adam(), add_decayed_weights(1e-4), scale_by_learning_rate(lr))``.

Every factory takes a ``mask``, as optax's do: a pytree of booleans with the structure of the
parameters (or a prefix of it), or a function ``params -> that pytree``; leaves where it is
``False`` (typically biases and normalization scales) are left alone. With a mask the
transformation is wrapped in `masked` (so its state is a `MaskedState`, as in optax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, as_state_value
from gdjax.transforms._common import as_arrays, check_updates, increment, zero_count
from gdjax.transforms.wrappers import masked
from gdjax.tree_utils import is_none

Mask = Any | Callable[[Any], Any] | None


class AddDecayedWeightsState(NamedTuple):
    r"""State of `add_decayed_weights` with a scheduled weight decay (a constant keeps none).

    Attributes:
        count: number of updates applied.
        weight_decay: $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "weight_decay")``).
    """

    count: jax.Array
    weight_decay: jax.Array


class L2RegularizationState(NamedTuple):
    r"""State of `add_l2_regularization` with a scheduled strength (a constant keeps none).

    Attributes:
        count: number of updates applied.
        l2_strength: the ``strength`` $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "l2_strength")``).
    """

    count: jax.Array
    l2_strength: jax.Array


class L1RegularizationState(NamedTuple):
    r"""State of `add_l1_regularization` with a scheduled strength (a constant keeps none).

    Attributes:
        count: number of updates applied.
        l1_strength: the ``strength`` $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "l1_strength")``).
    """

    count: jax.Array
    l1_strength: jax.Array


def _add_penalty(
    name: str,
    strength: ScalarOrSchedule,
    mask: Mask,
    penalty_grad: Callable[[jax.Array], jax.Array],
    state_type: type,
    *,
    signed: bool = False,
) -> optax.GradientTransformation:
    """``u + lambda_t * penalty_grad(params)`` on the leaves ``mask`` selects.

    A scheduled ``lambda_t`` is recorded in ``state_type``; a constant leaves the state empty.
    ``signed=True`` lets ``lambda`` be negative (a shrinkage factor minus one, for `fromage`).
    """
    if signed:
        _checks.check_hyperparam(name, strength, schedule_ok=True)
    else:
        _checks.non_negative(name, strength, schedule_ok=True)
    scheduled = callable(strength)

    def init_fn(params):
        del params
        if scheduled:
            return state_type(zero_count(), as_state_value(strength(zero_count())))
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"{name}: update needs `params`: call update(grads, state, params)")
        if scheduled:
            lam = strength(state.count)
            new_state = state_type(increment(state.count), as_state_value(lam))
        else:
            lam, new_state = strength, state
        if updates is None:  # optax passes None through
            return None, new_state
        check_updates(updates, params)
        if isinstance(strength, (int, float)) and strength == 0:
            return updates, new_state  # as optax: no pass over the parameters for a zero penalty
        updates = as_arrays(updates)
        out = jax.tree.map(
            lambda g, p: None if g is None else (g + lam * penalty_grad(p)).astype(g.dtype),
            updates,
            params,
            is_leaf=is_none,
        )
        return out, new_state

    tx = optax.GradientTransformation(init_fn, update_fn)
    return tx if mask is None else masked(tx, mask)


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Decoupled weight decay: $u \leftarrow u + \lambda_t\,\theta$ (as in AdamW).

    Args:
        weight_decay: $\lambda \ge 0$: a number, array or schedule; a scheduled value is
            recorded in the state as ``weight_decay``.
        mask: which parameters decay (see the module docstring).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.add_decayed_weights(0.1, mask={"w": True, "b": False})
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
        >>> u, _ = opt.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, opt.init(params), params)
        >>> u["w"].tolist(), u["b"].tolist()
        ([0.10000000149011612, 0.10000000149011612], [0.0, 0.0])
    """
    return _add_penalty("weight_decay", weight_decay, mask, lambda p: p, AddDecayedWeightsState)


def add_l2_regularization(
    strength: ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Coupled L2: add the gradient of $\tfrac{\lambda}{2}\lVert\theta\rVert_2^2$,
    i.e. $g \leftarrow g + \lambda\theta$. Put it first in a chain.

    Args:
        strength: $\lambda \ge 0$: a number, array or schedule; a scheduled value is recorded
            in the state as ``l2_strength``.
        mask: which parameters are penalized.
    """
    return _add_penalty("strength", strength, mask, lambda p: p, L2RegularizationState)


def add_l1_regularization(
    strength: ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    r"""L1: add the subgradient of $\lambda\lVert\theta\rVert_1$,
    $g \leftarrow g + \lambda\,\operatorname{sign}(\theta)$ (with $\operatorname{sign}(0) = 0$).
    Put it first in a chain.

    Args:
        strength: $\lambda \ge 0$: a number, array or schedule; a scheduled value is recorded
            in the state as ``l1_strength``.
        mask: which parameters are penalized.
    """
    return _add_penalty("strength", strength, mask, jnp.sign, L1RegularizationState)


def _add_scaled_params(factor: ScalarOrSchedule) -> optax.GradientTransformation:
    r"""$u \leftarrow u + c_t\,\theta$ for any real $c_t$ (internal: `fromage`'s shrinkage).

    `add_decayed_weights` with the sign of $c$ unchecked; a scheduled value is recorded as
    ``weight_decay``.
    """
    return _add_penalty(
        "weight_decay", factor, None, lambda p: p, AddDecayedWeightsState, signed=True
    )
