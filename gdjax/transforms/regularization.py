r"""Regularization as gradient transformations: decoupled weight decay, L2 and L1 penalties.

*Coupled* L2 adds $\lambda\theta$ to the **gradient**, before any adaptive rescaling, which
is the same as adding $\tfrac{\lambda}{2}\lVert\theta\rVert^2$ to the loss. *Decoupled*
weight decay (Loshchilov & Hutter, AdamW) adds $\lambda\theta$ to the **update** after the
rescaling, so it is not divided by Adam's second moment. Place each accordingly in a chain:
``chain(add_l2_regularization(1e-4), scale_by_adam(), scale_by_learning_rate(lr))`` versus
``chain(scale_by_adam(), add_decayed_weights(1e-4), scale_by_learning_rate(lr))``.

Every factory takes a ``mask``: a pytree of booleans with the structure of the parameters, or a
function ``params -> that pytree``; leaves where it is ``False`` (typically biases and
normalization scales) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import ScalarOrSchedule, as_state_value, resolve
from gdjax.transforms._common import check_updates, increment, zero_count
from gdjax.tree_utils import is_none

Mask = Any | Callable[[Any], Any] | None


class AddDecayedWeightsState(NamedTuple):
    r"""State of `add_decayed_weights`.

    Attributes:
        count: number of updates applied.
        weight_decay: $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "weight_decay")``).
    """

    count: jax.Array
    weight_decay: jax.Array


class L2RegularizationState(NamedTuple):
    r"""State of `add_l2_regularization`.

    Attributes:
        count: number of updates applied.
        l2_strength: the ``strength`` $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "l2_strength")``).
    """

    count: jax.Array
    l2_strength: jax.Array


class L1RegularizationState(NamedTuple):
    r"""State of `add_l1_regularization`.

    Attributes:
        count: number of updates applied.
        l1_strength: the ``strength`` $\lambda$ used by the latest update (read it with
            ``get_hyperparam(state, "l1_strength")``).
    """

    count: jax.Array
    l1_strength: jax.Array


def _resolve_mask(mask: Mask, params: Any) -> Any:
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    return mask(params) if callable(mask) else mask


def _add_penalty(
    name: str,
    strength: ScalarOrSchedule,
    mask: Mask,
    penalty_grad: Callable[[jax.Array], jax.Array],
    state_type: type,
) -> optax.GradientTransformation:
    """``u + lambda_t * mask * penalty_grad(params)``; ``lambda_t`` recorded in ``state_type``."""
    _checks.non_negative(name, strength, schedule_ok=True)

    def init_fn(params):
        del params
        return state_type(zero_count(), as_state_value(resolve(strength, 0)))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(f"{name}: update needs `params`: call update(grads, state, params)")
        check_updates(updates, params)
        lam = resolve(strength, state.count)
        new_state = state_type(increment(state.count), as_state_value(lam))
        mask_tree = _resolve_mask(mask, params)
        try:
            mask_leaves = jax.tree.structure(params).flatten_up_to(mask_tree)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name}: mask does not match the parameter tree: {err}") from None
        if isinstance(strength, (int, float)) and strength == 0:
            return updates, new_state  # as optax: no pass over the parameters for a zero penalty
        g_leaves, treedef = jax.tree.flatten(updates, is_leaf=is_none)
        p_leaves = jax.tree.leaves(params, is_leaf=is_none)
        out = []
        m_iter = iter(mask_leaves)
        for g, p in zip(g_leaves, p_leaves, strict=True):
            if g is None:
                out.append(None)
                continue
            m = next(m_iter)
            if m is False:
                out.append(g)
                continue
            coef = lam if m is True else jnp.where(m, lam, 0.0)
            out.append((g + coef * penalty_grad(p)).astype(g.dtype))
        return treedef.unflatten(out), new_state

    return optax.GradientTransformation(init_fn, update_fn)


def add_decayed_weights(
    weight_decay: ScalarOrSchedule = 0.0, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Decoupled weight decay: $u \leftarrow u + \lambda_t\,\theta$ (as in AdamW).

    Args:
        weight_decay: $\lambda \ge 0$: a number, array or schedule; the value used is
            recorded in the state as ``weight_decay``.
        mask: which parameters decay (see the module docstring).
    """
    return _add_penalty("weight_decay", weight_decay, mask, lambda p: p, AddDecayedWeightsState)


def add_l2_regularization(
    strength: ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Coupled L2: add the gradient of $\tfrac{\lambda}{2}\lVert\theta\rVert_2^2$,
    i.e. $g \leftarrow g + \lambda\theta$. Put it first in a chain.

    Args:
        strength: $\lambda \ge 0$: a number, array or schedule; the value used is recorded in
            the state as ``l2_strength``.
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
        strength: $\lambda \ge 0$: a number, array or schedule; the value used is recorded in
            the state as ``l1_strength``.
        mask: which parameters are penalized.
    """
    return _add_penalty("strength", strength, mask, jnp.sign, L1RegularizationState)
