"""Shared fixtures for the optimizer tests: a nested parameter tree and random gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import gdjax


def nested_params(key: jax.Array, dtype=jnp.float32) -> dict:
    """Dicts, lists and mixed shapes, including a scalar."""
    k = jax.random.split(key, 5)
    return {
        "dense": {"w": jax.random.normal(k[0], (3, 4), dtype), "b": jnp.zeros((4,), dtype)},
        "layers": [jax.random.normal(k[1], (2,), dtype), jax.random.normal(k[2], (2, 3, 2), dtype)],
        "scale": jnp.asarray(0.5, dtype),
    }


def gradient_stream(key: jax.Array, params: dict, steps: int) -> dict:
    """``steps`` random gradient trees stacked along a leading axis."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    stacked = [
        jax.random.normal(k, (steps, *leaf.shape), leaf.dtype)
        for k, leaf in zip(keys, leaves, strict=True)
    ]
    return treedef.unflatten(stacked)


def run(opt: optax.GradientTransformation, params: dict, grads: dict) -> tuple[dict, object]:
    """Apply ``opt`` to the stacked gradients in a compiled scan; return final params and state."""

    @jax.jit
    def go(params, grads):
        def step(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (gdjax.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(step, (params, opt.init(params)), grads)
        return p, s

    return go(params, grads)


def run_pair(
    ours: optax.GradientTransformation,
    theirs: optax.GradientTransformation,
    params: dict,
    grads: dict,
) -> tuple[tuple[dict, object], tuple[dict, object]]:
    """`run` both optimizers in one compiled program (one compile instead of two).

    Returns ``((params, state) of ours, (params, state) of theirs)``.
    """

    def trajectory(opt, params, grads):
        def step(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (gdjax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt.init(params)), grads)[0]

    @jax.jit
    def go(params, grads):
        return trajectory(ours, params, grads), trajectory(theirs, params, grads)

    return go(params, grads)


def assert_trees_close(a, b, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Leafwise ``allclose`` with the failing path in the message."""
    import numpy as np

    flat_a = jax.tree_util.tree_leaves_with_path(a)
    flat_b = jax.tree.leaves(b)
    assert len(flat_a) == len(flat_b), "trees have different numbers of leaves"
    for (path, x), y in zip(flat_a, flat_b, strict=True):
        np.testing.assert_allclose(
            np.asarray(x, np.float64),
            np.asarray(y, np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=jax.tree_util.keystr(path),
        )
