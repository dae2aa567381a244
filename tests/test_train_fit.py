"""gdjax.fit against hand-written optax loops and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train import fit
from gdjax.train.shuffle import permutation


def _linreg(n=10, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32)[:d] + 0.3).astype(np.float32)
    return x, y


def _mse(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}


def _perm(key, epoch, n):
    """The documented shuffle: permutation(fold_in(fold_in(key, epoch), 0), n)."""
    return np.asarray(permutation(jax.random.fold_in(jax.random.fold_in(key, epoch), 0), n))


def _reference(loss, params, opt, data, bs, epochs, key, drop_last=False):
    """A plain Python loop with optax: the oracle."""
    n = len(data[0])
    state = opt.init(params)
    losses = []
    grad = jax.jit(jax.value_and_grad(loss))
    for e in range(epochs):
        order = _perm(key, e, n)
        total, count = 0.0, 0
        for s in range(0, n, bs):
            idx = order[s : s + bs]
            if drop_last and len(idx) < bs:
                break
            batch = tuple(a[idx] for a in data)
            val, g = grad(params, batch)
            upd, state = opt.update(g, state, params)
            params = optax.apply_updates(params, upd)
            total += float(val) * len(idx)
            count += len(idx)
        losses.append(total / count)
    return params, np.array(losses)


@pytest.mark.parametrize("bs", [4, 1, 10])
def test_fit_matches_optax_loop(bs):
    data = _linreg()
    key = jax.random.key(3)
    opt = optax.adam(0.05)
    res = fit(_mse, P0, opt, data, batch_size=bs, epochs=3, key=key)
    ref_p, ref_loss = _reference(_mse, P0, opt, data, bs, 3, key)
    np.testing.assert_allclose(res.params["w"], ref_p["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.params["b"], ref_p["b"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.history["loss"], ref_loss, rtol=1e-5)
    assert res.steps == 3 * -(-10 // bs)
    assert res.epochs_run == 3 and res.stop_reason is None


def test_drop_last_matches_reference():
    data = _linreg()
    key = jax.random.key(1)
    res = fit(_mse, P0, optax.sgd(0.1), data, batch_size=4, epochs=2, key=key, drop_last=True)
    ref_p, ref_loss = _reference(_mse, P0, optax.sgd(0.1), data, 4, 2, key, drop_last=True)
    np.testing.assert_allclose(res.params["w"], ref_p["w"], rtol=1e-5)
    np.testing.assert_allclose(res.history["loss"], ref_loss, rtol=1e-5)
    assert res.steps == 4


def test_full_batch_is_gradient_descent_closed_form():
    x, y = _linreg(n=12)
    lr, steps = 0.1, 7
    res = fit(_mse, P0, optax.sgd(lr), (x, y), batch_size=None, epochs=steps, key=jax.random.key(0))
    # Closed form: theta <- theta - lr * (2/n) X1^T (X1 theta - y), X1 = [x, 1].
    x1 = np.hstack([x, np.ones((12, 1), np.float32)]).astype(np.float64)
    theta = np.zeros(4)
    losses = []
    for _ in range(steps):
        r = x1 @ theta - y
        losses.append(np.mean(r**2))
        theta = theta - lr * 2 / 12 * x1.T @ r
    np.testing.assert_allclose(res.params["w"], theta[:3], rtol=1e-5)
    np.testing.assert_allclose(res.params["b"], theta[3], rtol=1e-5)
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-5)


@pytest.mark.parametrize(
    ("n", "bs", "drop_last"),
    # n = 1500 takes the sort-free shuffle (n > shuffle.EXACT_MAX)
    [(11, 3, False), (11, 1, False), (11, 3, True), (11, None, False), (1500, 64, False)],
)
def test_every_example_exactly_once_per_epoch(n, bs, drop_last):
    # sum (not mean) of p[idx]: with SGD(lr=1) each visit lowers p[i] by exactly 1.
    idx = np.arange(n)

    def loss(p, batch):
        return jnp.sum(p[batch])

    res = fit(
        loss,
        np.zeros(n, np.float32),
        optax.sgd(1.0),
        idx,
        batch_size=bs,
        epochs=2,
        key=jax.random.key(5),
        drop_last=drop_last,
    )
    counts = -np.asarray(res.params)
    if drop_last:
        assert counts.sum() == 2 * 9 and set(np.unique(counts)) <= {0.0, 1.0, 2.0}
    else:
        np.testing.assert_array_equal(counts, np.full(n, 2.0))


def test_user_params_not_donated_and_aux_logged():
    data = _linreg()
    p0 = {"w": jnp.ones(3), "b": jnp.zeros(())}

    def loss(p, batch):
        err = batch[0] @ p["w"] + p["b"] - batch[1]
        moments = jnp.stack([jnp.mean(err), jnp.mean(err**2)])  # a fixed-shape entry
        return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err)), "moments": moments}

    res = fit(loss, p0, optax.sgd(0.0), data, batch_size=3, epochs=1, key=jax.random.key(0))
    np.testing.assert_array_equal(p0["w"], np.ones(3))  # still readable and unchanged
    x, y = data
    err = x @ np.ones(3) - y
    # lr = 0: the per-epoch means are means over all examples.
    np.testing.assert_allclose(res.history["mae"], [np.abs(err).mean()], rtol=1e-5)
    np.testing.assert_allclose(res.history["loss"], [np.mean(err**2)], rtol=1e-5)
    np.testing.assert_allclose(
        res.history["moments"], [[err.mean(), np.mean(err**2)]], rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize(
    ("aux", "match"),
    [
        (lambda err: {"vec": err}, r"aux entry 'vec' has shape \(1,\).*\(3,\).*\.mean\(\)"),
        (lambda err: {"listed": [jnp.mean(err)]}, r"aux entry 'listed' is a list"),
        (lambda err: err.mean(), r"aux of type an array.*dict of arrays"),
    ],
)
def test_aux_entries_that_cannot_be_recorded_are_refused(aux, match):
    def loss(p, batch):
        err = batch[0] @ p["w"] + p["b"] - batch[1]
        return jnp.mean(err**2), aux(err)

    with pytest.raises((ValueError, TypeError), match=match):
        fit(loss, P0, optax.sgd(0.1), _linreg(), batch_size=3, epochs=1, key=jax.random.key(0))


def test_step_keys_follow_documented_scheme():
    key = jax.random.key(7)

    def loss(p, batch, key):
        return jnp.mean(batch) * p, {"u": jax.random.uniform(key)}

    res = fit(
        loss,
        jnp.zeros(()),
        optax.sgd(0.0),
        np.ones(4, np.float32),
        batch_size=None,
        epochs=3,
        key=key,
        takes_key=True,
    )
    want = [jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, e), 1)) for e in range(3)]
    np.testing.assert_allclose(res.history["u"], want, rtol=1e-6)
    assert len(set(res.history["u"].tolist())) == 3


def test_model_state_threads_through_steps():
    x = np.arange(10, dtype=np.float32)

    def loss(p, state, batch):
        new = {"count": state["count"] + 1, "sum": state["sum"] + jnp.sum(batch)}
        return jnp.mean((batch - p) ** 2), new

    state0 = {"count": jnp.zeros((), jnp.int32), "sum": jnp.zeros(())}
    res = fit(
        loss,
        jnp.zeros(()),
        optax.sgd(0.01),
        x,
        batch_size=4,
        epochs=2,
        key=jax.random.key(0),
        model_state=state0,
    )
    assert int(res.model_state["count"]) == 6
    assert float(res.model_state["sum"]) == 2 * x.sum()


def test_validation_loss_and_metrics_weighted_over_remainder():
    x, y = _linreg(n=10)
    xv, yv = _linreg(n=7, seed=1)
    labels = (yv > 0).astype(np.float32)

    def acc(p, batch):
        return jnp.mean(((batch[0] @ p["w"] + p["b"]) > 0) == (batch[1] > 0))

    res = fit(
        _mse,
        P0,
        optax.sgd(0.05),
        (x, y),
        batch_size=4,
        epochs=2,
        key=jax.random.key(0),
        validation_data=(xv, yv),
        metrics={"accuracy": acc},
        eval_batch_size=3,
    )
    pred = xv @ np.asarray(res.params["w"]) + np.asarray(res.params["b"])
    np.testing.assert_allclose(res.history["val_loss"][-1], np.mean((pred - yv) ** 2), rtol=1e-5)
    np.testing.assert_allclose(
        res.history["val_accuracy"][-1], np.mean((pred > 0) == labels), rtol=1e-6
    )
    assert res.history["val_loss"].shape == (2,)


def test_record_steps_matches_reference_losses():
    data = _linreg()
    key = jax.random.key(2)
    res = fit(_mse, P0, optax.sgd(0.1), data, batch_size=4, epochs=2, key=key, record_steps=True)
    assert res.history["step_loss"].shape == (2, 3)
    # the weighted mean of the step losses is the epoch loss
    w = np.array([4, 4, 2]) / 10
    np.testing.assert_allclose(res.history["step_loss"] @ w, res.history["loss"], rtol=1e-5)


def test_fit_exported_at_top_level():
    assert gdjax.fit is fit


def test_named_validation_sets_are_each_evaluated_and_monitorable():
    x, y = _linreg(n=10)
    sets = {"val": _linreg(n=7, seed=1), "test": _linreg(n=5, seed=2)}

    def mae(p, batch):
        return jnp.mean(jnp.abs(batch[0] @ p["w"] + p["b"] - batch[1]))

    kw = {"batch_size": 4, "epochs": 3, "key": jax.random.key(0), "metrics": {"mae": mae}}
    kw["eval_batch_size"] = 3  # batches of 3, 3, 1 and 3, 2: weighted over the remainders
    res = fit(
        _mse,
        P0,
        optax.sgd(0.05),
        (x, y),
        validation_data=sets,
        early_stopping=gdjax.EarlyStopping("test_loss", patience=5),
        **kw,
    )
    assert {"val_loss", "val_mae", "test_loss", "test_mae"} <= set(res.history)
    for name, (xs, ys) in sets.items():
        pred = xs @ np.asarray(res.params["w"]) + np.asarray(res.params["b"])
        np.testing.assert_allclose(
            res.history[f"{name}_loss"][-1], np.mean((pred - ys) ** 2), rtol=1e-5
        )
        np.testing.assert_allclose(
            res.history[f"{name}_mae"][-1], np.mean(np.abs(pred - ys)), rtol=1e-5
        )
        # the same numbers as that set given alone
        alone = fit(_mse, P0, optax.sgd(0.05), (x, y), validation_data=(xs, ys), **kw)
        np.testing.assert_allclose(
            res.history[f"{name}_loss"], alone.history["val_loss"], rtol=1e-6
        )
        np.testing.assert_allclose(res.history[f"{name}_mae"], alone.history["val_mae"], rtol=1e-6)
    assert not np.allclose(res.history["val_loss"], res.history["test_loss"])


def test_steps_after_a_stop_on_a_nonfinite_loss_record_nan():
    x, y = _linreg(n=12)

    def loss(p, batch):  # the batch holding example 0 gives a non-finite loss
        bad = jnp.any(batch[1] == y[0])
        return _mse(p, batch) + jnp.where(bad, jnp.inf, 0.0)

    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = fit(
            loss,
            P0,
            optax.sgd(0.05),
            (x, y),
            batch_size=3,
            epochs=2,
            key=jax.random.key(0),
            record_steps=True,
        )
    steps = res.history["step_loss"][0]
    order = _perm(jax.random.key(0), 0, 12)
    bad_step = int(np.flatnonzero(order == 0)[0]) // 3
    assert np.isfinite(steps[:bad_step]).all() and np.isinf(steps[bad_step])
    assert np.isnan(steps[bad_step + 1 :]).all()  # not run: the run had halted
    assert res.epochs_run == 1
