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
    """Raise ``ValueError`` naming the paths that differ if ``updates`` and ``reference`` differ.

    Called at trace time (no runtime cost) by every transformation with per-parameter state
    (``reference`` is that state, ``what="optimizer state"``) and by the stateless ones when
    ``params`` are given (``what="parameters"``), so a gradient tree that does not match fails
    with a readable message instead of an opaque ``tree.map`` error.
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
    origin = " (built by init from the params)" if what == "optimizer state" else ""
    raise ValueError(f"gradient tree does not match the {what}{origin}: " + "; ".join(detail))


def get_hyperparam(state: Any, name: str) -> Any:
    """Read the current value of a hyperparameter recorded in an optimizer state.

    Transformations that accept schedules store the value they last applied in their state,
    under the argument's name: ``learning_rate``, ``weight_decay`` (`add_decayed_weights`),
    ``l2_strength`` / ``l1_strength`` (the ``strength`` of `add_l2_regularization` /
    `add_l1_regularization`), ``noise_std`` (`add_noise`). This finds the first field called
    ``name`` anywhere in a (possibly chained or nested) state; a missing name raises
    ``KeyError`` listing the names that are recorded.

    ``name="effective_learning_rate"`` gives the rate the updates are actually scaled by: the
    recorded ``learning_rate`` times the ``lr_scale`` of a reduce-on-plateau rule in the
    chain (:func:`gdjax.reduce_on_plateau`, which ``gdjax.fit(reduce_on_plateau=...)``
    appends); without such a rule it is ``learning_rate`` itself.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.sgd(gdjax.schedules.exponential_decay(0.1, 10, 0.5))
        >>> params = {"w": jnp.zeros(2)}
        >>> state = opt.init(params)
        >>> _, state = opt.update({"w": jnp.ones(2)}, state, params)
        >>> round(float(gdjax.get_hyperparam(state, "learning_rate")), 6)
        0.1
    """
    if name == EFFECTIVE_LEARNING_RATE:
        return _effective_learning_rate(state)
    found = _find_field(state, name)
    if found is _MISSING:
        recorded = sorted(_recorded_names(state))
        raise KeyError(
            f"no hyperparameter named {name!r} is recorded in this optimizer state; "
            f"recorded: {', '.join(recorded) if recorded else 'none'}"
        )
    return found


_MISSING = object()
#: The name under which `get_hyperparam` returns the learning rate times the plateau scale.
EFFECTIVE_LEARNING_RATE = "effective_learning_rate"


def _effective_learning_rate(state: Any) -> Any:
    rate = _find_field(state, "learning_rate")
    if rate is _MISSING:
        raise KeyError(
            "no learning_rate is recorded in this optimizer state (a constant rate is not "
            "recorded, as in optax): the effective rate is your constant rate times "
            "get_hyperparam(state, 'lr_scale')"
        )
    scale = _find_field(state, "lr_scale")
    return rate if scale is _MISSING else rate * scale


# Fields of gdjax/optax states that are counters or per-parameter statistics, not hyperparameters.
_NOT_HYPERPARAMS = frozenset(
    {"count", "mu", "nu", "nu_max", "trace", "velocity", "sum_of_squares", "e_g", "e_x"}
    | {"rng_key", "mini_step", "gradient_step", "notfinite_count", "last_finite"}
    | {"total_notfinite"}
    | {"t", "m", "n", "g", "v", "v_row", "v_col", "ema", "grad_acc", "found_nan"}
)


def _recorded_names(node: Any) -> set[str]:
    """Names under which scalar hyperparameter values are recorded anywhere in a state."""
    names: set[str] = set()
    if hasattr(node, "_fields"):
        for field, value in zip(node._fields, node, strict=True):
            if field == "hyperparams" and isinstance(value, dict):  # optax.inject_hyperparams
                names |= set(value)
            elif field not in _NOT_HYPERPARAMS and getattr(value, "shape", None) == ():
                names.add(field)
        children = list(node)
    elif isinstance(node, (tuple, list)):
        children = list(node)
    elif isinstance(node, dict):
        children = list(node.values())
    else:
        children = []
    for child in children:
        names |= _recorded_names(child)
    return names


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
