"""Opt-in per-epoch gradient diagnostics, computed inside the compiled training step.

Each step contributes gradient norms (global and per parameter leaf), update-to-parameter norm
ratios and, optionally, the absolute gradient of the loss with respect to each input feature;
the epoch reports their means, plus flags for vanishing and exploding gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax


@dataclass(frozen=True)
class Diagnostics:
    """Which gradient diagnostics to record in the history, once per epoch.

    History keys (``<layer>`` is a parameter leaf's path, e.g. ``layers/0/w``):

    - ``grad_norm``: mean over the epoch's steps of the global gradient norm;
      ``grad_norm_max``: its maximum.
    - ``grad_norm/<layer>``: mean gradient norm of one leaf (``per_layer=True``).
    - ``update_ratio/<layer>``: mean of ``||update|| / ||param||`` (``per_layer=True``), with
      the parameter before the update; ``inf`` while a leaf is all zeros.
    - ``vanishing`` / ``exploding``: 1.0 when ``grad_norm < vanishing_below`` / when
      ``grad_norm_max > exploding_above`` or a gradient was not finite, else 0.0.
    - ``input_grad``: per input feature, the mean over examples of
      ``|d loss_i / d x_i|``; shape ``(epochs, *feature_shape)``. Recorded by default when the
      model input is a floating-point array; integer inputs (token ids, class indices) have no
      gradient, so it is left out for them. This assumes the loss is the mean of per-example
      losses.

    Args:
        per_layer: Record per-leaf gradient norms and update ratios.
        input_gradients: Record the mean absolute input gradient per feature: ``None``
            (default) when the input is floating-point, ``True`` always (a ``TypeError`` for
            an integer input), ``False`` never.
        input_leaf: Index into ``jax.tree.leaves(batch)`` of the model input (default: the
            first leaf, ``x`` in ``(x, y)``).
        vanishing_below: Threshold for the ``vanishing`` flag.
        exploding_above: Threshold for the ``exploding`` flag.

    Examples:
        >>> import gdjax
        >>> diag = gdjax.Diagnostics(per_layer=True, input_gradients=True)
    """

    per_layer: bool = True
    input_gradients: bool | None = None
    input_leaf: int = 0
    vanishing_below: float = 1e-7
    exploding_above: float = 1e3

    def __post_init__(self) -> None:
        if self.input_gradients not in (None, True, False):
            raise TypeError(
                f"Diagnostics.input_gradients must be None, True or False, got "
                f"{self.input_gradients!r}"
            )


def layer_names(params: Any) -> list[str]:
    """Readable names of the parameter leaves, e.g. ``params/Dense_0/kernel``."""
    names = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        parts = []
        for k in path:
            part = getattr(k, "key", getattr(k, "idx", getattr(k, "name", None)))
            parts.append(str(part) if part is not None else str(k))
        names.append("/".join(parts) or "params")
    return names


def _norms(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((0,), jnp.float32)
    return jnp.stack([jnp.sqrt(jnp.sum(jnp.square(x.astype(jnp.float32)))) for x in leaves])


def init_accumulator(cfg: Diagnostics, params: Any, input_shape: tuple[int, ...]) -> dict:
    """Zeroed running sums for one epoch."""
    n = len(jax.tree.leaves(params))
    acc = {
        "grad_norm": jnp.zeros((), jnp.float32),
        "grad_norm_max": jnp.zeros((), jnp.float32),
        "nonfinite": jnp.zeros((), jnp.bool_),
        "steps": jnp.zeros((), jnp.float32),
    }
    if cfg.per_layer:
        acc["layer_grad"] = jnp.zeros((n,), jnp.float32)
        acc["layer_ratio"] = jnp.zeros((n,), jnp.float32)
    if cfg.input_gradients:
        acc["input_grad"] = jnp.zeros(input_shape, jnp.float32)
        acc["examples"] = jnp.zeros((), jnp.float32)
    return acc


def accumulate(
    cfg: Diagnostics,
    acc: dict,
    grads: Any,
    updates: Any,
    params: Any,
    input_grad: jax.Array | None,
    n_examples: int,
) -> dict:
    """Add one step's diagnostics to the running sums."""
    gnorm = optax.tree.norm(grads).astype(jnp.float32)
    out = dict(acc)
    out["grad_norm"] = acc["grad_norm"] + gnorm
    out["grad_norm_max"] = jnp.maximum(acc["grad_norm_max"], gnorm)
    out["nonfinite"] = acc["nonfinite"] | ~jnp.isfinite(gnorm)
    out["steps"] = acc["steps"] + 1.0
    if cfg.per_layer:
        out["layer_grad"] = acc["layer_grad"] + _norms(grads)
        pnorm = _norms(params)
        ratio = jnp.where(pnorm > 0, _norms(updates) / jnp.where(pnorm > 0, pnorm, 1.0), jnp.inf)
        out["layer_ratio"] = acc["layer_ratio"] + ratio
    if cfg.input_gradients and input_grad is not None:
        # d(mean loss)/dx_i = (1/n) d loss_i / dx_i, so n * |g| is the per-example gradient.
        per_example = n_examples * jnp.abs(input_grad.astype(jnp.float32))
        out["input_grad"] = acc["input_grad"] + jnp.sum(per_example, axis=0)
        out["examples"] = acc["examples"] + n_examples
    return out


def finalize(cfg: Diagnostics, acc: dict, names: list[str]) -> dict[str, jax.Array]:
    """Turn the epoch's running sums into history entries."""
    steps = jnp.maximum(acc["steps"], 1.0)
    gnorm = acc["grad_norm"] / steps
    stats = {
        "grad_norm": gnorm,
        "grad_norm_max": acc["grad_norm_max"],
        "vanishing": (gnorm < cfg.vanishing_below).astype(jnp.float32),
        "exploding": ((acc["grad_norm_max"] > cfg.exploding_above) | acc["nonfinite"]).astype(
            jnp.float32
        ),
    }
    if cfg.per_layer:
        for i, name in enumerate(names):
            stats[f"grad_norm/{name}"] = acc["layer_grad"][i] / steps
            stats[f"update_ratio/{name}"] = acc["layer_ratio"][i] / steps
    if cfg.input_gradients:
        stats["input_grad"] = acc["input_grad"] / jnp.maximum(acc["examples"], 1.0)
    return stats
