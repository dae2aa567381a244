"""The edges where gdjax used to part from optax, with optax as the oracle (issue 10, part A).

Six groups: complex parameters, float64 under x64 (and bfloat16 with schedules), ``masked``,
hyperparameters under ``optax.inject_hyperparams``, schedules at their edges, and inputs optax
accepts. Each test runs its cases in one compiled program.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import schedules as S
from tests._opt_oracle import (
    assert_close,
    assert_pairs_close,
    fast_jit,
    random_tree,
    run_pairs,
    trajectory,
)

STEPS = 25


def _problem(dtype, steps: int = STEPS, seed: int = 0):
    """A small nested tree (a dict holding a matrix and a list) and ``steps`` random gradients."""
    shapes = {"w": (3, 2), "layers": [(2,)]}
    return random_tree(seed, shapes, dtype), random_tree(seed + 1, shapes, dtype, steps)


# --- 1. complex parameters: second moments average |g|^2 = g * conj(g) ------------------------

ADAPTIVE = {
    "adam": (lambda: gdjax.adam(0.05), lambda: optax.adam(0.05)),
    "nadam": (lambda: gdjax.nadam(0.05), lambda: optax.nadam(0.05)),
    "amsgrad": (lambda: gdjax.amsgrad(0.05), lambda: optax.amsgrad(0.05)),
    "adamax": (lambda: gdjax.adamax(0.05), lambda: optax.adamax(0.05)),
    "adagrad": (lambda: gdjax.adagrad(0.05), lambda: optax.adagrad(0.05)),
    "rmsprop_centered_momentum": (
        lambda: gdjax.rmsprop(0.05, centered=True, momentum=0.5),
        lambda: optax.rmsprop(0.05, centered=True, momentum=0.5),
    ),
    "rmsprop_bias_correction": (
        lambda: gdjax.rmsprop(0.05, bias_correction=True, eps_in_sqrt=False),
        lambda: optax.rmsprop(0.05, bias_correction=True, eps_in_sqrt=False),
    ),
}


def test_complex_parameters_match_optax_under_jit_and_vmap():
    params, grads = _problem(jnp.complex64)
    # (adamax took |g| already; it is in the float64 test.)
    pairs = {name: (o(), t()) for name, (o, t) in ADAPTIVE.items() if name != "adamax"}
    decays = [0.1, 1.0]

    @fast_jit
    def go(params, grads):
        out = {
            name: (trajectory(ours, params, grads)[0], trajectory(theirs, params, grads)[0])
            for name, (ours, theirs) in pairs.items()
        }
        # AdamW vmapped over the weight decay: member 0 is optax's run with that value.
        batched = jax.vmap(
            lambda wd: trajectory(gdjax.adamw(0.05, weight_decay=wd), params, grads)[0]
        )(jnp.array(decays))
        theirs = trajectory(optax.adamw(0.05, weight_decay=decays[0]), params, grads)[0]
        out["vmapped adamw"] = (jax.tree.map(lambda x: x[0], batched), theirs)
        return out, jax.tree.map(lambda x: x[1], batched)

    results, other = go(params, grads)
    assert_pairs_close(results, rtol=2e-5, atol=1e-6)
    assert not np.allclose(other["w"], results["vmapped adamw"][0]["w"])  # decay not ignored
    moved = results["adam"][0]["w"] - params["w"]
    assert np.abs(moved.imag).min() > 0 and np.abs(moved.real).min() > 0  # truly complex steps


def test_complex_adadelta_averages_squared_moduli():
    """Oracle: Zeiler's rule with |g|^2 and |u|^2, by hand in NumPy (optax squares g itself)."""
    rng = np.random.default_rng(0)
    g = rng.normal(size=(STEPS, 3)) + 1j * rng.normal(size=(STEPS, 3))
    rho, eps, lr = 0.9, 1e-6, 0.5
    theta, e_g, e_x = np.zeros(3, complex), np.zeros(3), np.zeros(3)
    for g_t in g:
        e_g = rho * e_g + (1 - rho) * np.abs(g_t) ** 2
        u = np.sqrt(e_x + eps) / np.sqrt(e_g + eps) * g_t
        e_x = rho * e_x + (1 - rho) * np.abs(u) ** 2
        theta = theta - lr * u
    params = jnp.zeros(3, jnp.complex64)
    grads = jnp.asarray(g, jnp.complex64)
    got, state = fast_jit(lambda: trajectory(gdjax.adadelta(lr, rho, eps), params, grads))()
    np.testing.assert_allclose(np.asarray(got), theta, rtol=1e-4, atol=1e-6)
    e_g_state = jax.tree.leaves(state)[0]  # the second moment stays real
    np.testing.assert_allclose(np.asarray(e_g_state).imag, 0.0)


