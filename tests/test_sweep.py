"""gdjax.sweep: every vmapped member equals the same configuration trained alone by fit."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x, *, rate=0.0, key=None):
        h = nn.relu(nn.Dense(8)(x))
        if key is not None:
            keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
            h = jnp.where(keep, h / (1.0 - rate), 0.0)
        return nn.Dense(3)(h)


MODEL = _MLP()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(22, 4)).astype(np.float32)
Y = RNG.integers(0, 3, size=22).astype(np.int32)
XV = RNG.normal(size=(9, 4)).astype(np.float32)
YV = RNG.integers(0, 3, size=9).astype(np.int32)


@jax.jit  # one compiled program instead of flax's init op by op
def _init(key):
    return MODEL.init(key, X[:1])


def _loss(p, batch, key):
    logits = MODEL.apply(p, batch[0], rate=0.25, key=key)
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


def _loss_no_key(p, batch):
    return _loss(p, batch, None)


def _acc(p, batch):
    return jnp.mean(jnp.argmax(MODEL.apply(p, batch[0]), -1) == batch[1])


def _close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=2e-6)


COMMON = {
    # named validation sets, each evaluated per member as fit evaluates it
    "validation_data": {"val": (XV, YV), "test": (X[:7], Y[:7])},
    "metrics": {"accuracy": _acc},
    "takes_key": True,
    "record_steps": True,
}


def test_members_equal_fit_alone():
    lrs = np.array([1e-2, 5e-2], np.float32)
    b1 = np.array([0.9, 0.8], np.float32)
    seeds = [3, 4]
    res = gdjax.sweep(
        _loss,
        _init,
        lambda hp: gdjax.adam(hp["lr"], b1=hp["b1"]),
        (X, Y),
        hparams={"lr": lrs, "b1": b1},
        seeds=seeds,
        batch_size=5,
        epochs=2,
        **COMMON,
    )
    assert res.history["loss"].shape == (2, 2)
    assert res.history["step_loss"].shape == (2, 2, 5)
    for i, seed in enumerate(seeds):
        key = jax.random.key(seed)
        alone = gdjax.fit(
            _loss,
            _init(key),
            # hyperparameters as data: the second member's run reuses the first one's programs
            gdjax.adam(float(lrs[i]), b1=float(b1[i])),
            (X, Y),
            batch_size=5,
            epochs=2,
            key=key,
            **COMMON,
        )
        _close(res.member(i)["params"], alone.params)
        for k in ("loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "step_loss"):
            np.testing.assert_allclose(res.history[k][i], alone.history[k], rtol=2e-5, err_msg=k)
    # the members really differ
    assert not np.allclose(res.history["loss"][0], res.history["loss"][1])


def test_batch_size_sweep_runs_one_program_per_size_in_member_order():
    hp = {"lr": np.array([0.1, 0.1, 0.05]), "batch_size": [4, 22, 4]}
    res = gdjax.sweep(
        _loss_no_key,
        _init(jax.random.key(0)),
        lambda h: optax.sgd(h["lr"]),
        (X, Y),
        hparams=hp,
        seeds=1,
        batch_size=None,
        epochs=2,
        record_steps=True,
    )
    assert res.history["step_loss"].shape == (3, 2, 6)
    assert np.isnan(res.history["step_loss"][1, :, 1:]).all()  # one full-batch step per epoch
    np.testing.assert_array_equal(res.hparams["batch_size"], [4, 22, 4])
    for i in (1, 2):
        alone = gdjax.fit(
            _loss_no_key,
            _init(jax.random.key(0)),
            optax.sgd(hp["lr"][i]),
            (X, Y),
            batch_size=hp["batch_size"][i],
            epochs=2,
            key=jax.random.key(1),
        )
        _close(res.member(i)["params"], alone.params)
        np.testing.assert_allclose(res.history["loss"][i], alone.history["loss"], rtol=2e-5)


def test_loss_hyperparameter_and_shared_params():
    # an L2 coefficient swept through the loss; zero coefficient matches plain MSE training
    x = np.linspace(-1, 1, 12, dtype=np.float32)
    y = 2 * x

    def loss(w, batch, hparams):
        return jnp.mean((batch[0] * w - batch[1]) ** 2) + hparams["l2"] * w**2

    res = gdjax.sweep(
        loss,
        jnp.zeros(()),
        optax.sgd(0.3),
        (x, y),
        hparams={"l2": np.array([0.0, 1.0])},
        loss_takes_hparams=True,
        batch_size=None,
        epochs=200,
    )
    # minimiser of mean((xw - 2x)^2) + l2 w^2 is w = 2 mean(x^2) / (mean(x^2) + l2)
    m = np.mean(x**2)
    np.testing.assert_allclose(np.asarray(res.params), [2.0, 2 * m / (m + 1.0)], rtol=1e-4)


def test_early_stopping_freezes_each_member():
    ones = np.ones(4, np.float32)
    val = np.full(3, 0.8, np.float32)
    loss = lambda w, y: jnp.mean((w - y) ** 2)  # noqa: E731
    es = gdjax.EarlyStopping(patience=2)
    res = gdjax.sweep(
        loss,
        jnp.zeros(()),
        lambda h: optax.sgd(h["lr"]),
        ones,
        hparams={"lr": np.array([0.25, 0.01])},
        batch_size=None,
        epochs=6,
        validation_data=val,
        early_stopping=es,
    )
    # member 0 is the hand-computed run of test_train_stopping: best epoch 2, stops after 4
    assert res.epochs_run.tolist() == [4, 6]
    assert res.stop_reason == ["early stopping", None]
    assert float(res.params[0]) == 0.75
    assert np.isnan(res.history["val_loss"][0, 4:]).all()
    alone = gdjax.fit(
        loss,
        jnp.zeros(()),
        optax.sgd(0.01),
        ones,
        batch_size=None,
        epochs=6,
        key=jax.random.key(0),
        validation_data=val,
        early_stopping=es,
    )
    np.testing.assert_allclose(float(res.params[1]), float(alone.params), rtol=1e-6)


def test_seeds_only_sweep_and_single_member():
    x = np.linspace(-1, 1, 12, dtype=np.float32)

    def loss(w, batch):
        return jnp.mean((batch * w - 2 * batch) ** 2)

    one = gdjax.sweep(loss, jnp.zeros(()), optax.sgd(0.1), x, batch_size=5, epochs=2)
    two = gdjax.sweep(loss, jnp.zeros(()), optax.sgd(0.1), x, seeds=[0, 1], batch_size=5, epochs=2)
    alone = gdjax.fit(
        loss, jnp.zeros(()), optax.sgd(0.1), x, batch_size=5, epochs=2, key=jax.random.key(1)
    )
    assert one.history["loss"].shape == (1, 2)
    np.testing.assert_allclose(one.history["loss"][0], two.history["loss"][0], rtol=1e-6)
    np.testing.assert_allclose(two.history["loss"][1], alone.history["loss"], rtol=1e-6)
    assert not np.allclose(two.history["loss"][0], two.history["loss"][1])


def test_grid_and_errors():
    hp = gdjax.grid(lr=[0.1, 0.2], wd=[0.0, 1e-4, 1e-3])
    assert hp["lr"].tolist() == [0.1] * 3 + [0.2] * 3 and hp["wd"].tolist()[:3] == [0, 1e-4, 1e-3]
    with pytest.raises(ValueError, match="common length"):
        gdjax.sweep(
            lambda p, b: jnp.sum(p),
            jnp.zeros(()),
            lambda h: optax.sgd(h["lr"]),
            np.ones(3, np.float32),
            hparams={"lr": [0.1, 0.2]},
            seeds=[1, 2, 3],
            batch_size=1,
            epochs=1,
        )


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_a_diverging_member_leaves_the_others_as_fit_alone(policy):
    # lr 1e30 overflows at the first step; the healthy member must train exactly as alone and
    # the diverging one follows the non-finite policy (exercises the per-member fallback).
    x = RNG.normal(size=(12, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)

    def loss(w, batch):
        return jnp.mean((batch[0] @ w - batch[1]) ** 2)

    kw = {"batch_size": 4, "epochs": 3, "on_nonfinite": policy, "record_steps": True}
    res = gdjax.sweep(
        loss,
        jnp.ones(3),
        lambda hp: optax.sgd(hp["lr"]),
        (x, y),
        hparams={"lr": np.array([0.05, 1e30], np.float32)},
        **kw,
    )
    alone = gdjax.fit(loss, jnp.ones(3), optax.sgd(0.05), (x, y), key=jax.random.key(0), **kw)
    _close(res.member(0)["params"], alone.params)
    np.testing.assert_allclose(res.history["loss"][0], alone.history["loss"], rtol=1e-6)
    assert res.stop_reason[0] is None
    bad = res.member(1)
    if policy == "skip":  # every later step overflows too: all skipped, params frozen finite
        assert res.stop_reason[1] is None and res.epochs_run[1] == 3
        assert np.isfinite(np.asarray(bad["params"])).all()
        assert bad["history"]["nonfinite_steps"].sum() >= 1
    else:
        assert res.stop_reason[1] == "non-finite loss" and res.epochs_run[1] == 1
