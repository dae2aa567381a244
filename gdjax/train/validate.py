"""Argument checks for ``fit`` and ``sweep``: clear errors before anything is compiled or written."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def leaf_paths(tree: Any) -> list[str]:
    """``jax.tree_util.keystr`` of every leaf, ``""`` for a bare array."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def check_data(data: Any, name: str = "data") -> int:
    """Check that ``data`` is a non-empty pytree of finite arrays sharing a leading dimension.

    Returns:
        The number of examples ``N``.
    """
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{name} must be an array or a tuple/pytree of arrays; got no arrays")
    paths = leaf_paths(data)
    sizes = []
    for path, leaf in zip(paths, leaves, strict=True):
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(f"{name}{path} must be a NumPy or JAX array, got {type(leaf).__name__}")
        if leaf.ndim == 0:
            raise ValueError(f"{name}{path} is a scalar; every array needs a leading N axis")
        sizes.append(leaf.shape[0])
    if len(set(sizes)) > 1:
        shapes = ", ".join(
            f"{name}{p}: {tuple(x.shape)}" for p, x in zip(paths, leaves, strict=True)
        )
        raise ValueError(f"{name}: all arrays must share the leading dimension N; got {shapes}")
    if sizes[0] == 0:
        raise ValueError(f"{name} is empty (N = 0)")
    for path, leaf in zip(paths, leaves, strict=True):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            finite = np.isfinite(np.asarray(leaf))
            if not finite.all():
                bad = int(finite.size - finite.sum())
                first = int(np.argwhere(~finite)[0][0])
                raise ValueError(
                    f"{name}{path} contains {bad} NaN/inf value(s) (first in example {first}); "
                    "clean or impute the data before training"
                )
    return int(sizes[0])


def check_same_layout(val: Any, data: Any, name: str = "validation_data") -> None:
    """Check that validation data has the training data's structure, dtypes and trailing shapes."""
    if jax.tree.structure(val) != jax.tree.structure(data):
        raise ValueError(
            f"{name} must have the same structure as data: {jax.tree.structure(data)}; got "
            f"{jax.tree.structure(val)}"
        )
    for path, v, d in zip(
        leaf_paths(data), jax.tree.leaves(val), jax.tree.leaves(data), strict=True
    ):
        if v.dtype != d.dtype:
            raise ValueError(
                f"{name}{path} has dtype {v.dtype} but data{path} has {d.dtype} "
                "(labels of the wrong dtype?)"
            )
        if tuple(v.shape[1:]) != tuple(d.shape[1:]):
            raise ValueError(
                f"{name}{path} has per-example shape {tuple(v.shape[1:])} but data{path} has "
                f"{tuple(d.shape[1:])} (labels of the wrong shape?)"
            )


def check_batch_size(batch_size: Any, n: int, name: str = "batch_size") -> int:
    """Resolve ``batch_size`` (``None`` = the whole set) to an int in ``[1, n]``."""
    if batch_size is None:
        return n
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"{name} must be an int or None (full batch), got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"{name} must be >= 1 (or None for full batch), got {batch_size}")
    if batch_size > n:
        raise ValueError(
            f"{name}={batch_size} is larger than the number of examples N={n}; "
            "pass batch_size=None for full-batch gradient descent"
        )
    return int(batch_size)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Check an integer argument such as ``epochs``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_key(key: Any) -> jax.Array:
    """Check a PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``)."""
    if isinstance(key, int):
        raise TypeError(f"key must be a JAX PRNG key such as jax.random.key({key}), got an int")
    if not isinstance(key, jax.Array | np.ndarray):
        raise TypeError(f"key must be a JAX PRNG key, got {type(key).__name__}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key must be a single PRNG key, got shape {key.shape}")
        return key
    if key.dtype != jnp.uint32 or key.shape != (2,):
        raise TypeError(
            f"key must be a JAX PRNG key (jax.random.key(0)); got dtype {key.dtype}, "
            f"shape {key.shape}"
        )
    return jnp.asarray(key)


def check_choice(value: Any, name: str, choices: tuple) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def describe_batch(batch: Any) -> str:
    """``path: shape dtype`` for every leaf, for error messages."""
    return ", ".join(
        f"batch{p}: {tuple(x.shape)} {x.dtype}"
        for p, x in zip(leaf_paths(batch), jax.tree.leaves(batch), strict=True)
    )


def check_loss_output(loss: Any, new_state: Any, old_state: Any, name: str) -> None:
    """Check the abstract output of the loss: a float scalar, and a model state of fixed layout."""
    shape = getattr(loss, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must return a JAX scalar, got {type(loss).__name__}")
    if shape != ():
        raise ValueError(
            f"{name} must return a scalar loss (the mean over the batch), got shape {shape}; "
            "did you forget .mean()?"
        )
    if not jnp.issubdtype(loss.dtype, jnp.floating):
        raise TypeError(f"{name} must return a floating-point loss, got dtype {loss.dtype}")
    old = jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), old_state)
    new = jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype)), new_state)
    if jax.tree.structure(old) != jax.tree.structure(new) or jax.tree.leaves(
        old
    ) != jax.tree.leaves(new):
        raise ValueError(
            f"{name} must return a new model state with the layout of model_state; "
            f"got {new}, expected {old}"
        )
