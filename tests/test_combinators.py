"""Combinators against optax: partition, named_chain, freeze, selective_transform, conditional
wrappers, skip_large_updates, lookahead and the target-network updates; and a layer-wise
learning-rate decay swept with ``jax.vmap`` through `partition`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from tests._opt_more import (
    FAST_COMPILE,
    Case,
    assert_close,
    members_differ,
    problem,
    run_cases,
    trajectory,
)

LABELS = {"dense": "matrix", "layers": ["other"]}
FROZEN = {"dense": False, "layers": [True]}


def _skip_large(module, v):
    skip = functools.partial(module.skip_large_updates, max_squared_norm=v)
    return optax.MultiSteps(optax.sgd(0.1), 2, should_skip_update_fn=skip).gradient_transformation()


CASES = {
    "partition": Case(
        lambda v: gdjax.partition({"matrix": gdjax.adam(v), "other": gdjax.sgd(0.1, 0.9)}, LABELS),
        lambda v: optax.partition({"matrix": optax.adam(v), "other": optax.sgd(0.1, 0.9)}, LABELS),
    ),
    "named_chain": Case(
        lambda v: gdjax.named_chain(
            ("clip", gdjax.clip_by_global_norm(1.0)), ("adam", gdjax.adam(v))
        ),
        lambda v: optax.named_chain(
            ("clip", optax.clip_by_global_norm(1.0)), ("adam", optax.adam(v))
        ),
    ),
    "freeze": Case(
        lambda v: gdjax.chain(gdjax.adam(v), gdjax.freeze({"dense": True, "layers": [False]})),
        lambda v: optax.chain(optax.adam(v), optax.freeze({"dense": True, "layers": [False]})),
    ),
    "selective_transform": Case(
        lambda v: gdjax.selective_transform(gdjax.adam(v), freeze_mask=FROZEN),
        lambda v: optax.selective_transform(optax.adam(v), freeze_mask=FROZEN),
    ),
    "conditionally_transform": Case(
        lambda v: gdjax.chain(
            gdjax.conditionally_transform(gdjax.scale_by_adam(), lambda t: t % 3 == 0),
            gdjax.scale(-v),
        ),
        lambda v: optax.chain(
            optax.conditionally_transform(optax.scale_by_adam(), lambda t: t % 3 == 0),
            optax.scale(-v),
        ),
    ),
    "conditionally_mask": Case(
        lambda v: gdjax.conditionally_mask(gdjax.sgd(v, 0.9), lambda t: t >= 20),
        lambda v: optax.conditionally_mask(optax.sgd(v, 0.9), lambda t: t >= 20),
    ),
    "skip_large_updates": Case(
        lambda v: _skip_large(gdjax, v), lambda v: _skip_large(optax, v), values=(12.0, 24.0)
    ),
}


@pytest.fixture(scope="module")
def results():
    return run_cases(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax(results, name):
    ours, _, theirs = results[name]
    assert_close(ours, theirs, what=name)
    assert members_differ(ours), "the vmapped hyperparameter made no difference"


def test_state_layouts_are_optax_s(results):
    _, state, _ = results["named_chain"]
    assert list(state) == ["clip", "adam"]
    _, state, _ = results["partition"]
    assert set(state.inner_states) == {"matrix", "other"}
    assert gdjax.multi_transform is gdjax.partition


def test_frozen_parameters_do_not_move(results):
    params = problem()[0]
    frozen = results["freeze"][0]
    np.testing.assert_array_equal(frozen["dense"]["w"][1], params["dense"]["w"])
    assert not np.allclose(frozen["layers"][0][1], params["layers"][0])
    selective = results["selective_transform"][0]
    np.testing.assert_array_equal(selective["layers"][0][1], params["layers"][0])
    assert not np.allclose(selective["dense"]["w"][1], params["dense"]["w"])


def test_partition_and_freeze_refuse_bad_labels_and_masks():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    opt = gdjax.partition({"w": gdjax.sgd(0.1)}, {"w": "w", "b": "bias"})
    with pytest.raises(ValueError, match="'bias'"):
        opt.init(params)
    with pytest.raises(ValueError, match="prefix"):
        gdjax.freeze({"w": True, "c": False}).update(params, gdjax.EmptyState())
    with pytest.raises(ValueError, match="distinct"):
        gdjax.named_chain(("a", gdjax.sgd(0.1)), ("a", gdjax.sgd(0.1)))


def test_freeze_with_one_bool_freezes_everything():
    params = {"w": jnp.ones(2), "b": [jnp.ones(3)]}
    u, _ = gdjax.freeze(True).update(params, gdjax.EmptyState())
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(u))
    u, _ = gdjax.freeze(False).update(params, gdjax.EmptyState())
    assert_close(u, params)


def test_layerwise_learning_rate_decay_sweeps_with_vmap():
    # alpha_l = alpha * decay ** (depth - 1 - l): one partition group per layer, the decay traced.
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    params = {f"layer{i}": jax.random.normal(k, (4, 4)) for i, k in enumerate(keys)}
    labels = {name: name for name in params}
    grads = problem(params, steps=30)[1]

    def make(decay):
        groups = {f"layer{i}": gdjax.adam(0.05 * decay ** (2 - i)) for i in range(3)}
        return gdjax.partition(groups, labels)

    def theirs(decay):
        groups = {f"layer{i}": optax.adam(0.05 * decay ** (2 - i)) for i in range(3)}
        return optax.partition(groups, labels)

    decays = jnp.asarray([0.3, 0.7, 1.0])

    def run():
        # optax's partition, with each decay built in as a traced value too, is the oracle.
        return [
            jax.vmap(lambda d, m=m: trajectory(m(d), params, grads))(decays) for m in (make, theirs)
        ]

    (swept, state), (oracle, _) = jax.jit(run, compiler_options=FAST_COMPILE)()
    assert_close(swept, oracle)
    # A constant rate (traced or not) is not recorded in the state, as in optax.
    with pytest.raises(KeyError, match="learning_rate"):
        gdjax.get_hyperparam(state.inner_states["layer0"], "learning_rate")
    # The top layer's rate does not depend on the decay; the bottom one's does.
    top = swept["layer2"]
    np.testing.assert_allclose(top[0], top[-1], rtol=1e-6)
    assert not np.allclose(swept["layer0"][0], swept["layer0"][-1])


def test_lookahead_matches_optax():
    fast = problem()[0]
    grads = problem()[1]

    def run(module, make):
        opt = module.lookahead(make(0.05), sync_period=5, slow_step_size=0.5, reset_state=True)
        params = module.LookaheadParams.init_synced(fast)

        def step(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (module.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, opt.init(params)), grads)[0][0]

    ours, theirs = jax.jit(
        lambda: (run(gdjax, lambda lr: gdjax.adam(lr)), run(optax, lambda lr: optax.adam(lr))),
        compiler_options=FAST_COMPILE,
    )()
    assert_close(ours.fast, theirs.fast)
    assert_close(ours.slow, theirs.slow)
    assert not np.allclose(ours.slow["dense"]["w"], fast["dense"]["w"])
    with pytest.raises(TypeError, match="LookaheadParams"):
        opt = gdjax.lookahead(gdjax.sgd(0.1), 2, 0.5)
        opt.update(fast, opt.init(fast), fast)


def test_target_network_updates_match_optax():
    new = {"w": jnp.arange(3.0), "b": [jnp.ones(2)]}
    old = jax.tree.map(jnp.zeros_like, new)
    assert_close(gdjax.incremental_update(new, old, 0.3), optax.incremental_update(new, old, 0.3))
    for step in range(5):
        got = gdjax.periodic_update(new, old, jnp.asarray(step), 3)
        assert_close(got, optax.periodic_update(new, old, jnp.asarray(step), 3))
    with pytest.raises(ValueError, match="step_size"):
        gdjax.incremental_update(new, old, 1.5)
    with pytest.raises(ValueError, match="update_period"):
        gdjax.periodic_update(new, old, 1, 0)


def test_conditionally_transform_can_see_extra_args():
    opt = gdjax.conditionally_transform(
        gdjax.scale(10.0), lambda t, *, loss: loss > 1.0, forward_extra_args=True
    )
    g = jnp.ones(2)
    state = opt.init(g)
    big, state = opt.update(g, state, loss=jnp.asarray(2.0))
    small, state = opt.update(g, state, loss=jnp.asarray(0.5))
    assert float(big[0]) == 10.0 and float(small[0]) == 1.0
    assert int(state.step) == 2
