"""Hyperparameters are data: vmap over them, change them without recompiling, read them back."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from tests._trees import assert_trees_close, gradient_stream, nested_params

STEPS = 30


def trajectory(make_opt, hyper, params, grads):
    """Final params after STEPS updates, the optimizer built from a (possibly traced) value."""
    opt = make_opt(hyper)

    def step(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (gdjax.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), grads)
    return p


VMAPPED = {
    "sgd learning_rate": (lambda v: gdjax.sgd(v), [1e-3, 1e-2, 1e-1]),
    "sgd momentum": (lambda v: gdjax.sgd(1e-2, momentum=v), [0.0, 0.5, 0.9]),
    "momentum beta": (lambda v: gdjax.momentum(1e-2, beta=v), [0.1, 0.5, 0.9]),
    "adam learning_rate": (lambda v: gdjax.adam(v), [1e-3, 1e-2, 1e-1]),
    "adam b1": (lambda v: gdjax.adam(1e-2, b1=v), [0.0, 0.5, 0.9]),
    "adamw weight_decay": (lambda v: gdjax.adamw(1e-2, weight_decay=v), [0.0, 1e-2, 1e-1]),
    "rmsprop decay": (lambda v: gdjax.rmsprop(1e-2, decay=v), [0.5, 0.9, 0.99]),
    "l2 strength": (
        lambda v: gdjax.chain(gdjax.add_l2_regularization(v), gdjax.sgd(1e-2)),
        [0.0, 0.1, 1.0],
    ),
    "schedule peak": (
        lambda v: gdjax.adam(gdjax.schedules.cosine_decay_schedule(v, STEPS)),
        [1e-3, 1e-2, 1e-1],
    ),
}


@pytest.mark.parametrize("name", sorted(VMAPPED))
def test_vmap_over_a_hyperparameter_equals_separate_runs(name):
    make_opt, values = VMAPPED[name]
    params = nested_params(jax.random.PRNGKey(0))
    grads = gradient_stream(jax.random.PRNGKey(1), params, STEPS)
    batched = jax.jit(jax.vmap(lambda v: trajectory(make_opt, v, params, grads)))(
        jnp.asarray(values, jnp.float32)
    )
    # One program, one run per value, each value a Python number (not traced).
    alone = jax.jit(lambda: [trajectory(make_opt, v, params, grads) for v in values])()
    for i, want in enumerate(alone):
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched), want)
    # The members really differ: the hyperparameter was not ignored.
    leaf = batched["dense"]["w"]
    assert not np.allclose(leaf[0], leaf[-1])


# More hyperparameters, on a small tree (a dict holding a list) and a short run to keep the
# compile time down: the vmapped run and the three unbatched ones are each one program.
SMALL_STEPS = 12
SMALL = {
    "nesterov beta": (lambda v: gdjax.nesterov(1e-2, beta=v), [0.1, 0.5, 0.9]),
    "adagrad initial_accumulator_value": (
        lambda v: gdjax.adagrad(0.1, initial_accumulator_value=v),
        [0.01, 0.1, 1.0],
    ),
    "nadam b1": (lambda v: gdjax.nadam(1e-2, b1=v), [0.0, 0.5, 0.9]),
    "amsgrad b2": (lambda v: gdjax.amsgrad(1e-2, b2=v), [0.5, 0.9, 0.999]),
    "adadelta rho": (lambda v: gdjax.adadelta(1.0, rho=v), [0.5, 0.9, 0.99]),
    "adamax b2": (lambda v: gdjax.adamax(1e-2, b2=v), [0.0, 0.5, 0.999]),
    "adam b2": (lambda v: gdjax.adam(1e-2, b2=v), [0.5, 0.9, 0.999]),
    "adam eps": (lambda v: gdjax.adam(1e-2, eps=v), [1e-8, 0.1, 1.0]),
    "clip max_delta": (lambda v: gdjax.chain(gdjax.clip(v), gdjax.sgd(0.1)), [0.1, 0.5, 2.0]),
    "clip_by_norm max_norm": (
        lambda v: gdjax.chain(gdjax.clip_by_norm(v), gdjax.sgd(0.1)),
        [0.1, 0.5, 5.0],
    ),
    "clip_by_global_norm max_norm": (
        lambda v: gdjax.chain(gdjax.clip_by_global_norm(v), gdjax.sgd(0.1)),
        [0.1, 0.5, 5.0],
    ),
    "add_noise eta": (
        lambda v: gdjax.chain(gdjax.add_noise(v, 0.55, key=0), gdjax.sgd(0.1)),
        [0.0, 0.01, 0.5],
    ),
    # Integer hyperparameters: no shape depends on them, so they may be traced too.
    "accumulate_gradients every_k": (
        lambda k: gdjax.accumulate_gradients(gdjax.sgd(0.1, 0.5), every_k=k),
        [1, 2, 5],
    ),
    "apply_if_finite max_consecutive_errors": (
        lambda k: gdjax.apply_if_finite(gdjax.chain(gdjax.clip(1.0), gdjax.sgd(0.1)), k),
        [0, 2, 100],
    ),
}


def _small_problem():
    params = {"w": jnp.ones((2, 3)), "layers": [jnp.zeros(3)]}
    grads = gradient_stream(jax.random.PRNGKey(2), params, SMALL_STEPS)
    # Two runs of infinite gradients (lengths 1 and 3), for apply_if_finite.
    grads["w"] = grads["w"].at[[2, 6, 7, 8], 0, 0].set(jnp.inf)
    return params, grads


@pytest.mark.parametrize("name", sorted(SMALL))
def test_vmap_over_more_hyperparameters_equals_separate_runs(name):
    make_opt, values = SMALL[name]
    params, grads = _small_problem()
    dtype = jnp.int32 if isinstance(values[0], int) else jnp.float32
    if not name.startswith("apply_if_finite"):
        grads["w"] = jnp.nan_to_num(grads["w"], posinf=3.0)
    array = jnp.asarray(values, dtype)
    batched = jax.jit(jax.vmap(lambda v: trajectory(make_opt, v, params, grads)))(array)
    # One program, one run per value, each value a Python number (not traced).
    alone = jax.jit(lambda: [trajectory(make_opt, v, params, grads) for v in values])()
    for i, want in enumerate(alone):
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched), want)
    leaf = batched["w"]
    assert np.all(np.isfinite(leaf))
    assert not np.allclose(leaf[0], leaf[-1])  # the hyperparameter was not ignored


def test_changing_an_array_learning_rate_does_not_recompile():
    params = {"w": jnp.ones(3)}
    traces = []

    @jax.jit
    def train_step(params, state, grads, lr):
        traces.append(1)  # runs only while tracing
        opt = gdjax.adam(lr)
        updates, state = opt.update(grads, state, params)
        return gdjax.apply_updates(params, updates), state

    state = gdjax.adam(0.1).init(params)
    results = []
    for lr in [0.1, 0.01, 0.001, 0.5]:
        new_params, _ = train_step(params, state, {"w": jnp.ones(3)}, jnp.asarray(lr))
        results.append(float(new_params["w"][0]))
    assert len(traces) == 1
    assert train_step._cache_size() == 1
    # First Adam step moves each parameter by exactly -lr (closed form).
    np.testing.assert_allclose(results, [1 - 0.1, 1 - 0.01, 1 - 0.001, 1 - 0.5], rtol=1e-5)


def test_scheduled_learning_rate_can_be_read_from_the_state():
    sched = gdjax.schedules.exponential_decay(0.1, transition_steps=1, decay_rate=0.5)
    opt = gdjax.chain(gdjax.clip_by_global_norm(1.0), gdjax.adam(sched))
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    seen = []
    for _ in range(4):
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
        seen.append(float(gdjax.get_hyperparam(state, "learning_rate")))
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)


def test_scheduled_weight_decay_can_be_read_from_the_state():
    opt = gdjax.adamw(1e-3, weight_decay=gdjax.schedules.linear_schedule(0.1, 0.0, 10))
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    for _ in range(5):
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
    # linear from 0.1 to 0 over 10 steps: step 4 used 0.1 * (1 - 4/10)
    assert float(gdjax.get_hyperparam(state, "weight_decay")) == pytest.approx(0.06)


def test_each_regularizer_records_its_strength_under_its_own_name():
    lin = gdjax.schedules.linear_schedule
    opt = gdjax.chain(
        gdjax.add_l1_regularization(lin(0.3, 0.0, 10)),
        gdjax.add_l2_regularization(lin(0.2, 0.0, 10)),
        gdjax.adamw(lin(1.0, 0.0, 10), weight_decay=lin(0.1, 0.0, 10)),
    )
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    for _ in range(5):
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
    read = {
        name: float(gdjax.get_hyperparam(state, name))
        for name in ["l1_strength", "l2_strength", "weight_decay", "learning_rate"]
    }
    assert read == pytest.approx(
        {"l1_strength": 0.18, "l2_strength": 0.12, "weight_decay": 0.06, "learning_rate": 0.6}
    )
    with pytest.raises(KeyError, match="recorded: l1_strength, l2_strength, learning_rate"):
        gdjax.get_hyperparam(state, "strength")


def test_get_hyperparam_also_reads_optax_inject_hyperparams_state():
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.3)
    state = opt.init({"w": jnp.zeros(1)})
    assert float(gdjax.get_hyperparam(state, "learning_rate")) == pytest.approx(0.3)


def test_get_hyperparam_missing_name_raises_keyerror():
    state = gdjax.sgd(0.1).init({"w": jnp.zeros(1)})
    with pytest.raises(KeyError, match="no hyperparameter named 'beta'"):
        gdjax.get_hyperparam(state, "beta")
