"""Every named optimizer and transformation that optax also has gives optax's parameters.

The oracle is optax: 120 steps of random gradients over a nested pytree (dicts, lists, mixed
shapes, a scalar), float32, tight tolerance; also under a schedule, and inside a chain with
clipping and weight decay.
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import gdjax
from tests._trees import assert_trees_close, gradient_stream, nested_params, run_pair
from tests.test_opt_breadth import NEW_OPTIMIZERS

STEPS = 120

# (gdjax factory, optax factory): same positional/keyword arguments.
OPTIMIZERS = {
    "sgd": (lambda lr: gdjax.sgd(lr), lambda lr: optax.sgd(lr)),
    "sgd_momentum": (lambda lr: gdjax.sgd(lr, 0.9), lambda lr: optax.sgd(lr, 0.9)),
    "sgd_nesterov": (
        lambda lr: gdjax.sgd(lr, 0.9, nesterov=True),
        lambda lr: optax.sgd(lr, 0.9, nesterov=True),
    ),
    "momentum": (lambda lr: gdjax.momentum(lr, 0.8), lambda lr: optax.sgd(lr, 0.8)),
    "nesterov": (
        lambda lr: gdjax.nesterov(lr, 0.8),
        lambda lr: optax.sgd(lr, 0.8, nesterov=True),
    ),
    "adagrad": (lambda lr: gdjax.adagrad(lr), lambda lr: optax.adagrad(lr)),
    "rmsprop": (lambda lr: gdjax.rmsprop(lr), lambda lr: optax.rmsprop(lr)),
    "rmsprop_centered_momentum": (
        lambda lr: gdjax.rmsprop(lr, centered=True, momentum=0.9),
        lambda lr: optax.rmsprop(lr, centered=True, momentum=0.9),
    ),
    "rmsprop_eps_outside": (
        lambda lr: gdjax.rmsprop(lr, eps_in_sqrt=False, nesterov=True, momentum=0.5),
        lambda lr: optax.rmsprop(lr, eps_in_sqrt=False, nesterov=True, momentum=0.5),
    ),
    "adam": (lambda lr: gdjax.adam(lr), lambda lr: optax.adam(lr)),
    "adam_eps_root": (
        lambda lr: gdjax.adam(lr, b1=0.8, eps_root=1e-8),
        lambda lr: optax.adam(lr, b1=0.8, eps_root=1e-8),
    ),
    "adamw": (
        lambda lr: gdjax.adamw(lr, weight_decay=1e-2),
        lambda lr: optax.adamw(lr, weight_decay=1e-2),
    ),
    "rmsprop_bias_correction": (
        lambda lr: gdjax.rmsprop(lr, bias_correction=True),
        lambda lr: optax.rmsprop(lr, bias_correction=True),
    ),
    "rmsprop_centered_bias_correction": (
        lambda lr: gdjax.rmsprop(lr, centered=True, bias_correction=True),
        lambda lr: optax.rmsprop(lr, centered=True, bias_correction=True),
    ),
    "nadam": (lambda lr: gdjax.nadam(lr), lambda lr: optax.nadam(lr)),
    "nadam_without_nesterov": (
        lambda lr: gdjax.nadam(lr, nesterov=False),
        lambda lr: optax.nadam(lr, nesterov=False),
    ),
    "amsgrad": (lambda lr: gdjax.amsgrad(lr), lambda lr: optax.amsgrad(lr)),
    "amsgrad_without_bias_correction": (
        lambda lr: gdjax.amsgrad(lr, bias_correction_mu=False, bias_correction_nu=False),
        lambda lr: optax.amsgrad(lr, bias_correction_mu=False, bias_correction_nu=False),
    ),
    "adadelta": (
        lambda lr: gdjax.adadelta(lr, weight_decay=1e-3),
        lambda lr: optax.adadelta(lr, weight_decay=1e-3),
    ),
    "adamax": (lambda lr: gdjax.adamax(lr), lambda lr: optax.adamax(lr)),
}


def _setup():
    params = nested_params(jax.random.PRNGKey(0))
    grads = gradient_stream(jax.random.PRNGKey(1), params, STEPS)
    return params, grads


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_matches_optax(name):
    ours, theirs = OPTIMIZERS[name]
    params, grads = _setup()
    lr = 0.5 if name == "adadelta" else 1e-2
    (got, _), (want, _) = run_pair(ours(lr), theirs(lr), params, grads)
    assert_trees_close(got, want)


# Under a schedule the source documents' momentum (learning rate inside the velocity) is no
# longer optax's sgd; its optax oracle scales by the learning rate first, then accumulates.
SCHEDULED = {
    **{name: OPTIMIZERS[name] for name in ["adagrad", "rmsprop", "adam", "adamw", "nadam"]},
    **{name: OPTIMIZERS[name] for name in ["amsgrad", "adadelta", "adamax"]},
    "sgd": OPTIMIZERS["sgd_momentum"],
    "momentum": (
        lambda lr: gdjax.momentum(lr, 0.8),
        lambda lr: optax.chain(optax.scale_by_learning_rate(lr), optax.trace(0.8)),
    ),
    "nesterov": (
        lambda lr: gdjax.nesterov(lr, 0.8),
        lambda lr: optax.chain(optax.scale_by_learning_rate(lr), optax.trace(0.8, nesterov=True)),
    ),
}


def test_every_named_optimizer_is_checked_under_a_schedule():
    # optax's remaining optimizers are checked under a schedule in tests/test_opt_breadth.py,
    # the newer ones in test_opt_more_parity.py and test_modern_methods.py.
    from tests.test_modern_methods import CHECKED as MODERN
    from tests.test_opt_more_parity import CHECKED as MORE
    from tests.test_second_order import CHECKED as SECOND_ORDER

    checked = set(SCHEDULED) | set(NEW_OPTIMIZERS) | MORE | MODERN | SECOND_ORDER
    assert checked == set(gdjax.optimizers.__all__)


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_optimizer_matches_optax_under_a_schedule(name):
    ours, theirs = SCHEDULED[name]
    params, grads = _setup()
    ours_sched = gdjax.schedules.warmup_cosine_decay_schedule(0.0, 3e-2, 10, STEPS, 1e-3)
    theirs_sched = optax.warmup_cosine_decay_schedule(0.0, 3e-2, 10, STEPS, 1e-3)
    (got, _), (want, _) = run_pair(ours(ours_sched), theirs(theirs_sched), params, grads)
    assert_trees_close(got, want)


def test_chain_with_clipping_and_decay_matches_optax():
    params, grads = _setup()
    sched = gdjax.schedules.exponential_decay(1e-2, 20, 0.7)
    ours = gdjax.chain(
        gdjax.clip_by_global_norm(1.0),
        gdjax.scale_by_adam(b2=0.99),
        gdjax.add_decayed_weights(1e-3, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
        gdjax.scale_by_learning_rate(sched),
    )
    theirs = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.scale_by_adam(b2=0.99),
        optax.add_decayed_weights(1e-3, mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
        optax.scale_by_learning_rate(optax.exponential_decay(1e-2, 20, 0.7)),
    )
    (got, _), (want, _) = run_pair(ours, theirs, params, grads)
    assert_trees_close(got, want)


TRANSFORMS = {
    "clip": (lambda: gdjax.clip(0.5), lambda: optax.clip(0.5)),
    "clip_by_global_norm": (
        lambda: gdjax.clip_by_global_norm(2.0),
        lambda: optax.clip_by_global_norm(2.0),
    ),
    "trace": (lambda: gdjax.trace(0.7), lambda: optax.trace(0.7)),
    "trace_nesterov": (
        lambda: gdjax.trace(0.7, nesterov=True),
        lambda: optax.trace(0.7, nesterov=True),
    ),
    "scale_by_rss": (lambda: gdjax.scale_by_rss(0.2), lambda: optax.scale_by_rss(0.2)),
    "scale_by_rms": (
        lambda: gdjax.scale_by_rms(0.8, initial_scale=0.1),
        lambda: optax.scale_by_rms(0.8, initial_scale=0.1),
    ),
    "scale_by_stddev": (lambda: gdjax.scale_by_stddev(), lambda: optax.scale_by_stddev()),
    "scale_by_stddev_bias_correction": (
        lambda: gdjax.scale_by_stddev(0.8, bias_correction=True),
        lambda: optax.scale_by_stddev(0.8, bias_correction=True),
    ),
    "scale_by_adam_nesterov": (
        lambda: gdjax.scale_by_adam(nesterov=True),
        lambda: optax.scale_by_adam(nesterov=True),
    ),
    "scale_by_amsgrad": (lambda: gdjax.scale_by_amsgrad(), lambda: optax.scale_by_amsgrad()),
    "scale_by_adamax": (lambda: gdjax.scale_by_adamax(), lambda: optax.scale_by_adamax()),
    "scale_by_adadelta": (lambda: gdjax.scale_by_adadelta(), lambda: optax.scale_by_adadelta()),
    "scale": (lambda: gdjax.scale(-0.3), lambda: optax.scale(-0.3)),
    "scale_by_learning_rate_none": (
        lambda: gdjax.chain(gdjax.scale_by_learning_rate(None), gdjax.scale_by_learning_rate()),
        lambda: optax.chain(optax.scale_by_learning_rate(None), optax.scale_by_learning_rate()),
    ),
    # Same key, same noise: gdjax draws with optax's sampler.
    "add_noise": (lambda: gdjax.add_noise(0.1, 0.55, 7), lambda: optax.add_noise(0.1, 0.55, 7)),
    "scale_by_schedule": (
        lambda: gdjax.scale_by_schedule(gdjax.schedules.cosine_decay_schedule(-0.1, 50)),
        lambda: optax.scale_by_schedule(optax.cosine_decay_schedule(-0.1, 50)),
    ),
    "add_decayed_weights_schedule": (
        lambda: gdjax.add_decayed_weights(gdjax.schedules.linear_schedule(0.1, 0.0, 50)),
        lambda: optax.add_decayed_weights(optax.linear_schedule(0.1, 0.0, 50)),
    ),
    "masked_adam": (
        lambda: gdjax.masked(
            gdjax.adam(1e-2),
            {"dense": {"w": True, "b": False}, "layers": [False, True], "scale": False},
        ),
        lambda: optax.masked(
            optax.adam(1e-2),
            {"dense": {"w": True, "b": False}, "layers": [False, True], "scale": False},
        ),
    ),
    "accumulate_gradients": (
        lambda: gdjax.accumulate_gradients(gdjax.adam(1e-2), every_k=3),
        lambda: optax.MultiSteps(optax.adam(1e-2), every_k_schedule=3).gradient_transformation(),
    ),
    "apply_if_finite": (
        lambda: gdjax.apply_if_finite(gdjax.sgd(1e-2, 0.9), 3),
        lambda: optax.apply_if_finite(optax.sgd(1e-2, 0.9), 3),
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transformation_matches_optax(name):
    ours, theirs = TRANSFORMS[name]
    params, grads = _setup()
    pair = ours(), theirs()
    if name.startswith(("scale_by", "trace", "clip")):
        # Chain a plain SGD step after the scaling transforms so both produce a descent.
        pair = gdjax.chain(pair[0], gdjax.scale(-1e-2)), optax.chain(pair[1], optax.scale(-1e-2))
    (got, _), (want, _) = run_pair(*pair, params, grads)
    assert_trees_close(got, want)


def test_apply_if_finite_gives_up_like_optax_after_max_consecutive_errors():
    """Runs of +-inf gradients, some longer than max_consecutive_errors: skipped, then applied.

    Clipping inside the guarded optimizer turns an accepted infinite gradient into a finite
    step, so the trajectories stay comparable after the guard gives up.
    """
    params, grads = _setup()
    bad_steps = [3, 10, 11, 20, 21, 22, 23, 24, 40, 41, 42, 43]  # runs of 1, 2, 5 and 4
    w = grads["dense"]["w"]
    for i, step in enumerate(bad_steps):
        w = w.at[step, i % 3, 1].set(jnp.inf if i % 2 else -jnp.inf)
    grads["dense"]["w"] = w
    ours = gdjax.apply_if_finite(gdjax.chain(gdjax.clip(1.0), gdjax.sgd(1e-2, 0.9)), 3)
    theirs = optax.apply_if_finite(optax.chain(optax.clip(1.0), optax.sgd(1e-2, 0.9)), 3)
    (got, got_state), (want, want_state) = run_pair(ours, theirs, params, grads)
    assert_trees_close(got, want)
    for field in ["notfinite_count", "last_finite", "total_notfinite"]:
        assert int(getattr(got_state, field)) == int(getattr(want_state, field)), field
    assert int(got_state.total_notfinite) == len(bad_steps)
    # Two of the runs outlast the guard (the 4th and 5th errors of the run of 5, the 4th of the
    # run of 4) and move the parameters by a clipped step; a fully skipped run would not.
    assert bool(jnp.all(jnp.isfinite(got["dense"]["w"])))


def _add_tags():
    """An inner transformation with an extra argument shaped like the gradients."""

    def update(updates, state, params=None, *, tags):
        del params
        return jax.tree.map(lambda u, t: u + t, updates, tags), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


def test_masked_masks_compatible_extra_args_like_optax():
    params = {"w": jnp.ones(3), "b": jnp.ones(2), "s": jnp.ones(())}
    mask = {"w": True, "b": False, "s": True}
    tags = {"w": jnp.arange(3.0), "b": jnp.full(2, 5.0), "s": jnp.asarray(2.0)}
    ours = gdjax.masked(
        gdjax.chain(_add_tags(), gdjax.adam(0.1)), mask, mask_compatible_extra_args=True
    )
    theirs = optax.masked(
        optax.chain(_add_tags(), optax.adam(0.1)), mask, mask_compatible_extra_args=True
    )
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        u_ours, s_ours = ours.update(params, s_ours, params, tags=tags)
        u_theirs, s_theirs = theirs.update(params, s_theirs, params, tags=tags)
        assert_trees_close(u_ours, u_theirs)
    assert float(u_ours["b"][0]) == 1.0  # unmasked leaf passed through, its tag unused


def test_add_noise_from_a_typed_key_or_a_seed_matches_optax():
    params = {"w": jnp.zeros(3), "b": [jnp.zeros((2, 2))]}
    grads = jax.tree.map(jnp.ones_like, params)
    theirs = optax.add_noise(0.5, 0.55, key=jax.random.key(3))
    with pytest.warns(DeprecationWarning, match="seed"):
        from_seed = gdjax.add_noise(0.5, 0.55, seed=3)
    for ours in [gdjax.add_noise(0.5, 0.55, key=jax.random.key(3)), from_seed]:
        s_ours, s_theirs = ours.init(params), theirs.init(params)
        for _ in range(2):
            u_ours, s_ours = ours.update(grads, s_ours, params)
            u_theirs, s_theirs = theirs.update(grads, s_theirs, params)
            assert_trees_close(u_ours, u_theirs)
    with pytest.raises(ValueError, match="key or seed, not both"):
        gdjax.add_noise(0.5, 0.55, key=1, seed=1)
