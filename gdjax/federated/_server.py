r"""The server's side of a round: average the clients' updates, optionally privatise, step.

With the round's clients :math:`S` (``m`` of them), client parameters :math:`w_k` after local
training and global parameters :math:`w`, the update of client ``k`` is
:math:`\Delta_k = w_k - w` and the server forms

.. math::

    \bar\Delta = \sum_{k \in S} p_k \Delta_k, \qquad
    p_k = \frac{n_k}{\sum_{j \in S} n_j} \;\text{(by examples)} \quad\text{or}\quad
    p_k = \frac{1}{m} \;\text{(uniform)}.

FedOpt (Reddi et al., 2021) treats :math:`-\bar\Delta` as a gradient: the server optimizer
maps it to an update :math:`u` and :math:`w \leftarrow w + u`. ``sgd(1.0)`` gives FedAvg
(:math:`w + \bar\Delta = \sum_k p_k w_k`), ``sgd(1.0, momentum=β)`` FedAvgM, ``adam`` FedAdam,
``optax.yogi`` FedYogi, ``adagrad`` FedAdagrad.

DP-FedAvg (McMahan et al., 2018) clips each update to norm :math:`C`,
:math:`\Delta_k \leftarrow \Delta_k \min(1, C / \lVert\Delta_k\rVert_2)` (the norm over all
parameters), weighs clients uniformly, and adds Gaussian noise of standard deviation
:math:`\sigma C` to the sum, i.e. :math:`\sigma C / m` to the average, where :math:`\sigma`
is the noise multiplier: one client changes the sum by at most :math:`C`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class DPConfig:
    r"""Client-level differential privacy for :func:`gdjax.federated.fit` (DP-FedAvg).

    Each client's update is clipped to L2 norm ``clip_norm`` (over all parameters), clients
    are weighted uniformly, and the server adds :math:`\mathcal N(0, (\sigma C)^2)` noise to
    the sum of the clipped updates, :math:`\sigma` = ``noise_multiplier`` and :math:`C` =
    ``clip_norm``. Both are passed to the compiled round as arrays: other values reuse it.
    The privacy accounting (the :math:`(\varepsilon, \delta)` reached after a number of
    rounds at a sampling rate) is left to an accountant such as the RDP accountant.

    Attributes:
        clip_norm: :math:`C > 0`.
        noise_multiplier: :math:`\sigma \ge 0` (0: clipping only).

    Examples:
        >>> from gdjax.federated import DPConfig
        >>> DPConfig(clip_norm=0.5, noise_multiplier=1.1)
        DPConfig(clip_norm=0.5, noise_multiplier=1.1)
    """

    clip_norm: float
    noise_multiplier: float

    def __post_init__(self) -> None:
        for name, low in (("clip_norm", None), ("noise_multiplier", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise TypeError(f"DPConfig.{name} must be a number, got {value!r}")
            if not np.isfinite(value) or (value < low if low is not None else value <= 0):
                raise ValueError(
                    f"DPConfig.{name} must be {'> 0' if low is None else '>= 0'} and finite, "
                    f"got {value!r}"
                )


def global_norm(tree: Any) -> jax.Array:
    """L2 norm over every element of every leaf."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def average_update(
    params: Any,
    client_params: Any,
    weights: jax.Array,
    dp: tuple[jax.Array, jax.Array] | None = None,
    noise_key: jax.Array | None = None,
) -> tuple[Any, dict]:
    """:math:`\\bar\\Delta` from the stacked client parameters (leading axis: the clients).

    Args:
        params: Global parameters :math:`w`.
        client_params: Client parameters, each leaf of shape ``(m, *leaf.shape)``.
        weights: :math:`p_k`, shape ``(m,)``, summing to 1.
        dp: ``(clip_norm, noise_multiplier)`` arrays for DP-FedAvg, or ``None``.
        noise_key: Key of the Gaussian noise (with ``dp``).

    Returns:
        The averaged update (a tree like ``params``) and statistics: ``update_norm``
        (:math:`\\lVert\\bar\\Delta\\rVert`), and with ``dp`` ``clipped_fraction``.
    """
    deltas = jax.tree.map(lambda c, g: c - g[None], client_params, params)
    stats = {}
    if dp is not None:
        clip, sigma = dp
        norms = jax.vmap(global_norm)(deltas)
        scale = clip / jnp.maximum(norms, clip)
        deltas = jax.tree.map(
            lambda d: d * scale.reshape((-1,) + (1,) * (d.ndim - 1)).astype(d.dtype), deltas
        )
        stats["clipped_fraction"] = jnp.mean((norms > clip).astype(jnp.float32))
    avg = jax.tree.map(lambda d: jnp.tensordot(weights.astype(d.dtype), d, axes=1), deltas)
    if dp is not None:
        clip, sigma = dp
        leaves, treedef = jax.tree.flatten(avg)
        keys = jax.random.split(noise_key, len(leaves))
        std = sigma * clip / weights.shape[0]
        leaves = [
            x + (std * jax.random.normal(k, x.shape, jnp.float32)).astype(x.dtype)
            for x, k in zip(leaves, keys, strict=True)
        ]
        avg = jax.tree.unflatten(treedef, leaves)
    stats["update_norm"] = global_norm(avg)
    return avg, stats


def server_step(optimizer: Any, params: Any, state: Any, update: Any) -> tuple[Any, Any]:
    """Apply the server optimizer to the pseudo-gradient :math:`-\\bar\\Delta`."""
    pseudo_grad = jax.tree.map(jnp.negative, update)
    updates, state = optimizer.update(pseudo_grad, state, params)
    params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
    return params, state
