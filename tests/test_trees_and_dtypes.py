"""jit, dtype preservation, empty and None leaves, and the optax protocol in both directions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax

ALL_OPTIMIZERS = {
    "sgd": lambda: gdjax.sgd(1e-2, momentum=0.9, nesterov=True),
    "momentum": lambda: gdjax.momentum(1e-2),
    "nesterov": lambda: gdjax.nesterov(1e-2),
    "adagrad": lambda: gdjax.adagrad(1e-2),
    "rmsprop": lambda: gdjax.rmsprop(1e-2, centered=True, momentum=0.9),
    "adam": lambda: gdjax.adam(1e-2),
    "adamw": lambda: gdjax.adamw(1e-2),
    "nadam": lambda: gdjax.nadam(1e-2),
    "amsgrad": lambda: gdjax.amsgrad(1e-2),
    "adadelta": lambda: gdjax.adadelta(),
    "adamax": lambda: gdjax.adamax(1e-2),
}


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_params_and_state_keep_their_dtype_under_jit(name, dtype):
    opt = ALL_OPTIMIZERS[name]()
    params = {"w": jnp.ones((2, 3), dtype), "b": jnp.zeros((3,), dtype)}
    state = opt.init(params)
    state_dtypes = [x.dtype for x in jax.tree.leaves(state)]

    @jax.jit
    def step(params, state):
        grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
        updates, state = opt.update(grads, state, params)
        return gdjax.apply_updates(params, updates), state, updates

    for _ in range(3):
        params, state, updates = step(params, state)
    assert all(x.dtype == dtype for x in jax.tree.leaves(params))
    assert all(x.dtype == dtype for x in jax.tree.leaves(updates))
    assert [x.dtype for x in jax.tree.leaves(state)] == state_dtypes
    # And the parameters actually moved (downhill: gradients were positive).
    assert float(params["w"][0, 0]) < 1.0


@pytest.mark.parametrize("name", sorted(ALL_OPTIMIZERS))
def test_none_and_empty_leaves_pass_through(name):
    opt = ALL_OPTIMIZERS[name]()
    params = {"w": jnp.ones(2), "frozen": None, "empty": jnp.zeros((0, 3))}
    state = opt.init(params)
    grads = {"w": jnp.ones(2), "frozen": None, "empty": jnp.zeros((0, 3))}
    updates, _ = jax.jit(opt.update)(grads, state, params)
    new = gdjax.apply_updates(params, updates)
    assert new["frozen"] is None
    assert new["empty"].shape == (0, 3)
    assert float(new["w"][0]) < 1.0


# The transformations that are not optimizers, each followed by a descent step.
ALL_TRANSFORMS = {
    "add_noise": lambda: gdjax.chain(gdjax.add_noise(1e-4, 0.55, key=0), gdjax.sgd(1e-2)),
    "clip_by_norm": lambda: gdjax.chain(gdjax.clip_by_norm(1.0), gdjax.sgd(1e-2)),
    "accumulate_gradients": lambda: gdjax.accumulate_gradients(gdjax.adam(1e-2), every_k=2),
    "masked": lambda: gdjax.chain(
        gdjax.masked(gdjax.scale_by_adam(), lambda p: jax.tree.map(lambda x: x.ndim > 0, p)),
        gdjax.sgd(1e-2),
    ),
    "regularizers": lambda: gdjax.chain(
        gdjax.add_l1_regularization(1e-3),
        gdjax.add_l2_regularization(1e-3),
        gdjax.adamw(1e-2, weight_decay=gdjax.schedules.linear_schedule(1e-2, 0.0, 10)),
    ),
}


@pytest.mark.parametrize("name", sorted(ALL_TRANSFORMS))
def test_transforms_keep_dtypes_and_pass_none_leaves(name):
    opt = ALL_TRANSFORMS[name]()
    for dtype in [jnp.bfloat16, jnp.float32]:
        params = {
            "w": jnp.ones((2, 3), dtype),
            "s": jnp.ones((), dtype),
            "frozen": None,
            "empty": jnp.zeros((0, 3), dtype),
        }
        state = opt.init(params)
        state_dtypes = [x.dtype for x in jax.tree.leaves(state)]

        @jax.jit
        def step(params, state):
            grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
            updates, state = opt.update(grads, state, params)
            return gdjax.apply_updates(params, updates), state, updates

        for _ in range(2):  # accumulate_gradients moves every second step
            params, state, updates = step(params, state)
        assert params["frozen"] is None and updates["frozen"] is None
        assert params["empty"].shape == (0, 3)
        assert all(x.dtype == dtype for x in jax.tree.leaves(params))
        assert all(x.dtype == dtype for x in jax.tree.leaves(updates))
        assert [x.dtype for x in jax.tree.leaves(state)] == state_dtypes
        assert float(params["w"][0, 0]) < 1.0, dtype  # moved downhill


def test_gdjax_chain_accepts_optax_parts_and_vice_versa():
    params = {"w": jnp.array([3.0, 4.0])}
    grads = {"w": jnp.array([3.0, 4.0])}
    ours = gdjax.chain(gdjax.clip_by_global_norm(1.0), optax.scale_by_adam(), gdjax.scale(-1e-3))
    theirs = optax.chain(optax.clip_by_global_norm(1.0), gdjax.scale_by_adam(), optax.scale(-1e-3))
    u1, _ = ours.update(grads, ours.init(params), params)
    u2, _ = theirs.update(grads, theirs.init(params), params)
    np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)
    np.testing.assert_allclose(u1["w"], [-1e-3, -1e-3], rtol=1e-4)  # Adam's first step
    assert isinstance(gdjax.adam(1e-3), optax.GradientTransformation)
    assert isinstance(gdjax.trace(0.9), optax.GradientTransformation)
    # optax's own wrappers take gdjax optimizers too.
    multi = optax.MultiSteps(gdjax.sgd(0.1), every_k_schedule=2)
    state = multi.init(params)
    u, state = multi.update(grads, state, params)
    assert float(jnp.abs(u["w"]).sum()) == 0.0
    u, state = multi.update(grads, state, params)
    np.testing.assert_allclose(u["w"], [-0.3, -0.4], rtol=1e-6)


def test_apply_updates_adds_and_keeps_dtype():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": jnp.ones(2)}
    new = gdjax.apply_updates(params, {"a": jnp.full(2, 0.5, jnp.float32), "b": jnp.ones(2)})
    assert new["a"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(new["a"], np.float32), [1.5, 1.5])
    np.testing.assert_allclose(new["b"], [2.0, 2.0])
