"""Bad hyperparameters fail when the optimizer is built; mismatched gradients fail clearly."""

import jax
import jax.numpy as jnp
import pytest

import gdjax

BAD_VALUES = [
    (lambda: gdjax.sgd(-0.1), ValueError, r"learning_rate must be in \[0, inf\]; got -0.1"),
    (lambda: gdjax.sgd(0.1, momentum=1.5), ValueError, r"momentum must be in \[0, 1\]"),
    (lambda: gdjax.sgd(0.1, momentum=-0.5), ValueError, r"momentum must be in \[0, 1\]"),
    (lambda: gdjax.sgd(0.1, nesterov=True), ValueError, "nesterov=True needs a momentum"),
    (lambda: gdjax.momentum(0.1, beta=1.2), ValueError, r"beta must be in \[0, 1\]"),
    (lambda: gdjax.nesterov(0.1, beta=-0.1), ValueError, r"beta must be in \[0, 1\]"),
    (lambda: gdjax.adam(1e-3, b1=1.0), ValueError, r"b1 must be in \[0, 1\)"),
    (lambda: gdjax.adam(1e-3, b2=1.5), ValueError, r"b2 must be in \[0, 1\)"),
    (lambda: gdjax.adam(1e-3, eps=-1e-8), ValueError, r"eps must be in \[0, inf\]"),
    (lambda: gdjax.adam(1e-3, eps=float("nan")), ValueError, "eps must be"),
    (lambda: gdjax.adamw(1e-3, weight_decay=-1.0), ValueError, "weight_decay must be"),
    (lambda: gdjax.rmsprop(1e-3, decay=1.0), ValueError, r"decay must be in \[0, 1\)"),
    (lambda: gdjax.adagrad(1e-3, eps=-1.0), ValueError, "eps must be"),
    (lambda: gdjax.adadelta(rho=2.0), ValueError, r"rho must be in \[0, 1\)"),
    (lambda: gdjax.clip(-1.0), ValueError, r"max_delta must be in \[0, inf\]"),
    (lambda: gdjax.clip_by_norm(-1.0), ValueError, "max_norm must be"),
    (lambda: gdjax.clip_by_global_norm(-1.0), ValueError, "max_norm must be"),
    (lambda: gdjax.add_l1_regularization(-1e-3), ValueError, "strength must be"),
    (lambda: gdjax.add_noise(eta=-1.0, gamma=0.5), ValueError, "eta must be"),
    (lambda: gdjax.accumulate_gradients(gdjax.sgd(0.1), every_k=0), ValueError, "every_k"),
    (lambda: gdjax.accumulate_gradients(gdjax.sgd(0.1), every_k=2.5), TypeError, "every_k"),
    (lambda: gdjax.sgd("fast"), TypeError, "learning_rate must be a number"),
    (lambda: gdjax.adam(1e-3, b1=None), TypeError, "b1 must be a number"),
    (lambda: gdjax.adam(1e-3, beta1=0.9), TypeError, "beta1"),
    (lambda: gdjax.sgd(0.1, mommentum=0.9), TypeError, "mommentum"),
    (lambda: gdjax.schedules.exponential_decay(0.1, 2.5, 0.5), TypeError, "transition_steps"),
    (lambda: gdjax.schedules.exponential_decay(0.1, 10, -0.5), ValueError, "decay_rate"),
    (lambda: gdjax.schedules.join_schedules([lambda s: s], [1]), ValueError, "boundaries"),
    (lambda: gdjax.schedules.one_cycle_schedule(100, 0.1, pct_start=1.0), ValueError, "pct_start"),
    (lambda: gdjax.scale_by_schedule(0.1), TypeError, "step_size_fn must be a schedule"),
]


@pytest.mark.parametrize("build, exc, message", BAD_VALUES)
def test_bad_hyperparameter_is_rejected_at_construction(build, exc, message):
    with pytest.raises(exc, match=message):
        build()


def test_boundary_values_are_accepted():
    gdjax.sgd(0.0, momentum=0.0)
    gdjax.adam(0.0, b1=0.0, b2=0.0)
    gdjax.clip_by_global_norm(0.0)


def test_gradients_with_a_different_tree_name_the_mismatch():
    opt = gdjax.adam(1e-3)
    params = {"dense": {"w": jnp.ones(2), "b": jnp.ones(2)}}
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"missing from the gradients: \['dense'\]\['b'\]"):
        opt.update({"dense": {"w": jnp.ones(2)}}, state, params)
    with pytest.raises(ValueError, match=r"not in the optimizer state: \['extra'\]"):
        opt.update({"dense": {"w": jnp.ones(2), "b": jnp.ones(2)}, "extra": jnp.ones(1)}, state)


