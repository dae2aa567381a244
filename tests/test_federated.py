"""gdjax.federated.fit against independent oracles: gdjax.fit for one client, hand-written
NumPy local training with optax on the server, NumPy clipping; partitioners; clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.federated import DPConfig, client_key, partition
from gdjax.federated._shuffle import padded_permutation
from gdjax.train.shuffle import permutation

# ---------------------------------------------------------------------------------------------
# Linear least squares, whose gradient the NumPy oracle writes out by hand.


def _sq_loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _linear_clients(sizes, d=3, seed=0):
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d)
    out = []
    for n in sizes:
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = (x @ w_true + 0.5 + 0.1 * rng.normal(size=n)).astype(np.float32)
        out.append((x, y))
    return out


def _local_gd(w, b, x, y, lr, epochs, mu=0.0):
    """Full-batch gradient descent on mean((x w + b - y)^2) + mu/2 |(w, b) - start|^2 (float64)."""
    w0, b0 = w.copy(), b
    x, y = x.astype(np.float64), y.astype(np.float64)
    for _ in range(epochs):
        r = x @ w + b - y
        gw = 2 * x.T @ r / len(y) + mu * (w - w0)
        gb = 2 * r.mean() + mu * (b - b0)
        w, b = w - lr * gw, b - lr * gb
    return w, b


P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}


def test_one_client_fedavg_equals_gdjax_fit():
    """Done-when: FedAvg with one client, full participation and one local epoch is gdjax.fit
    on that client's data (shuffled mini-batches, a remainder batch, a loss taking key=)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(23, 4)).astype(np.float32)
    y = rng.integers(0, 3, 23).astype(np.int32)
    p0 = {"w": 0.1 * rng.normal(size=(4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}

    def loss(p, batch, key):
        keep = jax.random.bernoulli(key, 0.8, batch[0].shape)
        logits = (batch[0] * keep / 0.8) @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    key = jax.random.key(5)
    kw = dict(batch_size=5, takes_key=True)
    fed = gdjax.federated.fit(
        loss, p0, optax.adam(0.1), gdjax.sgd(1.0), [(x, y)], rounds=1, key=key, **kw
    )
    ref = gdjax.fit(loss, p0, optax.adam(0.1), (x, y), epochs=1, key=client_key(key, 0, 0), **kw)
    for k in p0:  # w + (w_1 - w) rounds the last bit; the local training itself is identical
        np.testing.assert_allclose(fed.params[k], ref.params[k], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(fed.history["loss"], ref.history["loss"])
    assert fed.history["clients"].tolist() == [[0]] and fed.history["examples"].tolist() == [23]


def test_fedavg_equal_clients_full_batch_is_the_weighted_average():
    """Done-when: FedAvg with equal clients and full batches equals weighted averaging done by
    hand (NumPy gradients, float64)."""
    clients = _linear_clients([10, 10, 10, 10])
    lr, epochs, rounds = 0.1, 3, 3
    fed = gdjax.federated.fit(
        _sq_loss,
        P0,
        gdjax.sgd(lr),
        gdjax.sgd(1.0),
        clients,
        rounds=rounds,
        local_epochs=epochs,
        batch_size=None,
        shuffle=False,  # full batches: the order changes nothing but rounding
        key=jax.random.key(0),
    )
    w, b = np.zeros(3), 0.0
    for _ in range(rounds):
        trained = [_local_gd(w, b, x, y, lr, epochs) for x, y in clients]
        w = sum(tw for tw, _ in trained) / 4
        b = sum(tb for _, tb in trained) / 4
    np.testing.assert_allclose(fed.params["w"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fed.params["b"], b, rtol=1e-5, atol=1e-6)
    assert fed.history["loss"][-1] < fed.history["loss"][0]


def test_unequal_clients_fedprox_and_fedadam_match_numpy_and_optax():
    """Clients of 7, 12 and 5 examples in one program (padding and masks), averaged by example
    counts, FedProx's proximal term in every local step, optax.adam on the server."""
    sizes = [7, 12, 5]
    clients = _linear_clients(sizes, seed=2)
    lr, mu, epochs, rounds = 0.05, 0.5, 2, 3
    fed = gdjax.federated.fit(
        _sq_loss,
        P0,
        gdjax.sgd(lr),
        gdjax.adam(0.1),
        clients,
        rounds=rounds,
        local_epochs=epochs,
        prox_mu=mu,
        shuffle=False,
        key=jax.random.key(0),
    )
    server = optax.adam(0.1)
    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state = server.init(params)
    weights = np.asarray(sizes) / sum(sizes)
    for _ in range(rounds):
        w, b = np.asarray(params["w"], np.float64), float(params["b"])
        trained = [_local_gd(w, b, x, y, lr, epochs, mu) for x, y in clients]
        delta_w = sum(p * (tw - w) for p, (tw, _) in zip(weights, trained, strict=True))
        delta_b = sum(p * (tb - b) for p, (_, tb) in zip(weights, trained, strict=True))
        grad = {"w": -jnp.asarray(delta_w, jnp.float32), "b": -jnp.asarray(delta_b, jnp.float32)}
        updates, state = server.update(grad, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(fed.params["w"], params["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fed.params["b"], params["b"], rtol=1e-5, atol=1e-6)
    assert fed.history["examples"].tolist() == [24] * rounds


def test_unequal_clients_with_minibatches_each_train_like_gdjax_fit():
    """Clients of 9 and 14 examples, batches of 4 (2 and 3 full batches, remainders of 1 and 2):
    in one vmapped program each client still sees each of its examples once per epoch, in
    gdjax.fit's order; the round's model is their example-weighted average."""
    clients = _linear_clients([9, 14], seed=3)
    key = jax.random.key(7)
    kw = dict(batch_size=4)
    fed = gdjax.federated.fit(
        _sq_loss, P0, optax.adam(0.05), gdjax.sgd(1.0), clients, rounds=1, local_epochs=2,
        key=key, **kw,
    )  # fmt: skip
    refs = [
        gdjax.fit(_sq_loss, P0, optax.adam(0.05), c, epochs=2, key=client_key(key, 0, k), **kw)
        for k, c in enumerate(clients)
    ]
    for name in P0:
        avg = (9 * np.asarray(refs[0].params[name]) + 14 * np.asarray(refs[1].params[name])) / 23
        np.testing.assert_allclose(fed.params[name], avg, rtol=1e-5, atol=1e-6)
    # the round's loss: every example visit of both clients over both epochs, once
    visits = 9 * refs[0].history["loss"].sum() + 14 * refs[1].history["loss"].sum()
    np.testing.assert_allclose(fed.history["loss"][0], visits / 46, rtol=1e-5)


def test_client_sampling_draws_from_the_key_and_only_the_drawn_clients_count(capfd):
    clients = _linear_clients([6, 8, 5, 9, 7, 4], seed=4)
    lr, rounds, key = 0.1, 4, jax.random.key(11)
    fed = gdjax.federated.fit(
        _sq_loss,
        P0,
        gdjax.sgd(lr),
        gdjax.sgd(1.0),
        clients,
        rounds=rounds,
        clients_per_round=2,
        shuffle=False,
        key=key,
        progress=True,
    )
    drawn = fed.history["clients"]
    assert drawn.shape == (rounds, 2) and len({tuple(r) for r in drawn}) > 1
    w, b = np.zeros(3), 0.0
    for t, ids in enumerate(drawn):
        expect = jax.random.choice(
            jax.random.fold_in(jax.random.fold_in(key, t), 0), 6, (2,), replace=False
        )
        assert ids.tolist() == sorted(np.asarray(expect).tolist())
        n = np.asarray([len(clients[k][1]) for k in ids], np.float64)
        trained = [_local_gd(w, b, *clients[k], lr, 1) for k in ids]
        w = sum(p * tw for p, (tw, _) in zip(n / n.sum(), trained, strict=True))
        b = sum(p * tb for p, (_, tb) in zip(n / n.sum(), trained, strict=True))
    np.testing.assert_allclose(fed.params["w"], w, rtol=1e-5, atol=1e-6)
    assert "federated" in capfd.readouterr().err  # the progress bar over rounds


def test_dp_clips_each_client_and_adds_noise_of_the_stated_scale():
    """DP-FedAvg against NumPy: each client's update clipped to C and averaged uniformly;
    then, with the noise on, N(0, (sigma C / m)^2) on every one of 2,001 parameters. The
    clip norm and noise multiplier are data: the second run reuses the first one's program."""
    d, m, clip, lr = 2000, 4, 0.05, 0.1
    clients = _linear_clients([8] * m, d=d, seed=5)
    p0 = {"w": np.zeros(d, np.float32), "b": np.zeros((), np.float32)}
    args = (_sq_loss, p0, gdjax.sgd(lr), gdjax.sgd(1.0), clients)
    kw = dict(rounds=1, shuffle=False, key=jax.random.key(1))
    clipped = []
    for x, y in clients:
        w, b = _local_gd(np.zeros(d), 0.0, x, y, lr, 1)
        delta = np.append(w, b)
        assert np.linalg.norm(delta) > clip  # every client is clipped
        clipped.append(delta * clip / np.linalg.norm(delta))
    oracle = np.mean(clipped, axis=0)

    exact = gdjax.federated.fit(*args, dp=DPConfig(clip_norm=clip, noise_multiplier=0.0), **kw)
    flat = np.append(exact.params["w"], exact.params["b"])
    np.testing.assert_allclose(flat, oracle, rtol=1e-4, atol=1e-8)
    assert exact.history["clipped_fraction"].tolist() == [1.0]

    sigma = 0.5
    noisy = gdjax.federated.fit(*args, dp=DPConfig(clip_norm=clip, noise_multiplier=sigma), **kw)
    noise = np.append(noisy.params["w"], noisy.params["b"]) - oracle
    assert abs(noise.std() / (sigma * clip / m) - 1) < 0.05
    assert abs(noise.mean()) < 4 * noise.std() / np.sqrt(d + 1)


def test_padded_permutation_is_the_engines_order():
    """The round's order for a client of n examples among larger ones is gdjax.fit's order,
    for the exact (n <= 1024) and the Feistel (n > 1024) shuffles."""
    key, size, ns = jax.random.key(9), 1500, (1, 2, 40, 1024, 1025, 1500)

    @jax.jit
    def both(key):
        padded = [padded_permutation(key, jnp.int32(n), size)[:n] for n in ns]
        return padded, [permutation(key, n) for n in ns]

    padded, engine = both(key)
    for a, b in zip(padded, engine, strict=True):
        np.testing.assert_array_equal(a, b)


def test_partitioners_cover_every_example_once():
    y = np.repeat(np.arange(5), 40)
    for parts in (
        partition.iid(200, 7, seed=1),
        partition.label_shards(y, num_clients=10, labels_per_client=2, seed=1),
        partition.dirichlet(y, num_clients=8, alpha=0.3, min_size=5, seed=1),
    ):
        idx = np.concatenate(parts)
        assert len(idx) == 200 and len(np.unique(idx)) == 200
    assert [len(set(y[p])) for p in partition.label_shards(y, 10, 2, seed=3)] == [2] * 10
    sizes = [len(p) for p in partition.dirichlet(y, 8, alpha=0.1, min_size=5, seed=2)]
    assert min(sizes) >= 5 and max(sizes) > 2 * min(sizes)  # skewed
    assert sorted(len(p) for p in partition.iid(200, 7)) == [28] * 3 + [29] * 4
    with pytest.raises(ValueError, match="cannot be split evenly"):
        partition.label_shards(y, num_clients=3, labels_per_client=1)
    with pytest.raises(ValueError, match="raise alpha"):
        partition.dirichlet(y, num_clients=40, alpha=0.01, min_size=5, max_tries=3)


GOOD = _linear_clients([5, 6])


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(clients=[GOOD[0], (np.zeros((0, 3), np.float32), np.zeros(0, np.float32))]),
         ValueError, r"clients\[1\] has no data"),
        (dict(clients=[GOOD[0], (GOOD[1][0].astype(np.float64), GOOD[1][1])]),
         ValueError, r"clients\[1\]\[0\] has dtype float64"),
        (dict(clients=[GOOD[0], (GOOD[1][0][:, :2], GOOD[1][1])]),
         ValueError, r"per-example shape \(2,\)"),
        (dict(clients=[GOOD[0], [GOOD[1][0], GOOD[1][1]]]), ValueError, "same layout"),
        (dict(clients=GOOD[0]), TypeError, "list of client data sets"),
        (dict(clients_per_round=3), ValueError, "larger than the number of clients"),
        (dict(rounds=0), ValueError, "rounds must be >= 1"),
        (dict(batch_size=6, drop_last=True), ValueError, r"leaves clients \[0\]"),
        (dict(prox_mu=-1.0), ValueError, "prox_mu"),
        (dict(dp=DPConfig(1.0, 1.0), weighting="examples"), ValueError, "uniformly"),
        (dict(server_optimizer=optax.sgd), TypeError, "server_optimizer must be an optax"),
        (dict(loss_fn=lambda p, b: (b[0] @ p["w"] - b[1]) ** 2), ValueError, "scalar loss"),
        (dict(validation_data=(np.ones((4, 2), np.float32), np.ones(4, np.float32))),
         ValueError, "validation_data"),
        (dict(metrics={"acc": lambda p, b: 0.0}), ValueError, "pass validation_data"),
        (dict(key=0), TypeError, "jax.random.key"),
    ],
)  # fmt: skip
def test_errors_name_the_argument_before_compiling(change, error, match):
    kw = dict(
        loss_fn=_sq_loss,
        params=P0,
        client_optimizer=gdjax.sgd(0.1),
        server_optimizer=gdjax.sgd(1.0),
        clients=GOOD,
        rounds=1,
        key=jax.random.key(0),
    )
    kw.update(change)
    with pytest.raises(error, match=match):
        gdjax.federated.fit(**kw)


def test_dp_config_checks_its_numbers():
    with pytest.raises(ValueError, match="clip_norm must be > 0"):
        DPConfig(clip_norm=0.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="noise_multiplier must be >= 0"):
        DPConfig(clip_norm=1.0, noise_multiplier=-0.1)


def test_nonfinite_steps_are_skipped_and_a_diverging_server_stops_with_a_warning():
    """A client whose loss is infinite trains nothing (its steps are counted, not applied);
    a server step that overflows is not applied either: training stops with a warning and
    the last finite global model."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    good = (x, np.full(8, np.e, np.float32))
    bad = (x, np.zeros(8, np.float32))  # log(0) = -inf: every step of this client

    def loss(p, batch):
        return jnp.mean((batch[0] @ p["w"] + p["b"] - jnp.log(batch[1])) ** 2)

    with pytest.warns(RuntimeWarning, match="non-finite server update in round 1"):
        res = gdjax.federated.fit(
            loss, P0, gdjax.sgd(0.5), optax.sgd(np.inf), [good, bad], rounds=3,
            batch_size=4, shuffle=False, key=jax.random.key(0),
        )  # fmt: skip
    assert res.stop_reason == "non-finite server update in round 1" and res.rounds_run == 1
    assert res.history["nonfinite_steps"].tolist() == [2]  # the bad client's two batches
    np.testing.assert_array_equal(res.params["w"], P0["w"])  # the overflow was not applied
