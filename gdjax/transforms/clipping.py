r"""Gradient clipping, the standard cure for exploding gradients; per-example clipping for DP-SGD."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import abs_sq, as_arrays, check_params
from gdjax.tree_utils import is_none, tree_global_norm


def _stateless(update):
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def clip(max_delta: float | jax.Array) -> optax.GradientTransformation:
    r"""Clip each gradient element to $[-\delta, \delta]$ ("clip by value").

    Args:
        max_delta: $\delta \ge 0$.
    """
    _checks.non_negative("max_delta", max_delta)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        out = jax.tree.map(
            lambda g: None if g is None else jnp.clip(g, -max_delta, max_delta).astype(g.dtype),
            updates,
            is_leaf=is_none,
        )
        return out, state

    return _stateless(update_fn)


def clip_by_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale each leaf (each parameter array) separately so its L2 norm is at most ``max_norm``.

    $$
    g_i \leftarrow g_i \cdot \min\!\left(1, \frac{c}{\lVert g_i \rVert_2}\right)
    $$

    Args:
        max_norm: $c \ge 0$.
    """
    _checks.non_negative("max_norm", max_norm)

    def _clip(g):
        g = jnp.asarray(g)
        wide = g.astype(jnp.promote_types(g.dtype, jnp.float32))  # bfloat16 sums in float32
        norm = jnp.sqrt(jnp.sum(abs_sq(wide)))
        factor = jnp.where(norm > max_norm, max_norm / jnp.maximum(norm, 1e-30), 1.0)
        return (g * factor).astype(g.dtype)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        out = jax.tree.map(lambda g: None if g is None else _clip(g), updates, is_leaf=is_none)
        return out, state

    return _stateless(update_fn)


