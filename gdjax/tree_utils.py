"""Small pytree helpers shared by the transformations and the training engine."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax


def is_none(x: Any) -> bool:
    """``is_leaf`` predicate that treats ``None`` as a leaf (so maps can pass it through)."""
    return x is None


def tree_map_none(fn, tree: Any, *rest: Any) -> Any:
    """``jax.tree.map`` that passes ``None`` leaves of ``tree`` through unchanged."""
    return jax.tree.map(
        lambda x, *ys: None if x is None else fn(x, *ys), tree, *rest, is_leaf=is_none
    )


def tree_zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros with the structure, shapes and (unless ``dtype`` is given) dtypes of ``tree``."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def tree_global_norm(tree: Any) -> jax.Array:
    """The L2 norm of all leaves together, ``sqrt(sum_i ||x_i||^2)``."""
    return optax.tree.norm(tree)


def tree_cast_like(tree: Any, like: Any) -> Any:
    """Cast each leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(
        lambda x, y: None if x is None else x.astype(y.dtype), tree, like, is_leaf=is_none
    )


def check_same_structure(updates: Any, reference: Any, what: str = "optimizer state") -> None:
    """Raise ``ValueError`` naming the first mismatch if ``updates`` and ``reference`` differ.

    Called at trace time by every transformation with per-parameter state, so a gradient tree
    that does not match the parameters the state was built for fails with a readable message
    instead of an opaque ``tree.map`` error.
    """
    u_def = jax.tree.structure(updates, is_leaf=is_none)
    r_def = jax.tree.structure(reference, is_leaf=is_none)
    if u_def == r_def:
        return
    u_paths = {
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_leaves_with_path(updates, is_leaf=is_none)
    }
    r_paths = {
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_leaves_with_path(reference, is_leaf=is_none)
    }
    missing = sorted(r_paths - u_paths)
    extra = sorted(u_paths - r_paths)
    detail = []
    if missing:
        detail.append(f"missing from the gradients: {', '.join(missing[:5])}")
    if extra:
        detail.append(f"not in the {what}: {', '.join(extra[:5])}")
    if not detail:
        detail.append(f"gradients have structure {u_def}, {what} has {r_def}")
    raise ValueError(
        f"gradient tree does not match the {what} (built by init from the params): "
        + "; ".join(detail)
    )


def get_hyperparam(state: Any, name: str) -> Any:
    """Read the current value of a hyperparameter recorded in an optimizer state.

    Transformations that accept schedules store the value they last applied (for example
    ``learning_rate`` or ``weight_decay``) in their state. This finds the first field called
    ``name`` anywhere in a (possibly chained or nested) state.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.sgd(gdjax.schedules.exponential_decay(0.1, 10, 0.5))
        >>> params = {"w": jnp.zeros(2)}
        >>> state = opt.init(params)
        >>> _, state = opt.update({"w": jnp.ones(2)}, state, params)
        >>> round(float(gdjax.get_hyperparam(state, "learning_rate")), 6)
        0.1
    """
    found = _find_field(state, name)
    if found is _MISSING:
        raise KeyError(f"no hyperparameter named {name!r} is recorded in this optimizer state")
    return found


_MISSING = object()


def _find_field(node: Any, name: str) -> Any:
    if hasattr(node, "_fields"):  # NamedTuple state
        if name in node._fields:
            return getattr(node, name)
        children = list(node)
    elif isinstance(node, (tuple, list)):
        children = list(node)
    elif isinstance(node, dict):
        if name in node:
            return node[name]
        children = list(node.values())
    else:
        children = []
    for child in children:
        found = _find_field(child, name)
        if found is not _MISSING:
            return found
    return _MISSING
