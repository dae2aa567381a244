r"""Per-layer and whole-update rescalings: trust ratios (LARS, LAMB), block norms, centering.

Each parameter array is a "layer" (a block): these transformations compare the norm of a
layer's update with the norm of the layer itself, or normalize the whole update. Norms of
complex arrays use $|x|^2$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import abs_sq, as_arrays, check_params
from gdjax.tree_utils import tree_global_norm, tree_map_none


def _stateless(update_fn) -> optax.GradientTransformation:
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def _norm(x: jax.Array) -> jax.Array:
    """The L2 norm of a whole array (Frobenius for matrices)."""
    return jnp.sqrt(jnp.sum(abs_sq(x)))


def _safe(value: jax.Array, floor: jax.Array | float) -> jax.Array:
    """``value``, or ``floor`` where ``value <= floor`` (optax's ``safe_norm`` values)."""
    return jnp.where(value <= floor, floor, value)


def _needs_params(name: str, params) -> None:
    if params is None:
        raise ValueError(f"{name}: update needs `params`: call update(grads, state, params)")


def scale_by_trust_ratio(
    min_norm: float | jax.Array = 0.0,
    trust_coefficient: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
) -> optax.GradientTransformation:
    r"""Scale each layer's update by its trust ratio (You et al.: LARS, 2017; LAMB, 2019).

    For each parameter array $\theta_i$ with update $u_i$, norms floored at ``min_norm``:

    $$
    u_i \leftarrow u_i \cdot \frac{\eta\, \lVert\theta_i\rVert}{\lVert u_i\rVert + \epsilon}
    \qquad (\text{factor } 1 \text{ where either norm is } 0)
    $$

    so every layer moves by the same fraction of its own size, whatever its gradient scale.

    Args:
        min_norm: floor of both norms, $\ge 0$.
        trust_coefficient: $\eta \ge 0$.
        eps: $\epsilon \ge 0$, added to the update's norm.
    """
    _checks.non_negative("min_norm", min_norm)
    _checks.non_negative("trust_coefficient", trust_coefficient)
    _checks.non_negative("eps", eps)

    def scale_leaf(u, p):
        p_norm, u_norm = _safe(_norm(p), min_norm), _safe(_norm(u), min_norm)
        ratio = trust_coefficient * p_norm / (u_norm + eps)
        ratio = jnp.where((p_norm == 0) | (u_norm == 0), 1.0, ratio)
        return (u * ratio).astype(u.dtype)

    def update_fn(updates, state, params=None):
        _needs_params("scale_by_trust_ratio", params)
        check_params(updates, params)
        return tree_map_none(scale_leaf, as_arrays(updates), params), state

    return _stateless(update_fn)


def scale_by_param_block_norm(min_scale: float | jax.Array = 1e-3) -> optax.GradientTransformation:
    r"""Scale each layer's update by the layer's norm: $u_i \leftarrow u_i \max(\lVert\theta_i\rVert, s)$.

    (The floor: the norm is replaced by $s$ where it is at most $s$.)

    Args:
        min_scale: $s \ge 0$.
    """
    _checks.non_negative("min_scale", min_scale)

    def update_fn(updates, state, params=None):
        _needs_params("scale_by_param_block_norm", params)
        check_params(updates, params)
        return tree_map_none(
            lambda u, p: (u * _safe(_norm(p), min_scale)).astype(u.dtype),
            as_arrays(updates),
            params,
        ), state

    return _stateless(update_fn)


def scale_by_param_block_rms(min_scale: float | jax.Array = 1e-3) -> optax.GradientTransformation:
    r"""Scale each layer's update by the layer's root mean square (Adafactor's relative step).

    $$
    u_i \leftarrow u_i \cdot \max\!\Big(\sqrt{\operatorname{mean}|\theta_i|^2},\; s\Big)
    $$

    Args:
        min_scale: $s \ge 0$.
    """
    _checks.non_negative("min_scale", min_scale)

    def scale_leaf(u, p):
        rms = jnp.sqrt(jnp.mean(abs_sq(jnp.asarray(p))))
        return (u * _safe(rms, min_scale)).astype(u.dtype)

    def update_fn(updates, state, params=None):
        _needs_params("scale_by_param_block_rms", params)
        check_params(updates, params)
        return tree_map_none(scale_leaf, as_arrays(updates), params), state

    return _stateless(update_fn)


def normalize_by_update_norm(
    scale_factor: float | jax.Array = 1.0, eps: float | jax.Array = 1e-6
) -> optax.GradientTransformation:
    r"""Rescale the whole update to length ``scale_factor``: $u \leftarrow s\, u / (\lVert u\rVert + \epsilon)$.

    $\lVert u\rVert$ is the global norm over all leaves, so the direction is kept and only the
    length is fixed (normalized gradient descent).

    Args:
        scale_factor: $s$, the target length (a negative value flips the direction).
        eps: $\epsilon \ge 0$.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.normalize_by_update_norm(eps=0.0).update({"w": jnp.array([3.0, 4.0])}, None)
        >>> [round(x, 6) for x in u["w"].tolist()]
        [0.6, 0.8]
    """
    _checks.check_hyperparam("scale_factor", scale_factor)
    _checks.non_negative("eps", eps)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        updates = as_arrays(updates)
        norm = (tree_global_norm(updates) + eps) / scale_factor
        return tree_map_none(lambda u: (u / norm).astype(u.dtype), updates), state

    return _stateless(update_fn)


def centralize() -> optax.GradientTransformation:
    r"""Gradient centralization (Yong et al., 2020): subtract each output unit's mean gradient.

    For a parameter array with two or more axes, the mean over all axes but the first is
    subtracted, $g \leftarrow g - \operatorname{mean}_{1,\dots}(g)$; vectors and scalars pass
    unchanged.
    """

    def centre(g):
        if g.ndim < 2:
            return g
        return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        return tree_map_none(centre, as_arrays(updates)), state

    return _stateless(update_fn)


__all__ = [
    "centralize",
    "normalize_by_update_norm",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_trust_ratio",
]
