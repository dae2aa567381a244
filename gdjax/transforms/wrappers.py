"""Wrappers that change where or when a transformation applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from gdjax import _checks
from gdjax.transforms._common import (
    check_inner,
    check_params,
    check_updates,
    increment,
    zero_count,
)
from gdjax.tree_utils import is_none, tree_zeros_like


class MaskedState(NamedTuple):
    """State of `masked`: the inner state, built for the selected leaves only."""

    inner_state: Any


def _is_mask_function(mask: Any) -> bool:
    """Whether ``mask`` is a function ``params -> mask tree`` rather than a mask tree (optax's rule).

    A mask is a function when every leaf of it, taken as a pytree, is callable: a plain
    function is a single callable leaf. A callable *pytree* whose leaves are booleans (an
    equinox module with a ``__call__``, say) is a mask tree, not a function.
    """
    flags = jax.tree.leaves(jax.tree.map(callable, mask))
    return bool(flags) and all(flags)


def _mask_flag(flag: Any) -> bool:
    """A mask leaf as a Python bool; a traced or non-scalar leaf is refused by name."""
    if isinstance(flag, (bool, np.bool_)):
        return bool(flag)
    if _checks.is_traced(flag) or np.ndim(flag) != 0:
        raise TypeError(
            "masked: mask leaves must be Python bools (the mask decides which leaves the inner "
            f"state is built for, so it is static); got {type(flag).__name__}: {flag!r}"
        )
    return bool(flag)


def _mask_tree(mask: Any, tree: Any) -> Any:
    """The mask tree for ``tree`` (calling ``mask`` if it is a function), checked as a prefix."""
    mask_tree = mask(tree) if _is_mask_function(mask) else mask
    try:
        jax.tree.structure(mask_tree).flatten_up_to(tree)
    except (ValueError, TypeError) as err:
        raise ValueError(
            "masked: mask does not match the parameter tree (it must have the parameters' "
            f"structure, or be a prefix of it): {err}"
        ) from None
    return jax.tree.map(_mask_flag, mask_tree)


def _select(tree: Any, mask_tree: Any) -> Any:
    """Replace each unselected subtree by ``optax.MaskedNode()`` (an empty subtree)."""
    return jax.tree.map(lambda m, x: x if m else optax.MaskedNode(), mask_tree, tree)


def _is_params_placeholder(params: Any) -> bool:
    """Whether ``init`` was called by ``optax.tree_utils.tree_map_params``.

    That function calls ``init`` with a leafless placeholder object to find where copies of
    the parameters sit in the state; the placeholder cannot be masked, so it goes to the inner
    transformation whole (as optax's ``masked`` does).
    """
    return type(params).__name__ == "_ParamsPlaceholder" and not jax.tree.leaves(params)


def masked(
    inner: optax.GradientTransformation,
    mask: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    """Apply ``inner`` only to the leaves where ``mask`` is ``True``; pass the rest through.

    The same as ``optax.masked``: the inner state holds ``optax.MaskedNode()`` in place of the
    unselected parameters, and ``optax.tree_utils.tree_map_params`` works on the state (pass
    ``is_leaf=lambda v: isinstance(v, optax.MaskedNode)`` when it maps extra trees).

    Args:
        inner: the transformation to restrict.
        mask: a pytree of Python booleans with the parameters' structure or a prefix of it
            (``{"encoder": False, "head": True}`` over nested parameters selects the whole
            ``head`` subtree; a single ``True`` selects everything), or a function
            ``params -> such a pytree`` (e.g.
            ``lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`` to select weight matrices
            and leave biases out). A callable pytree with boolean leaves is a mask tree, not
            a function (optax's rule: a mask is a function when all its leaves are
            callable). Static: it decides which leaves the inner
            state is built for. In ``update`` a function mask is applied to the gradients,
            as in optax.
        mask_compatible_extra_args: also mask those extra keyword arguments of ``update``
            that have the gradients' tree structure (as optax does); a Python bool.

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
        >>> opt = gdjax.masked(gdjax.scale(0.0), {"w": True, "b": False})
        >>> u, _ = opt.update(params, opt.init(params), params)
        >>> float(u["w"].sum()), float(u["b"].sum())
        (0.0, 2.0)
    """
    check_inner("inner", inner)
    _checks.static_bool("mask_compatible_extra_args", mask_compatible_extra_args)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        if _is_params_placeholder(params):
            return MaskedState(inner.init(params))
        return MaskedState(inner.init(_select(params, _mask_tree(mask, params))))

    def update_fn(updates, state, params=None, **extra_args):
        check_params(updates, params)
        mask_tree = _mask_tree(mask, updates)
        sub_params = None if params is None else _select(params, mask_tree)
        if mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: _select(v, mask_tree) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        new_sub, inner_state = inner.update(
            _select(updates, mask_tree), state.inner_state, sub_params, **extra_args
        )
        out = jax.tree.map(lambda m, new, old: new if m else old, mask_tree, new_sub, updates)
        return out, MaskedState(inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class AccumulateState(NamedTuple):
    """State of `accumulate_gradients`.

    Attributes:
        mini_step: position inside the current group of ``every_k`` steps.
        gradient_step: number of inner (real) updates applied.
        acc_grads: running mean of the gradients of the current group.
        inner_state: the wrapped optimizer's state.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    acc_grads: Any
    inner_state: Any


def accumulate_gradients(
    inner: optax.GradientTransformation, every_k: int | jax.Array
) -> optax.GradientTransformationExtraArgs:
    r"""Average gradients over ``every_k`` calls and apply ``inner`` once per group.

    This emulates a batch ``every_k`` times larger with the memory of one batch. Between real
    updates the output is zero, so parameters do not move.

    $$
    \bar g = \frac{1}{k}\sum_{j=1}^{k} g_j, \qquad
    u = \text{inner}(\bar g) \text{ every } k \text{ steps, else } 0
    $$

    The same as ``optax.MultiSteps(inner, every_k_schedule=k).gradient_transformation()``
    for an int ``k``.

    Args:
        inner: the optimizer applied to the averaged gradient.
        every_k: the group size $k \ge 1$: an int or an integer JAX array, also a traced one
            (no shape depends on it).
    """
    check_inner("inner", inner)
    _checks.count("every_k", every_k, minimum=1)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return AccumulateState(
            zero_count(), zero_count(), tree_zeros_like(params), inner.init(params)
        )

    def update_fn(updates, state, params=None, **extra_args):
        check_updates(updates, state.acc_grads)
        k = state.mini_step
        acc = jax.tree.map(
            lambda g, a: (
                None if g is None else (a + (g - a) / (k + 1).astype(a.dtype)).astype(a.dtype)
            ),
            updates,
            state.acc_grads,
            is_leaf=is_none,
        )
        emit = k + 1 >= every_k

        def apply(_):
            out, inner_state = inner.update(acc, state.inner_state, params, **extra_args)
            return (
                out,
                inner_state,
                tree_zeros_like(acc),
                zero_count(),
                increment(state.gradient_step),
            )

        def hold(_):
            return tree_zeros_like(updates), state.inner_state, acc, k + 1, state.gradient_step

        out, inner_state, acc, mini_step, gstep = jax.lax.cond(emit, apply, hold, None)
        return out, AccumulateState(mini_step, gstep, acc, inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["AccumulateState", "MaskedState", "accumulate_gradients", "masked"]
