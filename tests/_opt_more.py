"""Helpers for the tests of the newer optimizers: many optimizer pairs in one compiled program.

Compiling dominates these tests (a 100-step scan of one optimizer compiles in ~0.3 s, runs in
microseconds), so every case of a test file is traced into one ``jax.jit`` program: each case
runs gdjax's optimizer and its oracle, both ``jax.vmap``-ed over a few values of one
hyperparameter, which checks at once that the hyperparameter may be a traced value and that
each member matches the oracle built from the same value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from tests._trees import gradient_stream

STEPS = 100
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def small_tree(key: jax.Array, dtype=jnp.float32) -> dict:
    """Nested dict and list: a matrix and a rank-3 array (two leaves: compile time grows with
    the number of leaves)."""
    k = jax.random.split(key, 2)
    return {
        "dense": {"w": jax.random.normal(k[0], (3, 4), dtype)},
        "layers": [jax.random.normal(k[1], (2, 3, 2), dtype)],
    }


def problem(params: Any = None, steps: int = STEPS, seed: int = 1) -> tuple[Any, Any, jax.Array]:
    """Parameters, a stream of random gradients and a stream of positive 'loss values'."""
    params = small_tree(jax.random.PRNGKey(0)) if params is None else params
    grads = gradient_stream(jax.random.PRNGKey(seed), params, steps)
    values = 1.0 + jax.random.uniform(jax.random.PRNGKey(seed + 1), (steps,))
    return params, grads, values


def trajectory(opt: optax.GradientTransformation, params, grads, values=None):
    """Final ``(params, state)`` after the stream (``value=`` passed when given)."""

    def step(carry, inputs):
        p, s = carry
        g, v = inputs
        extra = {} if v is None else {"value": v}
        u, s = opt.update(g, s, p, **extra)
        return (gdjax.apply_updates(p, u), s), None

    (p, s), _ = jax.lax.scan(step, (params, opt.init(params)), (grads, values))
    return p, s


@dataclass
class Case:
    """gdjax's optimizer and its oracle, each built from one hyperparameter value."""

    ours: Callable[[Any], optax.GradientTransformation]
    theirs: Callable[[Any], optax.GradientTransformation] | None
    values: tuple = (1e-2, 3e-2)
    params: Any = None
    with_value: bool = False
    rtol: float = 1e-5
    atol: float = 1e-6


def run_cases(cases: dict[str, Case]) -> dict[str, tuple[Any, Any, Any]]:
    """Run every case in one compiled program: ``name -> (ours params, ours state, theirs params)``.

    Leaves carry the hyperparameter values on their first axis; ``theirs`` is ``None`` for a
    case without an optax oracle.
    """
    inputs = {}
    for name, case in cases.items():
        params, grads, values = problem(case.params)
        inputs[name] = (params, grads, values if case.with_value else None)

    def run_all(inputs):
        out = {}
        for name, case in cases.items():
            hp = jnp.asarray(case.values, jnp.float32)
            ours = jax.vmap(lambda v, c=case, a=inputs[name]: trajectory(c.ours(v), *a))(hp)
            theirs = None
            if case.theirs is not None:
                run = jax.vmap(lambda v, c=case, a=inputs[name]: trajectory(c.theirs(v), *a)[0])
                theirs = run(hp)
            out[name] = (ours[0], ours[1], theirs)
        return out

    # XLA's backend optimizations cost a quarter of the compile time and matter nothing for
    # a 100-step run; both sides of every comparison are compiled alike.
    return jax.jit(run_all, compiler_options=FAST_COMPILE)(inputs)


def eager_pair(ours, theirs, params, grads, steps: int, **extra):
    """``steps`` eager updates of both from the same stream (no compilation of a whole step:
    for compositions of transformations that the compiled tests already cover)."""
    out = []
    for opt in (ours, theirs):
        p, s = params, opt.init(params)
        for t in range(steps):
            u, s = opt.update(jax.tree.map(lambda g, t=t: g[t], grads), s, p, **extra)
            p = gdjax.apply_updates(p, u)
        out.append((p, s))
    return out


def assert_close(got, want, rtol=1e-5, atol=1e-6, what=""):
    """Leafwise ``allclose`` naming the failing path."""
    flat = jax.tree_util.tree_leaves_with_path(got)
    other = jax.tree.leaves(want)
    assert len(flat) == len(other), f"{what}: trees differ"
    for (path, x), y in zip(flat, other, strict=True):
        np.testing.assert_allclose(
            np.asarray(x, np.complex128 if np.iscomplexobj(x) else np.float64),
            np.asarray(y, np.complex128 if np.iscomplexobj(y) else np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=f"{what}{jax.tree_util.keystr(path)}",
        )


def members_differ(tree) -> bool:
    """Whether the first and last vmapped members differ (the hyperparameter was used)."""
    return any(not np.allclose(x[0], x[-1]) for x in jax.tree.leaves(tree))
