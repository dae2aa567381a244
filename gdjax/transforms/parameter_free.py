r"""Step sizes computed from the run itself: Polyak's step and DoG (distance over gradients).

Neither needs a tuned learning rate: Polyak's step uses the loss value and a lower bound on it;
DoG uses how far the parameters have moved from where they started. `ProdigyState`, the state
of `gdjax.prodigy` (Adam with a self-estimated learning rate), lives here too.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_updates, scale_tree
from gdjax.transforms._moments import abs_sq
from gdjax.tree_utils import is_none


def _sq_norm(tree: Any) -> jax.Array:
    leaves = [jnp.sum(abs_sq(x)) for x in jax.tree.leaves(tree)]
    return sum(leaves[1:], leaves[0]) if leaves else jnp.zeros([])


_VARIANTS = ("sps", "sps+")


def scale_by_polyak(
    f_min: float | jax.Array = 0.0,
    max_learning_rate: float | jax.Array = 1.0,
    eps: float | jax.Array = 0.0,
    variant: str = "sps",
) -> optax.GradientTransformationExtraArgs:
    r"""Scale by Polyak's step size (Loizou et al., 2021); ``update`` needs ``value=f(x)``.

    $$
    u_t = \min\left(\frac{f(x_t) - f^\star}{\|g_t\|^2 + \epsilon}, \gamma_{\max}\right) g_t
    $$

    ($u_t = 0$ when $\|g_t\|^2 + \epsilon$ is below float64's machine epsilon). With
    ``variant="sps+"`` (Garrigos et al., 2023) the gap is $\max(f(x_t) - f^\star, 0)$.

    Args:
        f_min: $f^\star$, a lower bound on the loss (0 for models that can fit the data).
        max_learning_rate: $\gamma_{\max} \ge 0$.
        eps: $\epsilon \ge 0$.
        variant: ``"sps"`` or ``"sps+"``.

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> opt = gdjax.scale_by_polyak()
        >>> g = {"w": jnp.array([2.0, 0.0])}
        >>> u, _ = opt.update(g, opt.init(g), value=jnp.asarray(2.0))  # step 2 / 4
        >>> u["w"].tolist()
        [1.0, 0.0]
    """
    _checks.check_hyperparam("f_min", f_min)
    _checks.non_negative("max_learning_rate", max_learning_rate)
    _checks.non_negative("eps", eps)
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}; got {variant!r}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        if value is None:
            raise TypeError(
                "scale_by_polyak needs the loss: call update(grads, state, params, value=loss)"
            )
        sq = _sq_norm(updates)
        gap = jnp.asarray(value - f_min).astype(sq.dtype)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        step = jnp.where(
            sq + eps <= jnp.finfo(float).eps,
            0.0,
            jnp.minimum(gap / (sq + eps), max_learning_rate),
        )
        return scale_tree(step, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class DoGState(NamedTuple):
    """State of `scale_by_dog`.

    Attributes:
        is_init_step: whether no step has been taken yet.
        init_params: $x_0$.
        max_dist: $\\bar r_t = \\max(r_\\epsilon, \\max_{k \\le t}\\|x_k - x_0\\|)$.
        sum_sq_norm_grads: $G_t = \\sum_{k \\le t}\\|g_k\\|^2$.
    """

    is_init_step: jax.Array
    init_params: Any
    max_dist: jax.Array
    sum_sq_norm_grads: jax.Array


_INIT_STEPS = ("distance", "learning_rate", "heuristic")


def scale_by_dog(
    init_step: tuple[Literal["distance", "learning_rate", "heuristic"], float | jax.Array],
    eps: float | jax.Array = 1e-8,
) -> optax.GradientTransformation:
    r"""DoG's step size (Ivgi et al., 2023): the largest distance travelled over the gradient norms.

    $$
    \bar r_t = \max\Big(r_\epsilon, \max_{k \le t}\|x_k - x_0\|\Big), \qquad
    \eta_t = \frac{\bar r_t}{\sqrt{\sum_{k \le t}\|g_k\|^2 + \epsilon}}, \qquad u_t = \eta_t g_t
    $$

    (norms over the whole parameter tree). ``init_step`` sets the first step:
    ``("distance", r)`` gives $r_\epsilon = r$; ``("heuristic", a)`` gives
    $r_\epsilon = a(1 + \|x_0\|)$ (``init`` must then see the real parameters);
    ``("learning_rate", e)`` uses $\eta_1 = e$ and $r_\epsilon = 0$. ``update`` needs ``params``.
    Follow it with `scale_by_learning_rate` (a multiplier, 1 by default in `gdjax.dog`).

    Args:
        init_step: ``(kind, value)`` with kind ``"distance"``, ``"learning_rate"`` or
            ``"heuristic"``.
        eps: $\epsilon \ge 0$.
    """
    if not (isinstance(init_step, tuple) and len(init_step) == 2):
        raise TypeError(f"init_step must be a pair (kind, value); got {init_step!r}")
    kind, value = init_step
    if kind not in _INIT_STEPS:
        raise ValueError(f"init_step's kind must be one of {_INIT_STEPS}; got {kind!r}")
    _checks.non_negative("init_step value", value)
    _checks.non_negative("eps", eps)

    def init_fn(params):
        dtype = optax.tree.dtype(params, "lowest")
        if kind == "distance":
            r_eps = value
        elif kind == "heuristic":
            r_eps = value * (1 + jnp.sqrt(_sq_norm(params)))
        else:
            r_eps = 0.0
        return DoGState(
            jnp.asarray(True), params, jnp.asarray(r_eps, dtype), jnp.asarray(0.0, dtype)
        )

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_dog needs params: call update(grads, state, params)")
        check_updates(updates, state.init_params)
        moved = jax.tree.map(lambda p, p0: p - p0, params, state.init_params)
        max_dist = jnp.maximum(state.max_dist, jnp.sqrt(_sq_norm(moved)))
        sum_sq = state.sum_sq_norm_grads + _sq_norm(updates)
        eta = max_dist / jnp.sqrt(sum_sq + eps)
        if kind == "learning_rate":
            eta = jnp.where(state.is_init_step, value, eta)
        out = jax.tree.map(
            lambda g: None if g is None else (eta * g).astype(g.dtype), updates, is_leaf=is_none
        )
        return out, DoGState(
            jnp.asarray(False),
            state.init_params,
            max_dist.astype(state.max_dist.dtype),
            sum_sq.astype(state.sum_sq_norm_grads.dtype),
        )

    return optax.GradientTransformation(init_fn, update_fn)


class ProdigyState(NamedTuple):
    """State of `gdjax.prodigy`.

    Attributes:
        exp_avg: $m_t$, the EMA of $d\\,g$.
        exp_avg_sq: $v_t$, the EMA of $d^2 g^2$.
        grad_sum: $s_t$.
        params0: $\\theta_0$.
        estim_lr: $d_t$, the estimated distance to the solution (the learning rate).
        numerator_weighted: $r_t$.
        count: steps taken.
        learning_rate: the schedule's value used at the last step.
    """

    exp_avg: Any
    exp_avg_sq: Any
    grad_sum: Any
    params0: Any
    estim_lr: jax.Array
    numerator_weighted: jax.Array
    count: jax.Array
    learning_rate: jax.Array


__all__ = ["DoGState", "ProdigyState", "scale_by_dog", "scale_by_polyak"]
