"""Run many (gdjax, optax) optimizer pairs in one compiled program and compare the results.

Compiling is the slow part of an optimizer test on a small machine, so every pair of a test
goes into one ``jax.jit`` program: one compile per test instead of two per pair, compiled with
XLA's cheap settings (`FAST_COMPILE`: the programs are tiny, so speed of the code does not
matter; ours and optax's side of a pair are compiled alike, so the comparison is fair).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax

#: XLA options that cut the compile time of these small test programs about fourfold
#: (measured on the optimizer parity programs: no fusion emitters, no LLVM optimization).
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def fast_jit(fn):
    """``jax.jit`` with `FAST_COMPILE`."""
    return jax.jit(fn, compiler_options=FAST_COMPILE)


def trajectory(opt: optax.GradientTransformation, params, grads, state=None):
    """Final ``(params, state)`` after one update per leading slice of ``grads`` (a scan).

    The run starts from ``state`` if given, else from ``opt.init(params)``.
    """

    def step(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (gdjax.apply_updates(p, u), s), None

    start = opt.init(params) if state is None else state
    return jax.lax.scan(step, (params, start), grads)[0]


def path(opt: optax.GradientTransformation, params, grads):
    """``(the parameters after every step, stacked along a leading axis; the final state)``."""

    def step(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        p = gdjax.apply_updates(p, u)
        return (p, s), p

    (_, state), history = jax.lax.scan(step, (params, opt.init(params)), grads)
    return history, state


def run_pairs(pairs: Mapping[str, tuple], params, grads, every_step: bool = False) -> dict:
    """``{name: (ours, theirs)}`` -> ``{name: (our final params, their final params)}``.

    With ``every_step`` the parameters after each step are returned (stacked), so a comparison
    checks the runs step by step.
    """
    run = (
        (lambda opt, p, g: path(opt, p, g)[0])
        if every_step
        else (lambda opt, p, g: trajectory(opt, p, g)[0])
    )

    @fast_jit
    def go(params, grads):
        return {
            name: (run(ours, params, grads), run(theirs, params, grads))
            for name, (ours, theirs) in pairs.items()
        }

    return go(params, grads)


def random_tree(seed: int, shapes, dtype=np.float32, steps: int | None = None):
    """Standard normal arrays (complex: normal real and imaginary parts) made by NumPy.

    ``shapes`` is a pytree of shape tuples; with ``steps`` each array gets a leading axis of
    that length (a gradient stream). NumPy, not ``jax.random``: eager JAX random draws compile
    a program per shape, which costs more than the tests' own programs.
    """
    rng = np.random.default_rng(seed)
    lead = () if steps is None else (steps,)

    def draw(shape):
        x = rng.standard_normal(lead + tuple(shape))
        if np.issubdtype(np.dtype(dtype), np.complexfloating):
            x = x + 1j * rng.standard_normal(lead + tuple(shape))
        return jnp.asarray(x, dtype)

    return jax.tree.map(draw, shapes, is_leaf=lambda x: isinstance(x, tuple))


def _as_numpy(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def assert_close(
    ours, theirs, rtol: float = 1e-5, atol: float = 1e-6, what: str = "", finite: bool = True
) -> None:
    """Leafwise ``allclose`` of two trees (complex leaves compared as complex), naming the path.

    With ``finite`` (the default) ``ours`` must also be finite everywhere.
    """
    ours_leaves = jax.tree_util.tree_leaves_with_path(ours)
    theirs_leaves = jax.tree.leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves), f"{what}: different numbers of leaves"
    for (where, x), y in zip(ours_leaves, theirs_leaves, strict=True):
        name = f"{what}{jax.tree_util.keystr(where)}"
        assert np.shape(x) == np.shape(y), f"{name}: shapes differ"
        if finite:  # NaN == NaN in assert_allclose: two broken runs must not pass as equal
            assert np.all(np.isfinite(_as_numpy(x))), f"{name}: not finite"
        np.testing.assert_allclose(
            _as_numpy(x),
            _as_numpy(y),
            rtol=rtol,
            atol=atol,
            err_msg=name,
        )


def assert_pairs_close(results: Mapping[str, tuple], rtol: float = 1e-5, atol: float = 1e-6):
    """`assert_close` on every ``name -> (ours, theirs)`` of `run_pairs`, naming the failing ones."""
    failures = []
    for name, (ours, theirs) in results.items():
        try:
            assert_close(ours, theirs, rtol=rtol, atol=atol, what=name)
        except AssertionError as err:
            failures.append(f"{name}: {' '.join(str(err).split())[:300]}")
    assert not failures, "\n".join(failures)
