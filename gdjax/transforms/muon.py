r"""Muon's orthogonalized momentum (Jordan et al., 2024) for matrix-shaped parameters.

Muon replaces a weight matrix's momentum $M = U \Sigma V^\top$ by (approximately) its polar
factor $U V^\top$, computed with a few Newton-Schulz iterations (matrix products only, no
SVD): every singular direction then moves by the same amount. It is steepest descent under
the spectral norm, and it applies only to matrices (see `gdjax.muon` for the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.transforms._common import bias_correct, check_updates, increment, zero_count
from gdjax.transforms._moments import first_moment
from gdjax.tree_utils import tree_zeros_like

#: The quintic iteration's coefficients $(a, b, c)$ of Jordan et al.
NS_COEFFS_STANDARD = (3.4445, -4.7750, 2.0315)
#: Per-step coefficients from the Dion paper (Ahn et al., 2025), used by ``ns_coeffs="dion"``.
NS_COEFFS_DION = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
NS_PRESETS = {"standard": NS_COEFFS_STANDARD, "dion": NS_COEFFS_DION}
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a parameter form the matrix that Muon orthogonalizes.

    For $x W = y$ the reduction (input) axes come first and the output axes second; every other
    axis is a batch axis (each slice is orthogonalized on its own). The default is a plain
    ``(fan_in, fan_out)`` matrix.

    Attributes:
        reduction_axis: the input axis or axes.
        output_axis: the output axis or axes.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


def _is_dims(x: Any) -> bool:
    """A `MuonDimensionNumbers` (or optax.contrib's class of the same shape)."""
    return hasattr(x, "reduction_axis") and hasattr(x, "output_axis")


def _axes(x: jax.Array, dims: MuonDimensionNumbers) -> tuple[tuple[int, ...], tuple[int, ...]]:
    def norm(a):
        return tuple(i % x.ndim for i in ((a,) if isinstance(a, int) else a))

    red, out = norm(dims.reduction_axis), norm(dims.output_axis)
    if set(red) & set(out):
        raise ValueError(
            f"MuonDimensionNumbers: reduction axes {red} and output axes {out} overlap "
            f"for a parameter of shape {x.shape}"
        )
    return red, out


def fan_in_out(x: jax.Array, dims: MuonDimensionNumbers) -> tuple[int, int]:
    """The matrix's input and output sizes under ``dims``."""
    red, out = _axes(x, dims)
    return math.prod(x.shape[a] for a in red), math.prod(x.shape[a] for a in out)


def _newton_schulz_step(x: jax.Array, coeffs: jax.Array) -> jax.Array:
    a = x @ x.T.conj()
    return coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x


def _first_step(x, coeffs, preconditioning, eps):
    """The first iteration; AOL and Schatten-4 fold a rescaling of ``x`` into it."""
    if preconditioning not in ("aol", "schatten"):
        return _newton_schulz_step(x, coeffs)
    a = x @ x.T.conj()
    if preconditioning == "aol":
        s = jax.lax.rsqrt(jnp.maximum(jnp.abs(a).sum(axis=-1), eps))[:, None]
        x, a = x * s, a * s * s.T
    else:
        s = jax.lax.rsqrt(jnp.maximum(jnp.linalg.norm(a), eps))
        x, a = x * s, a * s**2
    return coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x


def orthogonalize_via_newton_schulz(
    x: jax.Array,
    ns_coeffs: jax.Array,
    ns_steps: int = 5,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    eps: float | jax.Array = 1e-8,
    dimension_numbers: MuonDimensionNumbers | None = None,
) -> jax.Array:
    r"""Approximate the polar factor $UV^\top$ of $X = U\Sigma V^\top$ by Newton-Schulz steps.

    After scaling $X$ so that its singular values are at most about 1 (``"frobenius"``:
    divide by $\|X\|_F + \epsilon$; ``"spectral"``: by $\|X\|_2 + \epsilon$; ``"aol"`` and
    ``"schatten"`` rescale inside the first step), each step maps

    $$
    X \leftarrow a X + (b A + c A^2) X, \qquad A = X X^\top
    $$

    which pushes every singular value towards 1 (to roughly $[0.7, 1.2]$ with the default
    coefficients, which trade exactness for speed). A tall matrix is transposed first.

    Args:
        x: a matrix, or an array with ``dimension_numbers``.
        ns_coeffs: $(a, b, c)$, shape ``(3,)``, or one row per step, shape ``(n, 3)``.
        ns_steps: the number of steps for ``(3,)`` coefficients.
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
        eps: $\epsilon$.
        dimension_numbers: which axes form the matrix (batch axes are handled separately).
    """
    ns_coeffs = jnp.asarray(ns_coeffs)
    if ns_coeffs.ndim not in (1, 2) or ns_coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3); got {ns_coeffs.shape}")
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(
            f"preconditioning must be one of {PRECONDITIONINGS}; got {preconditioning!r}"
        )
    if dimension_numbers is None:
        if x.ndim != 2:
            raise ValueError(
                f"Muon orthogonalizes matrices: got shape {x.shape}; pass MuonDimensionNumbers "
                "for other ranks"
            )
        dimension_numbers = MuonDimensionNumbers()

    def one(m):
        tall = m.shape[0] > m.shape[1]
        if tall:
            m = m.T
        if preconditioning == "frobenius":
            m = m / (jnp.linalg.norm(m) + eps)
        elif preconditioning == "spectral":
            m = m / (jnp.linalg.norm(m, ord=2) + eps)
        coeffs = ns_coeffs.astype(m.dtype)
        if coeffs.ndim == 1:
            for step in range(ns_steps):
                m = (
                    _first_step(m, coeffs, preconditioning, eps)
                    if step == 0
                    else _newton_schulz_step(m, coeffs)
                )
        else:
            m = _first_step(m, coeffs[0], preconditioning, eps)
            for row in range(1, coeffs.shape[0]):
                m = _newton_schulz_step(m, coeffs[row])
        return m.T if tall else m

    red, out = _axes(x, dimension_numbers)
    batch = tuple(a for a in range(x.ndim) if a not in red + out)
    order = batch + red + out
    sizes = [x.shape[a] for a in order]
    flat = x.transpose(order).reshape(
        math.prod(sizes[: len(batch)]),
        math.prod(x.shape[a] for a in red),
        math.prod(x.shape[a] for a in out),
    )
    result = jax.vmap(one)(flat).reshape(sizes)
    return result.transpose(tuple(sorted(range(x.ndim), key=lambda i: order[i])))


