"""Optimizer trajectories on toy functions: every iterate of many runs, in one compiled program.

Training on data goes through ``gdjax.fit`` and ``gdjax.sweep``. The landscape parts of some
studies (Rastrigin, a saddle, ravines, quadratics) have no data and no epochs: they follow an
optimizer on a function ``f(x)`` of a point and need every iterate, which is what this records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


def minimize_sweep(
    f: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    make_optimizer: Callable[[Mapping[str, jax.Array]], optax.GradientTransformation],
    hparams: Mapping[str, Any],
    *,
    steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``f`` from starts ``x0`` (shape ``(C, D)``) with one optimizer per row.

    Everything (all rows, all steps) is one compiled ``vmap`` of a ``lax.scan``. ``hparams``
    maps names to ``C`` values each (float32); the optimizer's ``update`` gets ``params`` (so
    transforms that need them, and noise keyed by their own seed, work).

    Returns:
        ``(trajectory, values)``: ``(C, steps + 1, D)`` iterates and ``(C, steps + 1)`` values of
        ``f`` along them (non-finite where a run diverged).
    """
    hp = {k: np.asarray(v, np.float32).reshape(-1) for k, v in hparams.items()}
    sizes = {a.shape[0] for a in hp.values()}
    if sizes != {x0.shape[0]}:
        raise ValueError(
            f"x0 has {x0.shape[0]} rows but hparams have lengths "
            f"{ {k: a.shape[0] for k, a in hp.items()} }"
        )

    def run(x, h):
        opt = make_optimizer(h)

        def body(carry, _):
            x, s = carry
            g = jax.grad(f)(x)
            u, s = opt.update(g, s, x)
            x = optax.apply_updates(x, u)
            return (x, s), x

        _, xs = jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
        xs = jnp.concatenate([x[None], xs])
        return xs, jax.vmap(f)(xs)

    traj, vals = jax.jit(jax.vmap(run))(jnp.asarray(x0, jnp.float32), hp)
    return np.asarray(traj), np.asarray(vals)


def either(
    use_second: jax.Array, first: optax.GradientTransformation, second: optax.GradientTransformation
) -> optax.GradientTransformation:
    """Run ``first`` or ``second`` depending on a (traced) flag, keeping both states.

    Lets structurally different optimizers (momentum and Nesterov, say) share one vmapped
    program: both updates are computed and ``jnp.where`` picks one.
    """

    def init(params):
        return first.init(params), second.init(params)

    def update(updates, state, params=None):
        u1, s1 = first.update(updates, state[0], params)
        u2, s2 = second.update(updates, state[1], params)
        pick = lambda a, b: jnp.where(use_second > 0.5, b, a)  # noqa: E731
        return jax.tree.map(pick, u1, u2), (s1, s2)

    return optax.GradientTransformation(init, update)
