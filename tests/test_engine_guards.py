"""A step is never applied if anything it writes is not finite — whatever made it so.

The loss and gradient can be finite while the update is not: an infinite learning rate, a
schedule that returns NaN, Adam's eps rounding to zero in float16. The model state can turn
non-finite with a finite loss. Each must leave the state as it was before the step, under
every policy, with a message that says what happened.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax
from gdjax.train.shuffle import permutation

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
KW = {"batch_size": 4, "key": jax.random.key(0)}


def _mse(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _finite(tree):
    return all(bool(np.isfinite(np.asarray(x, np.float32)).all()) for x in jax.tree.leaves(tree))


def _reference(lr_at, epochs, skip_bad=True):
    """Plain optax SGD over the engine's documented batch order; a step whose learning rate
    is not finite is left out (what 'never applied' means)."""
    params = jax.tree.map(jnp.asarray, P0)
    step = 0
    for e in range(epochs):
        order = np.asarray(permutation(jax.random.fold_in(jax.random.fold_in(KW["key"], e), 0), 12))
        for i in range(3):
            idx = order[4 * i : 4 * i + 4]
            lr = lr_at(step)
            step += 1
            if not np.isfinite(lr):
                if skip_bad:
                    continue
                return params
            grads = jax.grad(_mse)(params, (X[idx], Y[idx]))
            params = jax.tree.map(lambda p, g, lr=lr: p - lr * g, params, grads)
    return params


def _nan_after(k, lr=0.1):
    return lambda count: jnp.where(count >= k, jnp.nan, lr)


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_a_schedule_that_turns_nan_never_reaches_the_parameters(policy):
    with pytest.warns(RuntimeWarning, match=r"step 2 of epoch 2 .*the parameters"):
        res = gdjax.fit(
            _mse, P0, gdjax.sgd(_nan_after(4)), (X, Y), epochs=3, on_nonfinite=policy, **KW
        )
    assert _finite(res.params) and _finite(res.opt_state)
    want = _reference(lambda s: 0.1 if s < 4 else np.nan, 3)
    for k in ("w", "b"):
        np.testing.assert_allclose(res.params[k], want[k], rtol=1e-5, atol=1e-7)
    if policy == "stop":
        assert res.stop_reason == "non-finite loss" and res.epochs_run == 2
    else:
        assert res.epochs_run == 3
        assert res.history["nonfinite_steps"].tolist() == [0, 2, 3]


def test_an_infinite_learning_rate_array_is_stopped_with_a_true_message():
    with pytest.warns(RuntimeWarning, match=r"the loss was finite.*learning rate") as record:
        res = gdjax.fit(_mse, P0, gdjax.sgd(jnp.asarray(jnp.inf)), (X, Y), epochs=2, **KW)
    assert "returning the state from before that step" in str(record[0].message)
    np.testing.assert_array_equal(res.params["w"], P0["w"])  # the first step was the bad one
    assert res.epochs_run == 1


def test_raise_names_the_step_and_returns_nothing():
    with pytest.raises(FloatingPointError, match=r"step 3 of epoch 1.*the parameters") as err:
        gdjax.fit(_mse, P0, gdjax.sgd(_nan_after(2)), (X, Y), epochs=2, on_nonfinite="raise", **KW)
    assert "returning" not in str(err.value)


def test_float16_adam_never_applies_its_nan_updates():
    # eps = 1e-8 is 0 in float16: an entry whose gradient is exactly 0 gets 0 / 0.
    p16 = {"w": jnp.zeros(4, jnp.float16)}

    def loss(p, batch):
        return jnp.mean((batch[:, :2] @ p["w"][:2] - 1.0) ** 2)  # w[2:] gets no gradient

    data = np.ones((8, 4), np.float16)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = gdjax.fit(loss, p16, gdjax.adam(1e-2), data, batch_size=4, epochs=2, key=KW["key"])
    assert _finite(res.params) and _finite(res.opt_state)


def test_a_non_finite_model_state_with_a_finite_loss_is_not_kept():
    def loss(p, state, batch):
        x = batch[0]
        bad = state["steps"] >= 2
        running = jnp.where(bad, jnp.nan, state["mean"] * 0.9 + 0.1 * jnp.mean(x))
        return _mse(p, batch), {"mean": running, "steps": state["steps"] + 1}

    ms0 = {"mean": jnp.zeros(()), "steps": jnp.zeros((), jnp.int32)}
    with pytest.warns(RuntimeWarning, match="the model state"):
        res = gdjax.fit(
            loss, P0, gdjax.sgd(0.1), (X, Y), epochs=1, model_state=ms0, on_nonfinite="stop", **KW
        )
    assert _finite(res.model_state) and int(res.model_state["steps"]) == 2


def test_a_diverging_member_is_frozen_finite_and_the_others_train_as_alone():
    lrs = np.array([0.1, np.inf, 0.05], np.float32)
    with pytest.warns(RuntimeWarning, match=r"member 1"):
        res = gdjax.sweep(
            _mse,
            P0,
            lambda h: gdjax.sgd(h["lr"]),
            (X, Y),
            hparams={"lr": lrs},
            batch_size=4,
            epochs=2,
        )
    assert _finite(res.params)
    np.testing.assert_array_equal(res.params["w"][1], P0["w"])
    assert res.stop_reason[1] == "non-finite loss" and res.stop_reason[0] is None
    for i in (0, 2):
        alone = gdjax.fit(_mse, P0, gdjax.sgd(float(lrs[i])), (X, Y), epochs=2, **KW)
        np.testing.assert_allclose(res.params["w"][i], alone.params["w"], rtol=2e-6)


def test_a_chunk_that_meets_a_bad_step_is_redone_from_its_start():
    # skip: the batch holding example 0 has an infinite loss and is dropped, every other step
    # applied once, exactly as in the reference; the chunk that met it ran twice (fast, then
    # checked), its effect once.
    def loss(p, batch):
        return _mse(p, batch) + jnp.where(jnp.any(batch[1] == Y[0]), jnp.inf, 0.0)

    res = gdjax.fit(
        loss, P0, gdjax.sgd(0.1), (X, Y), epochs=2, on_nonfinite="skip", record_steps=True, **KW
    )
    params = jax.tree.map(jnp.asarray, P0)
    for e in range(2):
        order = np.asarray(permutation(jax.random.fold_in(jax.random.fold_in(KW["key"], e), 0), 12))
        for i in range(3):
            idx = order[4 * i : 4 * i + 4]
            if 0 in idx:
                continue
            grads = jax.grad(_mse)(params, (X[idx], Y[idx]))
            params = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    np.testing.assert_allclose(res.params["w"], params["w"], rtol=1e-5)
    assert res.steps == 6 and res.history["nonfinite_steps"].tolist() == [1, 1]
    assert np.isinf(res.history["step_loss"]).sum() == 2
