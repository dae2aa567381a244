r"""Combinators: name the parts of a chain, give parameter groups their own optimizers, freeze some.

`partition` is how layer-wise settings are written: each group gets a whole optimizer, and
since gdjax hyperparameters are data, a group's learning rate may be a traced value, so a
layer-wise learning-rate decay $\alpha_l = \alpha\,\delta^{L-l}$ can be swept with
``jax.vmap`` over $\delta$ (see the combinators page of the docs).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_inner, check_params
from gdjax.transforms.wrappers import masked
from gdjax.tree_utils import is_none


def named_chain(
    *transforms: tuple[str, optax.GradientTransformation],
) -> optax.GradientTransformationExtraArgs:
    """`gdjax.chain` whose state is a dict keyed by the given names (``state["adam"]``).

    Args:
        *transforms: ``(name, transformation)`` pairs; names must be distinct strings.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.named_chain(("clip", gdjax.clip(1.0)), ("adam", gdjax.adam(0.1)))
        >>> state = opt.init({"w": jnp.zeros(2)})
        >>> list(state), int(state["adam"][0].count)
        (['clip', 'adam'], 0)
    """
    names = []
    for pair in transforms:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"named_chain takes (name, transformation) pairs; got {pair!r}")
        check_inner(f"named_chain[{pair[0]!r}]", pair[1])
        names.append(pair[0])
    if len(set(names)) != len(names):
        raise ValueError(f"named_chain needs distinct names; got {names}")
    parts = [(name, optax.with_extra_args_support(t)) for name, t in transforms]

    def init_fn(params):
        return collections.OrderedDict((name, t.init(params)) for name, t in parts)

    def update_fn(updates, state, params=None, **extra_args):
        new_state = collections.OrderedDict()
        for name, t in parts:
            updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def broadcast_prefix(prefix: Any, tree: Any, what: str) -> Any:
    """Copy each leaf of ``prefix`` onto every leaf of the matching subtree of ``tree``."""
    try:
        return jax.tree.map(
            lambda value, sub: jax.tree.map(lambda _: value, sub, is_leaf=is_none),
            prefix,
            tree,
            is_leaf=is_none,
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{what} must have the parameters' tree structure or a prefix of it: {err}"
        ) from None


class PartitionState(NamedTuple):
    """State of `partition`: one (masked) inner state per group label."""

    inner_states: Mapping[Hashable, Any]


def partition(
    transforms: Mapping[Hashable, optax.GradientTransformation],
    param_labels: Any | Callable[[Any], Any],
    *,
    mask_compatible_extra_args: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""Apply a different transformation to each group of parameters.

    Every parameter carries a label; the parameters labelled $k$ are updated by
    ``transforms[k]`` alone (through `masked`), as if the other parameters did not exist:

    $$
    u^{(i)}_t = T_{\ell(i)}\big(g^{(\ell(i))}_t\big)^{(i)}, \qquad
    g^{(k)}_t = \{g^{(j)}_t : \ell(j) = k\}
    $$

    Each group's optimizer keeps its own state and hyperparameters, which may be traced
    values (``jax.vmap`` over a layer-wise learning-rate decay works).

    Args:
        transforms: label -> transformation.
        param_labels: a tree of labels with the parameters' structure (or a prefix of it), or
            a function ``params -> such a tree``.
        mask_compatible_extra_args: also mask extra ``update`` arguments that have the
            gradients' structure; a Python bool.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
        >>> opt = gdjax.partition({"w": gdjax.sgd(0.1), "b": gdjax.sgd(0.0)}, {"w": "w", "b": "b"})
        >>> u, _ = opt.update(params, opt.init(params), params)
        >>> u["w"].tolist(), u["b"].tolist()
        ([-0.10000000149011612, -0.10000000149011612], [-0.0, -0.0])
    """
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"transforms must be a non-empty mapping label -> transformation; got {transforms!r}"
        )
    for label, t in transforms.items():
        check_inner(f"transforms[{label!r}]", t)
    _checks.static_bool("mask_compatible_extra_args", mask_compatible_extra_args)

    def labels_for(tree):
        labels = param_labels(tree) if callable(param_labels) else param_labels
        full = broadcast_prefix(labels, tree, "param_labels")
        unknown = set(jax.tree.leaves(full)) - set(transforms)
        if unknown:
            raise ValueError(
                f"partition: labels {sorted(map(repr, unknown))} have no transformation; "
                f"transforms has {sorted(map(repr, transforms))}"
            )
        return full

    def group(label, labels):
        mask = jax.tree.map(lambda lab: lab == label, labels)
        return masked(
            transforms[label], mask, mask_compatible_extra_args=mask_compatible_extra_args
        )

    def init_fn(params):
        labels = labels_for(params)
        return PartitionState({k: group(k, labels).init(params) for k in transforms})

    def update_fn(updates, state, params=None, **extra_args):
        check_params(updates, params)
        labels = labels_for(updates if params is None else params)
        inner = {}
        for k in transforms:
            updates, inner[k] = group(k, labels).update(
                updates, state.inner_states[k], params, **extra_args
            )
        return updates, PartitionState(inner)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


