"""Run many (gdjax, optax) optimizer pairs in one compiled program and compare the results.

Compiling is the slow part of an optimizer test on a small machine, so every pair of a test
goes into one ``jax.jit`` program: one compile per test instead of two per pair, compiled with
XLA's cheap settings (`FAST_COMPILE`: the programs are tiny, so speed of the code does not
matter; ours and optax's side of a pair are compiled alike, so the comparison is fair).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
import optax

import gdjax

#: XLA options that halve the compile time of these small test programs.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


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


def run_pairs(pairs: Mapping[str, tuple], params, grads) -> dict[str, tuple]:
    """``{name: (ours, theirs)}`` -> ``{name: (our final params, their final params)}``."""

    @fast_jit
    def go(params, grads):
        return {
            name: (trajectory(ours, params, grads)[0], trajectory(theirs, params, grads)[0])
            for name, (ours, theirs) in pairs.items()
        }

    return go(params, grads)


def _as_numpy(x) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def assert_close(ours, theirs, rtol: float = 1e-5, atol: float = 1e-6, what: str = "") -> None:
    """Leafwise ``allclose`` of two trees (complex leaves compared as complex), naming the path."""
    ours_leaves = jax.tree_util.tree_leaves_with_path(ours)
    theirs_leaves = jax.tree.leaves(theirs)
    assert len(ours_leaves) == len(theirs_leaves), f"{what}: different numbers of leaves"
    for (path, x), y in zip(ours_leaves, theirs_leaves, strict=True):
        assert np.shape(x) == np.shape(y), f"{what}{jax.tree_util.keystr(path)}: shapes differ"
        np.testing.assert_allclose(
            _as_numpy(x),
            _as_numpy(y),
            rtol=rtol,
            atol=atol,
            err_msg=f"{what}{jax.tree_util.keystr(path)}",
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
