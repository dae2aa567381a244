"""Stopping rules, reduce-on-plateau and the non-finite policy, against hand-computed runs.

Full-batch GD on loss mean((w - 1)^2) with lr = 0.25 gives w_k = 1 - 0.5^k exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax

ONES = np.ones(4, np.float32)
VAL = np.full(3, 0.8, np.float32)


def _loss(w, y):
    return jnp.mean((w - y) ** 2)


def _run(**kw):
    kw.setdefault("epochs", 10)
    return gdjax.fit(
        _loss, jnp.zeros(()), optax.sgd(0.25), ONES, batch_size=None, key=jax.random.key(0), **kw
    )


def test_early_stopping_restores_best_epoch():
    # val loss (w - 0.8)^2 for w = .5, .75, .875, .9375: best at epoch 2, patience 2 -> stop at 4
    res = _run(validation_data=VAL, early_stopping=gdjax.EarlyStopping(patience=2))
    assert res.epochs_run == 4 and res.best_epoch == 2
    assert res.stop_reason == "early stopping"
    assert float(res.params) == 0.75
    np.testing.assert_allclose(
        res.history["val_loss"], [0.09, 0.0025, 0.005625, 0.01890625], rtol=1e-6
    )


def test_early_stopping_without_restore_keeps_last():
    res = _run(
        validation_data=VAL, early_stopping=gdjax.EarlyStopping(patience=2, restore_best=False)
    )
    assert float(res.params) == 0.9375


def test_early_stopping_max_mode_and_min_delta():
    # monitor -val_loss via a metric in "max" mode; min_delta 0.003 makes epoch 3 no gain
    def neg(w, y):
        return -jnp.mean((w - y) ** 2)

    res = _run(
        validation_data=VAL,
        metrics={"neg": neg},
        early_stopping=gdjax.EarlyStopping("val_neg", patience=1, mode="max", min_delta=0.1),
    )
    # epoch 1 sets best (-0.09 > -inf); epoch 2 gains 0.0875 < 0.1 -> stop after epoch 2
    assert res.epochs_run == 2 and res.best_epoch == 1 and float(res.params) == 0.5


def test_tolerance_stops_when_change_is_negligible():
    # epoch losses 1, .25, .0625, .015625, .00390625: changes .75 .19 .047 .0117 -> stop at 5
    res = _run(tol=0.02)
    assert res.epochs_run == 5 and res.stop_reason == "loss change below tolerance"
    np.testing.assert_allclose(res.history["loss"], 0.25 ** np.arange(5), rtol=1e-6)


def test_reduce_on_plateau_scales_updates():
    res = _run(
        epochs=6,
        validation_data=VAL,
        reduce_on_plateau=gdjax.ReduceOnPlateau(factor=0.5, patience=2),
    )
    np.testing.assert_array_equal(res.history["lr_scale"], [1, 1, 1, 1, 0.5, 0.5])
    w = 0.0
    for scale in res.history["lr_scale"]:
        w = w - 0.25 * scale * 2 * (w - 1)
    np.testing.assert_allclose(float(res.params), w, rtol=1e-6)
    assert res.epochs_run == 6


def _counting_loss(p, batch):
    # SGD(lr=1) raises t by 1 per applied step; the loss becomes NaN once t reaches 3.
    return jnp.mean(batch) * 0 - p["t"] + jnp.where(p["t"] >= 3, jnp.nan, 0.0)


def _count_run(policy):
    return gdjax.fit(
        _counting_loss,
        {"t": jnp.zeros(())},
        optax.sgd(1.0),
        ONES,
        batch_size=2,
        epochs=3,
        key=jax.random.key(0),
        on_nonfinite=policy,
    )


def test_nonfinite_stop_returns_last_finite_params_with_warning():
    with pytest.warns(RuntimeWarning, match="made the loss non-finite") as record:
        res = _count_run("stop")
    assert "returning the state from before that step" in str(record[0].message)
    assert float(res.params["t"]) == 3.0
    assert res.stop_reason == "non-finite loss" and res.epochs_run == 2
    np.testing.assert_array_equal(res.history["nonfinite_steps"], [0, 1])
    np.testing.assert_allclose(res.history["loss"], [-0.5, -2.0])  # finite steps only


def test_nonfinite_skip_counts_and_goes_on():
    res = _count_run("skip")
    assert float(res.params["t"]) == 3.0 and res.epochs_run == 3 and res.stop_reason is None
    np.testing.assert_array_equal(res.history["nonfinite_steps"], [0, 1, 2])
    assert np.isnan(res.history["loss"][2])


def test_nonfinite_raise():
    with pytest.raises(FloatingPointError, match="non-finite"):
        _count_run("raise")