# --- 2. float64 under x64, bfloat16 under a schedule ----------------------------------------


def test_float64_under_x64_matches_optax_to_float64_precision():
    with jax.enable_x64(True):
        # optax's own schedules compute in float32 from an int32 step count, also under x64;
        # the optimizers are compared under gdjax's schedule, which is checked in closed form.
        schedule = S.warmup_cosine_decay_schedule(0.0, 0.1, 5, STEPS, 1e-3)
        kept = ["adam", "amsgrad", "adamax"]  # the issue's three (all share bias_correct)
        pairs = {name: (ADAPTIVE[name][0](), ADAPTIVE[name][1]()) for name in kept}
        pairs["sgd_momentum_schedule"] = (gdjax.sgd(schedule, 0.9), optax.sgd(schedule, 0.9))
        key = jax.random.key(3, impl="rbg")  # cheap to compile; the same stream on both sides
        pairs["clip_noise"] = (
            gdjax.chain(gdjax.clip_by_global_norm(1.0), gdjax.add_noise(0.1, 0.55, key)),
            optax.chain(optax.clip_by_global_norm(1.0), optax.add_noise(0.1, 0.55, key)),
        )
        params, grads = _problem(jnp.float64)
        results = run_pairs(pairs, params, grads)
        assert all(x.dtype == jnp.float64 for x in jax.tree.leaves(results))
        assert_pairs_close(results, rtol=1e-12, atol=1e-14)

        # Adam's first step is -lr * sign(g) exactly when eps is negligible (issue's example).
        for name in ["adam", "amsgrad", "adamax"]:
            opt = getattr(gdjax, name)(1.0, eps=1e-30)
            w = jnp.zeros(2, jnp.float64)
            updates, _ = jax.jit(opt.update)(jnp.ones(2, jnp.float64), opt.init(w), w)
            assert updates.dtype == jnp.float64
            assert updates.tolist() == [-1.0, -1.0], name
        # Schedules compute in float64 too: 2 steps into the cosine decay over 20 steps.
        value = jax.jit(schedule)(jnp.asarray(7, jnp.int32))
        assert value.dtype == jnp.float64
        cosine = 0.5 * (1 + np.cos(np.pi * 2 / 20))
        assert float(value) == pytest.approx(0.1 * ((1 - 1e-2) * cosine + 1e-2), rel=1e-15)


def test_bfloat16_under_a_schedule_matches_optax_bit_for_bit():
    """optax casts the scheduled learning rate to the parameters' dtype before multiplying."""
    sched, their_sched = (
        S.cosine_decay_schedule(0.0123, 30),
        optax.cosine_decay_schedule(0.0123, 30),
    )
    pairs = {
        name: (getattr(gdjax, name)(sched), getattr(optax, name)(their_sched))
        for name in ["sgd", "adam", "rmsprop"]
    }
    params, grads = _problem(jnp.bfloat16, steps=15)
    results = run_pairs(pairs, params, grads)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(results))
    assert_pairs_close(results, rtol=0, atol=0)


