r"""Sharpness-aware minimization (Foret et al., 2021): descend with the gradient at a nearby worst point.

SAM needs two gradients per step: one at $w$ to find the ascent direction, one at the
perturbed point $w + \epsilon$. gdjax follows ``optax.contrib.sam``'s design, which gives two
ways to get the second gradient:

* **transparent mode** (default): each call of ``update`` is one step of the caller's loop.
  Within every ``sync_period`` calls, the first ``sync_period - 1`` are adversarial (ascent)
  steps and the last is the outer step, applied from the parameters saved at the start of
  the period. It works unchanged inside `gdjax.fit`, but each gradient comes from the batch
  of its own step (two batches per SAM step with the default ``sync_period=2``).
* **opaque mode** (``opaque_mode=True``): ``update`` takes ``grad_fn=`` (``(params, i) ->
  gradients``) and runs the adversarial steps inside one call: the paper's algorithm, the same
  batch for both gradients, one outer step per call. It needs a training loop that passes
  ``grad_fn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax import _checks
from gdjax.base import apply_updates
from gdjax.transforms._common import check_inner, check_params, zero_count
from gdjax.transforms._moments import abs_sq


def normalize() -> optax.GradientTransformation:
    r"""Divide the gradient by its global norm: $u = g / \|g\|_2$ (SAM's ascent direction).

    Examples:
        >>> import jax.numpy as jnp, gdjax
        >>> u, _ = gdjax.normalize().update({"w": jnp.array([3.0, 4.0])}, gdjax.EmptyState())
        >>> u["w"].tolist()
        [0.6000000238418579, 0.800000011920929]
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        check_params(updates, params)
        leaves = [jnp.sum(abs_sq(g)) for g in jax.tree.leaves(updates)]
        norm = jnp.sqrt(sum(leaves[1:], leaves[0]))
        return jax.tree.map(lambda g: g / norm, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class SAMState(NamedTuple):
    """State of `sam`.

    Attributes:
        steps_since_sync: adversarial steps since the last outer step.
        opt_state: the outer optimizer's state.
        adv_state: the adversarial optimizer's state.
        cache: the parameters at the start of the period (``None`` in opaque mode).
    """

    steps_since_sync: jax.Array
    opt_state: Any
    adv_state: Any
    cache: Any


def sam(
    optimizer: optax.GradientTransformation,
    adv_optimizer: optax.GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Sharpness-aware minimization around an outer optimizer (Foret et al., 2021).

    With the paper's adversary ``adv_optimizer = chain(normalize(), sgd(rho))`` and
    ``sync_period=2``, one SAM step is

    $$
    \epsilon_t = \rho\,\frac{\nabla L(w_t)}{\|\nabla L(w_t)\|_2}, \qquad
    w_{t+1} = w_t + \operatorname{opt}\big(\nabla L(w_t + \epsilon_t)\big)
    $$

    where $\operatorname{opt}$ is ``optimizer``'s update (``sgd(eta)``: $-\eta\,\cdot$). The
    adversary's updates are negated (so a descent optimizer ascends). See the module
    docstring for the two modes.

    Args:
        optimizer: the outer optimizer.
        adv_optimizer: the adversarial optimizer (its negated updates perturb the parameters).
        sync_period: calls per outer step in transparent mode; adversarial steps + 1 in opaque
            mode (an int >= 1).
        reset_state: re-initialize the adversary's state after every outer step; a Python bool.
        opaque_mode: run the adversarial steps inside ``update`` with ``grad_fn``; a Python
            bool.
        batch_axis_name: in opaque mode, average the adversarial gradients over this mapped
            axis (``jax.lax.pmean``).

    Examples:
        >>> import jax, jax.numpy as jnp, gdjax
        >>> loss = lambda w: jnp.sum(w**2)
        >>> opt = gdjax.sam(gdjax.sgd(0.1), gdjax.chain(gdjax.normalize(), gdjax.sgd(0.05)),
        ...                 opaque_mode=True)
        >>> w = jnp.array([1.0, 0.0])
        >>> u, state = opt.update(jax.grad(loss)(w), opt.init(w), w,
        ...                       grad_fn=lambda p, i: jax.grad(loss)(p))
        >>> [round(x, 4) for x in gdjax.apply_updates(w, u).tolist()]  # 1 - 0.1 * 2 * 1.05
        [0.79, 0.0]
    """
    check_inner("optimizer", optimizer)
    check_inner("adv_optimizer", adv_optimizer)
    _checks.count("sync_period", sync_period, minimum=1)
    _checks.static_bool("reset_state", reset_state)
    _checks.static_bool("opaque_mode", opaque_mode)

    def init_fn(params):
        return SAMState(
            zero_count(),
            optimizer.init(params),
            adv_optimizer.init(params),
            None if opaque_mode else params,
        )

    def pick(cond, a, b):
        return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)

    def negate(tree):
        return jax.tree.map(lambda x: -x, tree)

    def transparent_update(updates, state, params=None, *, grad_fn=None, **extra_args):
        del grad_fn, extra_args
        if params is None:
            raise ValueError("sam needs params: call update(grads, state, params)")
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        adv_updates, adv_state = adv_optimizer.update(updates, state.adv_state, params)
        adv_updates = negate(adv_updates)
        opt_updates, opt_state = optimizer.update(updates, state.opt_state, state.cache)
        opt_updates = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_updates)
        if reset_state:
            adv_state = pick(last, adv_optimizer.init(params), adv_state)
        else:
            adv_state = pick(last, state.adv_state, adv_state)
        return pick(last, opt_updates, adv_updates), SAMState(
            (state.steps_since_sync + 1) % sync_period,
            pick(last, opt_state, state.opt_state),
            adv_state,
            pick(first, params, state.cache),
        )

    def opaque_update(
        updates,
        state,
        params=None,
        *,
        grad_fn: Callable[[Any, int], Any] | None = None,
        **extra_args,
    ):
        del extra_args
        if grad_fn is None:
            raise ValueError(
                "sam(opaque_mode=True) needs update(..., grad_fn=(params, i) -> grads)"
            )
        if params is None:
            raise ValueError("sam needs params: call update(grads, state, params)")
        adv_params, adv_grads, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            adv_updates, adv_state = adv_optimizer.update(adv_grads, adv_state, adv_params)
            adv_params = apply_updates(adv_params, negate(adv_updates))
            adv_grads = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                adv_grads = jax.lax.pmean(adv_grads, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        out, opt_state = optimizer.update(adv_grads, state.opt_state, params)
        return out, SAMState(zero_count(), opt_state, adv_state, None)

    update_fn = opaque_update if opaque_mode else transparent_update
    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


__all__ = ["SAMState", "normalize", "sam"]