def test_mask_of_the_wrong_shape_is_named():
    opt = gdjax.add_decayed_weights(1e-2, mask={"w": True})
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match="mask does not match the parameter tree"):
        opt.update(params, opt.init(params), params)


def test_weight_decay_without_params_says_so():
    opt = gdjax.add_decayed_weights(1e-2)
    with pytest.raises(ValueError, match="needs `params`"):
        opt.update({"w": jnp.ones(1)}, opt.init({"w": jnp.ones(1)}))


@pytest.mark.parametrize(
    "build",
    [
        lambda: gdjax.apply_if_finite(3, max_consecutive_errors=2),
        lambda: gdjax.masked(3, {"w": True}),
        lambda: gdjax.accumulate_gradients(3, every_k=2),
        lambda: gdjax.masked(gdjax.sgd, {"w": True}),  # the factory, not a transformation
    ],
)
def test_wrappers_name_a_bad_inner_transformation(build):
    with pytest.raises(TypeError, match="inner must be a GradientTransformation"):
        build()


# Transformations without per-parameter state still check gradients against the parameters.
STATELESS = {
    "sgd": lambda: gdjax.sgd(0.1),
    "scale": lambda: gdjax.scale(-0.1),
    "clip": lambda: gdjax.clip(1.0),
    "clip_by_norm": lambda: gdjax.clip_by_norm(1.0),
    "clip_by_global_norm": lambda: gdjax.clip_by_global_norm(1.0),
    "add_noise": lambda: gdjax.add_noise(0.01, 0.55, key=0),
    "apply_if_finite(sgd)": lambda: gdjax.apply_if_finite(gdjax.sgd(0.1), 3),
    "masked(sgd)": lambda: gdjax.masked(gdjax.sgd(0.1), {"w": True, "b": False}),
}


@pytest.mark.parametrize("name", sorted(STATELESS))
def test_stateless_transformations_name_a_gradient_tree_mismatch(name):
    opt = STATELESS[name]()
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"does not match the parameters: missing .*\['b'\]"):
        opt.update({"w": jnp.ones(2)}, state, params)
    with pytest.raises(ValueError, match=r"not in the parameters: \['c'\]"):
        opt.update({"w": jnp.ones(2), "b": jnp.ones(2), "c": jnp.ones(1)}, state, params)
    updates, _ = opt.update(params, state, params)  # matching trees still work
    assert set(updates) == {"w", "b"}


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda b: gdjax.sgd(0.1, 0.9, nesterov=b), "nesterov"),
        (lambda b: gdjax.adam(0.1, nesterov=b), "nesterov"),
        (lambda b: gdjax.rmsprop(0.1, centered=b), "centered"),
        (lambda b: gdjax.rmsprop(0.1, bias_correction=b), "bias_correction"),
        (lambda b: gdjax.amsgrad(0.1, bias_correction_nu=b), "bias_correction_nu"),
        (lambda b: gdjax.schedules.exponential_decay(0.1, 10, 0.5, staircase=b), "staircase"),
    ],
)
def test_a_traced_switch_is_rejected_with_its_name(build, name):
    with pytest.raises(TypeError, match=f"{name} must be a Python bool"):
        jax.jit(build)(jnp.asarray(True))


@pytest.mark.parametrize(
    "build, exc, message",
    [
        (lambda: gdjax.accumulate_gradients(gdjax.sgd(0.1), jnp.asarray(0)), ValueError, "every_k"),
        (
            lambda: gdjax.accumulate_gradients(gdjax.sgd(0.1), jnp.asarray(2.0)),
            TypeError,
            "every_k",
        ),
        (lambda: gdjax.apply_if_finite(gdjax.sgd(0.1), -1), ValueError, "max_consecutive_errors"),
        (lambda: gdjax.apply_if_finite(gdjax.sgd(0.1), 1.5), TypeError, "max_consecutive_errors"),
        (lambda: gdjax.schedules.linear_schedule(1.0, 0.0, 10.0), TypeError, "transition_steps"),
        (
            lambda: gdjax.schedules.cosine_decay_schedule(1.0, jnp.asarray(0)),
            ValueError,
            "decay_steps",
        ),
        (lambda: gdjax.schedules.step_decay(1.0, 0), ValueError, "step_size"),
        (
            lambda: gdjax.schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10),
            ValueError,
            "decay_steps must be > warmup_steps",
        ),
        (
            lambda: gdjax.schedules.piecewise_constant_schedule(1.0, {2.5: 0.1}),
            TypeError,
            "boundaries_and_scales keys must be Python ints",
        ),
    ],
)
def test_bad_counts_are_named(build, exc, message):
    with pytest.raises(exc, match=message):
        build()
