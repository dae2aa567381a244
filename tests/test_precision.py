"""Mixed precision: bfloat16 compute with float32 storage against a hand-written optax loop;
float16 with dynamic loss scaling against a hand-written scaling rule (overflowing steps are
skipped inside the fast program, never the guarded one); an overflowing loss still goes to
on_nonfinite."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train import programs
from gdjax.train.precision import Precision

rng = np.random.default_rng(0)
X = rng.normal(size=(72, 5)).astype(np.float32)  # 4 batches of 16 and a remainder of 8
Y = (30.0 * X[:, :1] + 60.0).astype(np.float32)  # large targets: the first gradients overflow
P = {
    "w1": (0.4 * rng.normal(size=(5, 8))).astype(np.float32),
    "w2": (0.4 * rng.normal(size=(8, 1))).astype(np.float32),
}


def loss_fn(p, batch):
    h = jax.nn.relu(batch[0] @ p["w1"])
    return jnp.mean((h @ p["w2"] - batch[1]) ** 2)


def _batches():
    for start in range(0, len(X), 16):  # shuffle=False: the data in order
        yield X[start : start + 16], Y[start : start + 16]


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a).astype(dtype), tree)


@pytest.fixture
def called(monkeypatch):
    """Names of the programs the engine runs during the test."""
    names = []
    call = programs.Executable.__call__

    def spy(self, *args):
        names.append(self.name)
        return call(self, *args)

    monkeypatch.setattr(programs.Executable, "__call__", spy)
    return names


def _hand_loop(opt, dtype, epochs=2):
    """Adam on the data in order, the loss computed in ``dtype`` from float32 parameters."""

    @jax.jit
    def grads(p, b):
        def loss(q):
            return loss_fn(_cast(q, dtype), _cast(b, dtype)).astype(jnp.float32)

        return jax.value_and_grad(loss)(p)

    p, state, losses = _cast(P, jnp.float32), opt.init(_cast(P, jnp.float32)), []
    for _ in range(epochs):
        total = 0.0
        for xb, yb in _batches():
            value, g = grads(p, (xb, yb / 30))
            updates, state = opt.update(g, state, p)
            p = optax.apply_updates(p, updates)
            total += float(value) * len(xb)
        losses.append(total / len(X))
    return p, losses


def test_bfloat16_compute_with_float32_storage_matches_a_hand_written_loop():
    opt = optax.adam(1e-2)
    kw = dict(batch_size=16, epochs=2, key=jax.random.key(0), shuffle=False)
    got = gdjax.fit(loss_fn, P, opt, (X, Y / 30), precision="bfloat16", **kw)
    want, losses = _hand_loop(opt, jnp.bfloat16)
    full, _ = _hand_loop(opt, jnp.float32)
    for k in P:
        assert got.params[k].dtype == jnp.float32
        np.testing.assert_allclose(got.params[k], want[k], rtol=2e-3, atol=2e-4)
        # and bfloat16 is not float32: a float32 run ends far further away
        gap = np.abs(np.asarray(full[k]) - np.asarray(want[k])).max()
        assert gap > 10 * np.abs(np.asarray(got.params[k]) - np.asarray(want[k])).max()
    np.testing.assert_allclose(got.history["loss"], losses, rtol=1e-2)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(got.opt_state) if x.ndim)


def test_float16_dynamic_loss_scaling_follows_the_rule_inside_the_fast_program(called):
    policy = Precision("float16", initial_scale=2.0**15, growth_interval=3)
    opt = gdjax.sgd(1e-3)
    epochs = 2
    res = gdjax.fit(
        loss_fn,
        P,
        opt,
        (X, Y),
        batch_size=16,
        epochs=epochs,
        key=jax.random.key(0),
        shuffle=False,
        precision=policy,
        on_nonfinite="skip",  # as in the next test: the same programs
    )

    @jax.jit
    def scaled_grads(p, b, scale):
        def scaled(q):
            loss = loss_fn(_cast(q, jnp.float16), _cast(b, jnp.float16))
            return loss.astype(jnp.float32) * scale

        return jax.tree.map(lambda g: g / scale, jax.grad(scaled)(p))

    p, state = _cast(P, jnp.float32), opt.init(_cast(P, jnp.float32))
    scale, good, scales, overflows = 2.0**15, 0, [], []
    for _ in range(epochs):
        skipped = 0
        for b in _batches():
            g = scaled_grads(p, b, jnp.float32(scale))
            if all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(g)):
                updates, state = opt.update(g, state, p)
                p = optax.apply_updates(p, updates)
                good += 1
                if good == 3:
                    scale, good = scale * 2, 0
            else:
                scale, good, skipped = max(scale / 2, 1.0), 0, skipped + 1
        scales.append(scale)
        overflows.append(skipped)
    # the rule was exercised: early overflows, then (after growing back) overflows again
    assert overflows[0] >= 3 and sum(overflows[1:]) > 0, (scales, overflows)
    np.testing.assert_array_equal(res.history["loss_scale"], scales)
    np.testing.assert_array_equal(res.history["overflow_steps"], overflows)
    np.testing.assert_array_equal(res.history["nonfinite_steps"], [0] * epochs)
    for k in P:
        np.testing.assert_allclose(res.params[k], p[k], rtol=1e-3, atol=1e-4)
    assert "gdjax_steps_guarded" not in called and called.count("gdjax_steps") == epochs


def test_an_overflowing_loss_goes_to_on_nonfinite(called):
    x = X.copy()
    x[20] = 3e4  # the forward pass overflows float16 on the second batch
    with pytest.warns(RuntimeWarning, match="1 step\\(s\\) were skipped"):
        res = gdjax.fit(
            loss_fn,
            P,
            gdjax.sgd(1e-3),
            (x, Y),
            batch_size=16,
            epochs=1,
            key=jax.random.key(0),
            shuffle=False,
            precision=Precision("float16", initial_scale=2.0**15, growth_interval=3),
            on_nonfinite="skip",
        )
    assert res.history["nonfinite_steps"].tolist() == [1]
    assert "gdjax_steps_guarded" in called


def test_precision_arguments_are_checked():
    with pytest.raises(ValueError, match=r"Precision\.compute must be one of"):
        gdjax.fit(
            loss_fn,
            P,
            optax.sgd(0.1),
            (X, Y),
            batch_size=8,
            epochs=1,
            key=jax.random.key(0),
            precision="int8",
        )
    with pytest.raises(TypeError, match="precision must be None"):
        gdjax.fit(
            loss_fn,
            P,
            optax.sgd(0.1),
            (X, Y),
            batch_size=8,
            epochs=1,
            key=jax.random.key(0),
            precision=16,
        )
    with pytest.raises(ValueError, match="loss_scale must be 'dynamic' or None"):
        Precision("float16", loss_scale="static")
    assert Precision("bfloat16").loss_scale is None and Precision("float16").loss_scale == "dynamic"