#: optax's older name for `partition`.
multi_transform = partition


def _zero_leaves(mask_tree: Any) -> optax.GradientTransformation:
    """Stateless: zero the leaves where ``mask_tree`` (a prefix of the updates) is true."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        mask = broadcast_prefix(mask_tree, updates, "mask")
        out = jax.tree.map(
            lambda u, m: None if u is None else (jnp.zeros_like(u) if m else u),
            updates,
            mask,
            is_leaf=is_none,
        )
        return out, state

    return optax.GradientTransformation(init_fn, update_fn)


def _check_static_mask(name: str, mask: Any) -> None:
    for leaf in jax.tree.leaves(mask):
        if _checks.is_traced(leaf):
            raise TypeError(f"{name} must be static (Python bools), not traced values")


def freeze(mask: bool | Any) -> optax.GradientTransformation:
    r"""Zero the updates of the parameters where ``mask`` is true: $u^{(i)} = 0$ if frozen.

    Chain it after an optimizer to hold some parameters constant (their optimizer state still
    evolves; `selective_transform` skips them instead).

    Args:
        mask: one bool for all parameters, or a tree of bools with the parameters' structure
            or a prefix of it (static: Python bools).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.chain(gdjax.sgd(1.0), gdjax.freeze({"w": False, "b": True}))
        >>> p = {"w": jnp.ones(1), "b": jnp.ones(1)}
        >>> u, _ = opt.update(p, opt.init(p), p)
        >>> float(u["w"][0]), float(u["b"][0])
        (-1.0, 0.0)
    """
    _check_static_mask("mask", mask)
    return _zero_leaves(mask)


def selective_transform(
    optimizer: optax.GradientTransformation, *, freeze_mask: bool | Any
) -> optax.GradientTransformationExtraArgs:
    """Run ``optimizer`` on the trainable parameters only; frozen ones get zero updates.

    The same as ``partition({"train": optimizer, "freeze": <zero updates>}, labels)``: the
    optimizer's state is built for the trainable parameters alone.

    Args:
        optimizer: the optimizer of the trainable parameters.
        freeze_mask: ``True`` where frozen: one bool or a (prefix) tree of bools, static.
    """
    check_inner("optimizer", optimizer)
    _check_static_mask("freeze_mask", freeze_mask)

    def labels(params):
        del params
        return jax.tree.map(lambda m: "freeze" if m else "train", freeze_mask)

    return partition({"train": optimizer, "freeze": _zero_leaves(True)}, labels)


__all__ = [
    "PartitionState",
    "freeze",
    "multi_transform",
    "named_chain",
    "partition",
    "selective_transform",
]
