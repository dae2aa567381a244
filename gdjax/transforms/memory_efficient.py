r"""Second moments that cost less than Adam's: NovoGrad (one per layer) and SM3 (one per row/column).

Adam keeps a second-moment estimate per parameter. NovoGrad keeps one scalar per parameter
array (the EMA of the layer's squared gradient norm); SM3 keeps, for an $n \times m$ matrix,
$n + m$ numbers whose minimum bounds each entry's accumulated squared gradient.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import check_updates, increment, zero_count
from gdjax.transforms._moments import abs_sq
from gdjax.tree_utils import is_none, tree_zeros_like


class ScaleByNovogradState(NamedTuple):
    """State of `scale_by_novograd`.

    Attributes:
        count: number of updates so far.
        mu: the momentum of normalized gradients (one array per parameter array).
        nu: the EMA of each layer's squared gradient norm (one scalar per parameter array).
    """

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_novograd(
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.25,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    weight_decay: float | jax.Array = 0.0,
    mu_dtype: Any = None,
) -> optax.GradientTransformation:
    r"""NovoGrad's layer-wise normalized momentum (Ginsburg et al., 2019).

    For each parameter array $l$ (a layer) with gradient $g^l_t$:

    $$
    \nu^l_t = \begin{cases} \|g^l_1\|^2 & t = 1 \\
    \beta_2 \nu^l_{t-1} + (1-\beta_2)\|g^l_t\|^2 & t > 1 \end{cases}, \qquad
    m^l_t = \beta_1 m^l_{t-1} + \frac{g^l_t}{\sqrt{\nu^l_t + \epsilon_{root}} + \epsilon}
    + \lambda\,\theta^l_t
    $$

    ($m^l_0 = 0$) and $u_t = m_t$. The second moment is one scalar per array, so the state is
    about half of Adam's.

    Args:
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon \ge 0$, outside the root.
        eps_root: $\epsilon_{root} \ge 0$, inside the root.
        weight_decay: $\lambda \ge 0$ (needs ``params`` in ``update`` when not 0).
        mu_dtype: dtype of the momentum (default: the parameters').
    """
    _checks.decay_rate("b1", b1)
    _checks.decay_rate("b2", b2)
    _checks.non_negative("eps", eps)
    _checks.non_negative("eps_root", eps_root)
    _checks.non_negative("weight_decay", weight_decay)
    decays = not (isinstance(weight_decay, (int, float)) and weight_decay == 0)

    def init_fn(params):
        mu = tree_zeros_like(params, dtype=mu_dtype)
        nu = jax.tree.map(lambda p: jnp.zeros([], jnp.finfo(p.dtype).dtype), params)
        return ScaleByNovogradState(zero_count(), mu, nu)

    def update_fn(updates, state, params=None):
        check_updates(updates, state.mu)
        if params is None:
            if decays:
                raise ValueError(
                    "scale_by_novograd with weight_decay != 0 needs params in update(...)"
                )
            params = jax.tree.map(lambda _: 0.0, updates, is_leaf=is_none)
        count = increment(state.count)
        first = count == 1

        def new_nu(g, n):
            sq = jnp.sum(abs_sq(g))
            return jnp.where(first, sq, (1 - b2) * sq + b2 * n).astype(n.dtype)

        nu = jax.tree.map(
            lambda g, n: None if g is None else new_nu(g, n), updates, state.nu, is_leaf=is_none
        )

        def new_mu(g, p, m, n):
            step = g / (jnp.sqrt(n + eps_root) + eps) + weight_decay * p
            return jnp.where(first, step, b1 * m + step).astype(m.dtype)

        mu = jax.tree.map(
            lambda g, p, m, n: None if g is None else new_mu(g, p, m, n),
            updates,
            params,
            state.mu,
            nu,
            is_leaf=is_none,
        )
        out = jax.tree.map(
            lambda g, m: None if g is None else m.astype(g.dtype), updates, mu, is_leaf=is_none
        )
        return out, ScaleByNovogradState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class ScaleBySM3State(NamedTuple):
    """State of `scale_by_sm3`.

    Attributes:
        mu: per parameter array, a list with one accumulator vector per axis (for a scalar or a
            vector, the array's own shape).
        nu: the momentum of the scaled gradients.
    """

    mu: Any
    nu: Any


def _cover_shapes(p: jax.Array) -> list[tuple[int, ...]]:
    """One accumulator per axis for arrays of rank >= 2; a full-shape one for scalars/vectors."""
    if p.ndim < 2:
        return [p.shape]
    return [(n,) for n in p.shape]


def _broadcast_axis(v: jax.Array, axis: int, ndim: int) -> jax.Array:
    return v.reshape([1] * axis + [v.shape[0]] + [1] * (ndim - axis - 1))


def _new_gradient_weight(b2: Any) -> Any:
    """$c$ of `scale_by_sm3`: 1 for running sums ($\\beta_2 = 1$), else $1 - \\beta_2$."""
    if isinstance(b2, (int, float)):
        return 1.0 if b2 == 1.0 else 1.0 - b2
    return jnp.where(b2 == 1.0, 1.0, 1.0 - b2)


def scale_by_sm3(
    b1: float | jax.Array = 0.9, b2: float | jax.Array = 1.0, eps: float | jax.Array = 1e-8
) -> optax.GradientTransformation:
    r"""SM3-II's memory-efficient adaptive scaling (Anil et al., 2019).

    For an array of rank $k \ge 2$ the cover is its rows, columns, ... (one accumulator vector
    $\mu^{(a)}$ per axis $a$). Each entry $i$ takes the smallest accumulator that covers it:

    $$
    \nu_t(i) = c\, g_t(i)^2 + \beta_2 \min_{a} \mu^{(a)}_{t-1}(i_a), \qquad
    \mu^{(a)}_t(j) = \max_{i:\, i_a = j} \nu_t(i),
    $$

    with $c = 1$ if $\beta_2 = 1$ (the paper's sums) else $1-\beta_2$. Then

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1)\,\frac{g_t}{\sqrt{\nu_t + \epsilon}}
    \quad (0 \text{ where } \nu_t = 0), \qquad u_t = m_t.
    $$

    Scalars and vectors keep a full accumulator ($\nu_t = c g_t^2 + \beta_2\nu_{t-1}$, i.e.
    AdaGrad); ``optax.scale_by_sm3`` raises ``IndexError`` on a scalar parameter, gdjax treats
    it like a one-element vector. Complex parameters are rejected, as in optax.

    Args:
        b1: momentum $\beta_1 \in [0, 1)$.
        b2: accumulator decay $\beta_2 \in [0, 1]$ (1: the paper's running sums).
        eps: $\epsilon \ge 0$, inside the root.
    """
    _checks.decay_rate("b1", b1)
    _checks.check_range("b2", b2, low=0.0, high=1.0)
    _checks.non_negative("eps", eps)
    coeff = _new_gradient_weight(b2)

    def init_fn(params):
        for path, p in jax.tree_util.tree_leaves_with_path(params):
            if jnp.iscomplexobj(p):
                raise ValueError(
                    f"scale_by_sm3 does not support complex parameters; "
                    f"{jax.tree_util.keystr(path)} is {p.dtype}"
                )
        mu = jax.tree.map(lambda p: [jnp.zeros(s, p.dtype) for s in _cover_shapes(p)], params)
        return ScaleBySM3State(mu, tree_zeros_like(params))

    def accumulate(g, cover):
        if g.ndim < 2:
            previous = cover[0]
        else:
            expanded = [_broadcast_axis(v, a, g.ndim) for a, v in enumerate(cover)]
            previous = functools.reduce(jnp.minimum, expanded)
        return (coeff * g**2 + b2 * previous).astype(g.dtype)

    def new_cover(acc):
        if acc.ndim < 2:
            return [acc]
        axes = range(acc.ndim)
        return [jnp.max(acc, axis=tuple(b for b in axes if b != a)) for a in axes]

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.nu)
        acc = jax.tree.map(
            lambda g, c: None if g is None else accumulate(g, c),
            updates,
            state.mu,
            is_leaf=is_none,
        )
        nu = jax.tree.map(
            lambda g, a, m: (
                None
                if g is None
                else (
                    (1 - b1) * (g * jnp.where(a > 0, jax.lax.rsqrt(a + eps), 0.0)) + b1 * m
                ).astype(m.dtype)
            ),
            updates,
            acc,
            state.nu,
            is_leaf=is_none,
        )
        mu = jax.tree.map(
            lambda a, c: c if a is None else new_cover(a), acc, state.mu, is_leaf=is_none
        )
        return nu, ScaleBySM3State(mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = ["ScaleByNovogradState", "ScaleBySM3State", "scale_by_novograd", "scale_by_sm3"]