# --- 3. masked: prefix masks, callable pytrees, tree_map_params -----------------------------


MASK_SHAPES = {"a": (3,), "b": {"c": (2, 2), "d": [(2,)]}, "e": ()}


def _mask_params():
    return random_tree(4, MASK_SHAPES)


PREFIX_MASKS = {
    "subtree off": {"a": True, "b": False, "e": True},
    "subtree on": {"a": False, "b": True, "e": False},
    "one bool": True,
    "mixed depth": {"a": True, "b": {"c": False, "d": True}, "e": False},
}


def test_masked_accepts_prefix_masks_like_optax():
    params = _mask_params()
    grads = random_tree(5, MASK_SHAPES, steps=10)
    pairs = {
        name: (gdjax.masked(gdjax.adam(0.1), m), optax.masked(optax.adam(0.1), m))
        for name, m in PREFIX_MASKS.items()
    }
    mask = PREFIX_MASKS["subtree off"]
    pairs["add_decayed_weights"] = (
        gdjax.chain(gdjax.add_decayed_weights(0.3, mask=mask), gdjax.sgd(0.1)),
        optax.chain(optax.add_decayed_weights(0.3, mask=mask), optax.sgd(0.1)),
    )
    pairs["adamw"] = (
        gdjax.adamw(0.1, weight_decay=0.3, mask=mask),
        optax.adamw(0.1, weight_decay=0.3, mask=mask),
    )
    results = run_pairs(pairs, params, grads)
    assert_pairs_close(results)
    # The masked-off subtree was passed through: the raw gradients were added.
    off = results["subtree off"][0]["b"]["c"]
    np.testing.assert_allclose(off, params["b"]["c"] + grads["b"]["c"].sum(0), rtol=1e-5)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Layer:
    """A callable pytree, as an equinox module is: used as parameters and, with bools, as a mask."""

    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


def test_a_callable_pytree_mask_is_a_mask_not_a_function():
    params = Layer(jnp.ones((2, 3)), jnp.zeros(3))
    grads = Layer(*random_tree(6, [(2, 3), (3,)], steps=8))
    mask = Layer(True, False)  # callable, but its leaves are bools
    by_function = lambda p: Layer(p.w.ndim > 1, p.b.ndim > 1)  # noqa: E731
    pairs = {
        "pytree": (gdjax.masked(gdjax.adam(0.1), mask), optax.masked(optax.adam(0.1), mask)),
        "function": (
            gdjax.masked(gdjax.adam(0.1), by_function),
            optax.masked(optax.adam(0.1), by_function),
        ),
        "weight decay": (
            gdjax.adamw(0.1, weight_decay=0.5, mask=mask),
            optax.adamw(0.1, weight_decay=0.5, mask=mask),
        ),
    }
    results = run_pairs(pairs, params, grads)
    assert_pairs_close(results)
    ours = results["pytree"][0]
    np.testing.assert_allclose(ours.b, grads.b.sum(0), rtol=1e-5)  # b passed through


def test_masked_state_maps_with_tree_map_params_like_optax():
    """Sharding specs for the optimizer state are built from the parameters' specs."""
    params = _mask_params()
    mask = PREFIX_MASKS["mixed depth"]
    by_ndim = lambda p: jax.tree.map(lambda x: x.ndim > 0, p)  # noqa: E731
    ours = gdjax.chain(gdjax.masked(gdjax.adam(0.1), mask), gdjax.adamw(0.1, mask=by_ndim))
    theirs = optax.chain(optax.masked(optax.adam(0.1), mask), optax.adamw(0.1, mask=by_ndim))
    specs = jax.tree.map(lambda x: f"spec{x.shape}", params)

    def state_specs(opt):
        return optax.tree_utils.tree_map_params(
            opt,
            lambda _, spec: spec,
            opt.init(params),
            specs,
            transform_non_params=lambda _: "replicated",
            is_leaf=lambda v: isinstance(v, optax.MaskedNode),
        )

    got, want = state_specs(ours), state_specs(theirs)
    is_node = lambda v: isinstance(v, optax.MaskedNode)  # noqa: E731
    assert jax.tree.leaves(got, is_leaf=is_node) == jax.tree.leaves(want, is_leaf=is_node)
    assert "spec(2, 2)" in jax.tree.leaves(got)  # the parameter copies were found


