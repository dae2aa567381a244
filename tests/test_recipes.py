"""Recipes: a gdjax optimizer rebuilt from its numbers as program inputs is the same optimizer.

The engine keys compiled programs on a recipe's key and passes the numbers as inputs, so
``gdjax.adam(3e-4)`` runs the program compiled for ``gdjax.adam(1e-3)``. These tests check
that the rebuilt optimizer computes what the original does, for every named optimizer, and
that the key tells apart what changes the program.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax._recipes import split

PARAMS = {"a": jnp.array([1.0, -2.0, 0.5]), "b": {"c": jnp.array([[0.3, -0.1]])}}
GRADS = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)) + 0.1 * i, PARAMS) for i in range(4)]


def _named_optimizers():
    out = []
    for name in gdjax.optimizers.__all__:
        factory = getattr(gdjax, name)
        sig = inspect.signature(factory)
        first = next(iter(sig.parameters))
        kwargs = {first: 0.05} if first in ("learning_rate",) else {}
        try:
            factory(**kwargs)
        except TypeError:
            continue
        out.append((name, kwargs))
    return out


def _run(opt):
    state = opt.init(PARAMS)
    params, outs = PARAMS, []

    # methods that read the loss (Polyak's step, line searches, Newton) get it; the rest ignore it
    def value_fn(p):
        return 0.5 * sum(jnp.sum(x**2) for x in jax.tree.leaves(p))

    extra = isinstance(opt, optax.GradientTransformationExtraArgs)
    for g in GRADS:
        kw = {"value": value_fn(params), "grad": g, "value_fn": value_fn} if extra else {}
        updates, state = opt.update(g, state, params, **kw)
        params = optax.apply_updates(params, updates)
        outs.append(params)
    return outs


@pytest.mark.parametrize(("name", "kwargs"), _named_optimizers())
def test_every_named_optimizer_rebuilt_from_traced_numbers_is_the_same(name, kwargs):
    opt = getattr(gdjax, name)(**kwargs)
    s = split(opt)
    assert s.key[0] == "recipe"
    direct = jax.jit(lambda: _run(opt))()  # numbers as constants of the program

    @jax.jit
    def rebuilt(numbers):
        return _run(s.rebuild(numbers))

    inputs = [jnp.asarray(x) if isinstance(x, float) else x for x in s.numbers]
    for want, got in zip(direct, rebuilt(inputs), strict=True):
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            # as inputs, not constants: XLA may fold a constant expression differently
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_the_key_ignores_numbers_and_sees_everything_else():
    assert split(gdjax.adam(1e-3)).key == split(gdjax.adam(3e-4)).key
    assert split(gdjax.adam(1e-3)).key != split(gdjax.sgd(1e-3)).key
    assert split(gdjax.sgd(0.1, momentum=0.9)).key != split(gdjax.sgd(0.1)).key
    nesterov = split(gdjax.sgd(0.1, momentum=0.9, nesterov=True)).key
    assert nesterov != split(gdjax.sgd(0.1, momentum=0.9, nesterov=False)).key
    lr = gdjax.schedules.cosine_decay_schedule(0.1, 100)
    nested = split(gdjax.adam(lr))
    assert nested.numbers == [0.1]
    assert nested.key == split(gdjax.adam(gdjax.schedules.cosine_decay_schedule(0.3, 100))).key
    assert nested.key != split(gdjax.adam(gdjax.schedules.cosine_decay_schedule(0.3, 50))).key


def test_a_chain_with_an_optax_part_is_keyed_by_that_part():
    part = optax.scale_by_adam()
    a = split(gdjax.chain(gdjax.clip_by_global_norm(1.0), part, gdjax.scale_by_learning_rate(0.1)))
    b = split(gdjax.chain(gdjax.clip_by_global_norm(2.0), part, gdjax.scale_by_learning_rate(0.2)))
    c = split(
        gdjax.chain(
            gdjax.clip_by_global_norm(1.0), optax.scale_by_adam(), gdjax.scale_by_learning_rate(0.1)
        )
    )
    assert a.key == b.key and a.numbers == [1.0, 0.1] and b.numbers == [2.0, 0.2]
    assert a.key != c.key  # another optax object: compared by identity


def test_objects_from_elsewhere_have_no_numbers():
    opt = optax.adam(1e-3)
    s = split(opt)
    assert s.key[0] == "object" and s.numbers == [] and s.rebuild([]) is opt
