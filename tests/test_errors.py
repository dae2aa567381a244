"""Bad hyperparameters fail when the optimizer is built; mismatched gradients fail clearly."""

import jax.numpy as jnp
import pytest

import gdjax

BAD_VALUES = [
    (lambda: gdjax.sgd(-0.1), ValueError, r"learning_rate must be in \[0, inf\]; got -0.1"),
    (lambda: gdjax.sgd(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: gdjax.sgd(0.1, momentum=-0.5), ValueError, r"momentum must be in \[0, 1\)"),
    (lambda: gdjax.sgd(0.1, nesterov=True), ValueError, "nesterov=True needs a momentum"),
    (lambda: gdjax.momentum(0.1, beta=1.2), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: gdjax.nesterov(0.1, beta=-0.1), ValueError, r"beta must be in \[0, 1\)"),
    (lambda: gdjax.adam(1e-3, b1=1.0), ValueError, r"b1 must be in \[0, 1\)"),
    (lambda: gdjax.adam(1e-3, b2=1.5), ValueError, r"b2 must be in \[0, 1\)"),
    (lambda: gdjax.adam(1e-3, eps=0.0), ValueError, r"eps must be in \(0, inf\]"),
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
    (lambda: gdjax.schedules.exponential_decay(0.1, 0, 0.5), ValueError, "transition_steps"),
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