def clip_by_global_norm(max_norm: float | jax.Array) -> optax.GradientTransformation:
    r"""Rescale the whole gradient so its global L2 norm is at most ``max_norm`` (Pascanu et al.).

    $$
    \lVert g \rVert = \sqrt{\textstyle\sum_i \lVert g_i \rVert_2^2}, \qquad
    g \leftarrow g \cdot \frac{c}{\max(c, \lVert g \rVert)}
    $$

    The direction of the step is kept; only its length is capped.

    Args:
        max_norm: $c \ge 0$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.clip_by_global_norm(1.0).update({"w": jnp.array([3.0, 4.0])}, None)
        >>> u["w"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    _checks.non_negative("max_norm", max_norm)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        g_norm = tree_global_norm(updates)
        trigger = g_norm < max_norm
        out = jax.tree.map(
            lambda t: (
                None
                if t is None
                else jnp.where(trigger, t, (t / g_norm.astype(t.dtype)) * max_norm).astype(t.dtype)
            ),
            updates,
            is_leaf=is_none,
        )
        return out, state

    return _stateless(update_fn)


def clip_by_block_rms(threshold: float | jax.Array) -> optax.GradientTransformation:
    r"""Clip each parameter array's update to a root mean square of at most ``threshold``.

    $$
    u_i \leftarrow \frac{u_i}{\max\!\left(1, \sqrt{\operatorname{mean}|u_i|^2} / c\right)}
    $$

    (Adafactor's update clipping.)

    Args:
        threshold: $c \ge 0$.
    """
    _checks.non_negative("threshold", threshold)

    def clip_leaf(u):
        rms = jnp.sqrt(jnp.mean(abs_sq(u)))
        return (u / jnp.maximum(1.0, rms / threshold)).astype(u.dtype)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        out = jax.tree.map(
            lambda u: None if u is None else clip_leaf(u), as_arrays(updates), is_leaf=is_none
        )
        return out, state

    return _stateless(update_fn)


def _unit_norms(x: jax.Array, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    r"""The norm of each unit of a parameter array, broadcast back to its shape (as optax's).

    A unit is what one output neuron owns: for scalars and vectors the whole array; for
    ``(in, out)`` matrices and ``(heads, in, out)`` arrays a column (a sum over axis 0); for
    convolution kernels (``HWIO``, ``DHWIO``) all axes but the last. ``axis`` names the summed
    axes explicitly (needed for other shapes).
    """
    x = jnp.asarray(x)
    if axis is not None:
        summed = axis
    elif jnp.squeeze(x).ndim <= 1:
        summed = None
    elif x.ndim in (2, 3):
        summed = 0
    elif x.ndim in (4, 5):
        summed = tuple(range(x.ndim - 1))
    else:
        raise ValueError(
            f"adaptive_grad_clip: a parameter of shape {x.shape} has no default unit; pass "
            "axis= (the axes to take each unit's norm over)"
        )
    squared = jnp.sum(abs_sq(x), axis=summed, keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(squared), x.shape)


def adaptive_grad_clip(
    clipping: float | jax.Array,
    eps: float | jax.Array = 1e-3,
    axis: int | tuple[int, ...] | None = None,
) -> optax.GradientTransformation:
    r"""Adaptive gradient clipping (Brock et al., 2021): clip each unit relative to its weights.

    For each unit (see below) with weights $w$ and gradient $g$:

    $$
    g \leftarrow \begin{cases}
    g & \lVert g\rVert < \lambda \max(\lVert w\rVert, \epsilon) \\
    g\, \dfrac{\lambda \max(\lVert w\rVert, \epsilon)}{\max(\lVert g\rVert, 10^{-6})} & \text{otherwise}
    \end{cases}
    $$

    Args:
        clipping: $\lambda \ge 0$, the largest ratio of gradient norm to weight norm.
        eps: $\epsilon \ge 0$, the smallest weight norm used (so zero-initialized units can
            still move).
        axis: the axes each unit's norm is taken over; ``None`` picks them by the array's
            number of dimensions (static).
    """
    _checks.non_negative("clipping", clipping)
    _checks.non_negative("eps", eps)

    def clip_leaf(g, p):
        g_norm = _unit_norms(g, axis)
        max_norm = clipping * jnp.maximum(_unit_norms(p, axis), eps)
        clipped = g * (max_norm / jnp.maximum(g_norm, 1e-6))
        return jnp.where(g_norm < max_norm, g, clipped).astype(g.dtype)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "adaptive_grad_clip: update needs `params`: call update(grads, state, params)"
            )
        check_params(updates, params)
        out = jax.tree.map(
            lambda g, p: None if g is None else clip_leaf(g, p),
            as_arrays(updates),
            params,
            is_leaf=is_none,
        )
        return out, state

    return _stateless(update_fn)


def _check_batched(name: str, grads) -> None:
    leaves = jax.tree.leaves(grads)
    if not leaves:
        raise ValueError(f"{name}: grads has no arrays")
    sizes = {jnp.shape(g)[0] if jnp.ndim(g) >= 1 else None for g in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            f"{name} expects every gradient leaf to have the same batch (example) axis first; "
            f"got shapes {jax.tree.map(jnp.shape, grads)}"
        )


def per_example_global_norm_clip(
    grads: Any, l2_norm_clip: float | jax.Array
) -> tuple[Any, jax.Array]:
    r"""Clip each example's gradient to global norm ``l2_norm_clip``, then sum over examples.

    The building block of DP-SGD (Abadi et al., 2016). ``grads`` holds per-example gradients,
    the example index first in every leaf. With $\lVert g_j\rVert$ example $j$'s norm over
    all leaves:

    $$
    \bar g = \sum_j g_j \min\!\left(1, \frac{C}{\lVert g_j\rVert}\right)
    $$

    Not a transformation: a function, as in optax.

    Args:
        grads: per-example gradients (leading axis: examples).
        l2_norm_clip: $C \ge 0$.

    Returns:
        ``(summed, num_clipped)``: the clipped sum (the tree without the example axis) and
        how many examples were scaled down.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> total, n = gdjax.per_example_global_norm_clip({"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}, 1.0)
        >>> [round(x, 6) for x in total["w"].tolist()], int(n)
        ([0.9, 1.2], 1)
    """
    _checks.non_negative("l2_norm_clip", l2_norm_clip)
    _check_batched("per_example_global_norm_clip", grads)
    norms = jax.vmap(tree_global_norm)(grads)
    factors = jnp.nan_to_num(jnp.minimum(l2_norm_clip / norms, 1.0), nan=1.0)
    summed = jax.tree.map(lambda g: jnp.tensordot(factors, g, axes=1), grads)
    return summed, jnp.sum(factors < 1.0)


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: float | jax.Array, uniform: bool = True
) -> tuple[Any, Any]:
    r"""Per-example clipping layer by layer: each leaf gets its own share of the norm budget.

    Leaf $i$ of $L$ (with $n_i$ entries per example, $N = \sum_i n_i$) is clipped per example
    with `per_example_global_norm_clip` to

    $$
    C_i = C\sqrt{1/L} \ \ (\texttt{uniform=True}) \qquad\text{or}\qquad C_i = C\sqrt{n_i/N},
    $$

    so that the clipped example's global norm is at most $C$.

    Args:
        grads: per-example gradients (leading axis: examples).
        global_l2_norm_clip: $C \ge 0$.
        uniform: share the budget equally (else by size); a Python bool.

    Returns:
        ``(summed, num_clipped)``: two trees with ``grads``'s structure, the clipped sums and
        each leaf's number of clipped examples.
    """
    _checks.non_negative("global_l2_norm_clip", global_l2_norm_clip)
    _checks.static_bool("uniform", uniform)
    _check_batched("per_example_layer_norm_clip", grads)
    leaves, treedef = jax.tree.flatten(grads)
    sizes = [g[0].size for g in leaves]
    shares = [1.0 / len(leaves)] * len(leaves) if uniform else [n / sum(sizes) for n in sizes]
    results = [
        per_example_global_norm_clip(g, global_l2_norm_clip * share**0.5)
        for g, share in zip(leaves, shares, strict=True)
    ]
    summed, counts = zip(*results, strict=True)
    return treedef.unflatten(summed), treedef.unflatten(counts)