# --- 4. hyperparameters appear once under optax.inject_hyperparams --------------------------

INJECTED = {
    "sgd": (gdjax.sgd, optax.sgd, {"momentum": 0.9}),
    "momentum": (
        gdjax.momentum,
        lambda learning_rate, beta: optax.sgd(learning_rate, beta),
        {"beta": 0.8},
    ),
    "adamw": (gdjax.adamw, optax.adamw, {"weight_decay": 0.1}),
    "adadelta": (gdjax.adadelta, optax.adadelta, {"weight_decay": 0.1}),
}


def test_tree_get_and_tree_set_find_each_hyperparameter_once():
    params, grads = _problem(jnp.float32, steps=6)
    for name, (ours, _, kwargs) in INJECTED.items():
        state = optax.inject_hyperparams(ours)(learning_rate=0.5, **kwargs).init(params)
        for key, value in {"learning_rate": 0.5, **kwargs}.items():
            assert float(optax.tree_utils.tree_get(state, key)) == pytest.approx(value), name
            assert float(gdjax.get_hyperparam(state, key)) == pytest.approx(value), name

    def run(factory, kwargs, lr):
        opt = optax.inject_hyperparams(factory)(learning_rate=0.5, **kwargs)
        state = optax.tree_utils.tree_set(opt.init(params), learning_rate=lr)  # lr is traced
        return trajectory(opt, params, grads, state)

    lrs = [0.01, 0.03]

    @fast_jit
    def go():
        out = {}
        for name, (ours, theirs, kwargs) in INJECTED.items():
            batched = jax.vmap(lambda lr, ours=ours, kwargs=kwargs: run(ours, kwargs, lr))(
                jnp.array(lrs)
            )
            out[name] = (batched, run(theirs, kwargs, lrs[0]))  # optax with the first value
        return out

    for name, ((got, got_state), (want, want_state)) in go().items():
        assert_close(jax.tree.map(lambda x: x[0], got), want, what=name)
        assert not np.allclose(got["w"][0], got["w"][1]), name  # the set value was used
        got_lr = optax.tree_utils.tree_get(got_state, "learning_rate")
        assert got_lr.tolist() == pytest.approx(lrs)
        assert float(optax.tree_utils.tree_get(want_state, "learning_rate")) == pytest.approx(
            lrs[0]
        )


def test_a_scheduled_hyperparameter_is_recorded_once_by_gdjax():
    sched = S.linear_schedule(0.1, 0.0, 10)
    opt = gdjax.chain(gdjax.add_l2_regularization(sched), gdjax.adamw(sched, weight_decay=sched))
    params = {"w": jnp.ones(2)}
    state = opt.init(params)
    for _ in range(3):
        _, state = jax.jit(opt.update)({"w": jnp.ones(2)}, state, params)
    for name in ["learning_rate", "weight_decay", "l2_strength"]:
        assert len(optax.tree_utils.tree_get_all_with_path(state, name)) == 1, name
        assert float(optax.tree_utils.tree_get(state, name)) == pytest.approx(0.08)
    constant = gdjax.adamw(0.1, weight_decay=0.01).init(params)  # constants: not recorded
    assert optax.tree_utils.tree_get_all_with_path(constant, "learning_rate") == []


# --- 5. schedules at the edges ---------------------------------------------------------------