class MuonState(NamedTuple):
    """State of `scale_by_muon`.

    Attributes:
        count: steps taken.
        mu: the momentum (EMA of gradients).
        ns_coeffs: the Newton-Schulz coefficients, ``(3,)`` or ``(n, 3)``.
    """

    count: jax.Array
    mu: Any
    ns_coeffs: jax.Array


WeightDims = MuonDimensionNumbers | Any | Callable[[Any], Any] | None


def resolve_dims(weight_dimension_numbers: WeightDims, updates: Any) -> Any:
    """The tree of `MuonDimensionNumbers` for ``updates`` (default: every leaf a matrix)."""
    if weight_dimension_numbers is None:
        return jax.tree.map(lambda _: MuonDimensionNumbers(), updates)
    if callable(weight_dimension_numbers) and not _is_dims(weight_dimension_numbers):
        return weight_dimension_numbers(updates)
    return weight_dimension_numbers


def scale_by_muon(
    ns_coeffs: tuple | str = NS_COEFFS_STANDARD,
    ns_steps: int = 5,
    beta: float | jax.Array = 0.95,
    eps: float | jax.Array = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    weight_dimension_numbers: WeightDims = None,
) -> optax.GradientTransformation:
    r"""Orthogonalized momentum: Muon's direction for matrix parameters.

    $$
    m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
    u_t = \operatorname{NS}(\hat m_t) \approx U V^\top \text{ for } \hat m_t = U\Sigma V^\top
    $$

    with $\hat m_t = m_t/(1-\beta^t)$, or NAdam's
    $\beta\frac{m_t}{1-\beta^{t+1}} + (1-\beta)\frac{g_t}{1-\beta^t}$ when ``nesterov=True``;
    NS is `orthogonalize_via_newton_schulz`. ``adaptive=True`` scales $u_t$ by
    $\langle \hat m_t, u_t\rangle$ (Bernstein & Newhouse, 2024). Every leaf must be a matrix
    unless ``weight_dimension_numbers`` says which axes form one.

    Args:
        ns_coeffs: $(a, b, c)$, one row per step, or a preset name (``"standard"``, ``"dion"``).
        ns_steps: Newton-Schulz steps (for a single row of coefficients).
        beta: $\beta \in [0, 1)$.
        eps: $\epsilon$ of the rescaling.
        mu_dtype: dtype of the momentum.
        nesterov: NAdam's look-ahead; a Python bool.
        adaptive: scale by the dual norm; a Python bool.
        preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``.
        weight_dimension_numbers: a tree of `MuonDimensionNumbers`, or a function of the
            parameters returning one.
    """
    if isinstance(ns_coeffs, str) and ns_coeffs not in NS_PRESETS:
        raise ValueError(f"ns_coeffs preset must be one of {sorted(NS_PRESETS)}; got {ns_coeffs!r}")
    coeffs = jnp.asarray(NS_PRESETS[ns_coeffs] if isinstance(ns_coeffs, str) else ns_coeffs)
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3:
        raise ValueError(f"ns_coeffs must have shape (3,) or (n, 3); got {coeffs.shape}")
    if not isinstance(ns_steps, int) or ns_steps < 0:
        raise ValueError(f"ns_steps must be an int >= 0; got {ns_steps!r}")
    if coeffs.ndim == 2 and coeffs.shape[0] > ns_steps:
        raise ValueError(f"{coeffs.shape[0]} rows of ns_coeffs but only ns_steps={ns_steps}")
    _checks.decay_rate("beta", beta)
    _checks.non_negative("eps", eps)
    _checks.static_bool("nesterov", nesterov)
    _checks.static_bool("adaptive", adaptive)
    if preconditioning not in PRECONDITIONINGS:
        raise ValueError(
            f"preconditioning must be one of {PRECONDITIONINGS}; got {preconditioning!r}"
        )

    def init_fn(params):
        return MuonState(zero_count(), tree_zeros_like(params, dtype=mu_dtype), coeffs)

    def update_fn(updates, state, params=None):
        del params
        check_updates(updates, state.mu)
        dims = resolve_dims(weight_dimension_numbers, updates)
        mu = first_moment(updates, state.mu, beta)
        count = increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: beta * m + (1 - beta) * g,
                bias_correct(mu, beta, increment(count)),
                bias_correct(updates, beta, count),
            )
        else:
            mu_hat = bias_correct(mu, beta, count)
        out = jax.tree.map(
            lambda m, d: orthogonalize_via_newton_schulz(
                m, state.ns_coeffs, ns_steps, preconditioning, eps, d
            ),
            mu_hat,
            dims,
            is_leaf=_is_dims,
        )
        if adaptive:
            out = jax.tree.map(lambda m, u: jnp.sum(m.conj() * u) * u, mu_hat, out)
        out = jax.tree.map(lambda g, u: u.astype(g.dtype), updates, out)
        return out, MuonState(count, mu, state.ns_coeffs)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_shape(
    weight_dimension_numbers: WeightDims = None, consistent_rms: float | jax.Array | None = None
) -> optax.GradientTransformation:
    r"""Rescale each matrix's update by its shape, so one learning rate suits every width.

    $$
    u \leftarrow \sqrt{\max(1, n_{out}/n_{in})}\,u
    \quad\text{or, with } \texttt{consistent\_rms}=\rho,\quad
    u \leftarrow \rho\sqrt{\max(n_{in}, n_{out})}\,u
    $$

    (the first is Jordan's width scaling, the second gives updates the RMS $\rho$ of AdamW's,
    Liu et al., 2025).

    Args:
        weight_dimension_numbers: as in `scale_by_muon`.
        consistent_rms: $\rho$, or ``None`` for width scaling.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def factor(u, d):
        fan_in, fan_out = fan_in_out(u, d)
        if consistent_rms is None:
            return jnp.sqrt(jnp.maximum(1.0, fan_out / fan_in))
        return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms

    def update_fn(updates, state, params=None):
        del params
        dims = resolve_dims(weight_dimension_numbers, updates)
        out = jax.tree.map(
            lambda u, d: (factor(u, d) * u).astype(u.dtype), updates, dims, is_leaf=_is_dims
        )
        return out, state

    return optax.GradientTransformation(init_fn, update_fn)


__all__ = [
    "MuonDimensionNumbers",
    "MuonState",
    "orthogonalize_via_newton_schulz",
    "scale_by_muon",
    "scale_by_shape",
]