EDGE_SCHEDULES = {
    "exponential rate 1 with end value": (
        lambda m: m.exponential_decay(1.0, 3, decay_rate=1.0, end_value=0.5)
    ),
    "exponential no transition steps": lambda m: m.exponential_decay(1.0, 0, 0.5),
    "exponential negative transition steps": lambda m: m.exponential_decay(1.0, -2, 0.5),
    "exponential zero rate": lambda m: m.exponential_decay(2.0, 3, 0.0),
    "exponential negative begin": lambda m: m.exponential_decay(1.0, 3, 0.5, -4, True),
    "linear no transition steps": lambda m: m.linear_schedule(1.0, 0.1, 0),
    "polynomial negative begin": lambda m: m.polynomial_schedule(1.0, 0.1, 2.0, 10, -3),
    "warmup cosine without warmup": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 0, 20),
    "cosine over 1e10 steps": lambda m: m.cosine_decay_schedule(1000.0, decay_steps=10**10),
}


def test_schedules_match_optax_at_the_edges():
    steps = jnp.array([0, 1, 2, 3, 4, 7, 10, 19, 20, 25, 1000, 2**31 - 1])
    ours = {name: make(S) for name, make in EDGE_SCHEDULES.items()}
    theirs = {name: make(optax) for name, make in EDGE_SCHEDULES.items()}
    both = fast_jit(
        lambda t: {name: (jax.vmap(ours[name])(t), jax.vmap(theirs[name])(t)) for name in ours}
    )
    for name, (got, want) in both(steps).items():
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=name)


# --- 6. inputs optax accepts ------------------------------------------------------------------


def test_trace_with_decay_one_and_adam_with_zero_eps_match_optax():
    params, grads = _problem(jnp.float32, steps=10)
    pairs = {
        "trace(1.0)": (
            gdjax.chain(gdjax.trace(decay=1.0), gdjax.scale(-0.01)),
            optax.chain(optax.trace(decay=1.0), optax.scale(-0.01)),
        ),
        "sgd momentum 1": (gdjax.sgd(0.01, momentum=1.0), optax.sgd(0.01, momentum=1.0)),
        "adam eps 0": (gdjax.adam(0.01, eps=0.0), optax.adam(0.01, eps=0.0)),
        "rmsprop eps 0": (gdjax.rmsprop(0.01, eps=0.0), optax.rmsprop(0.01, eps=0.0)),
    }
    results = run_pairs(pairs, params, grads)
    assert_pairs_close(results)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(results))


def test_complex_scale_none_updates_and_python_number_leaves_match_optax():
    z = {"w": jnp.array([1.0 + 2.0j, -0.5j], jnp.complex64), "r": jnp.array([3.0, -1.0])}
    ours, theirs = gdjax.scale(0.5 + 0.5j), optax.scale(0.5 + 0.5j)
    assert_close(ours.update(z, ours.init(z))[0], theirs.update(z, theirs.init(z))[0])
    assert jnp.iscomplexobj(ours.update(z, ours.init(z))[0]["r"])  # as optax: not truncated

    decay = gdjax.add_decayed_weights(0.1)
    assert decay.update(None, decay.init(z), z)[0] is None  # optax returns None too

    # Python numbers as leaves (params and gradients), as optax takes them.
    params, grads = {"a": 1.0, "b": [2.0, -0.5]}, {"a": 0.3, "b": [-1.0, 0.25]}
    # (optax's adagrad refuses them: its abs_sq wants arrays; gdjax's takes them too.)
    names = ["sgd", "adam", "adamw", "nadam", "amsgrad", "adamax", "rmsprop", "adadelta"]

    @jax.jit
    def go():
        out = {}
        for name in names:
            pair = []
            for module in (gdjax, optax):
                opt = getattr(module, name)(0.1)
                state, p = opt.init(params), params
                for _ in range(3):
                    u, state = opt.update(grads, state, p)
                    p = gdjax.apply_updates(p, u)
                pair.append(p)
            out[name] = tuple(pair)
        return out

    assert_pairs_close(go())
