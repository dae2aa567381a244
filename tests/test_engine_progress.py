"""The progress bar: updated after every compiled chunk, without changing a single bit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train import progress

RNG = np.random.default_rng(0)
X = RNG.normal(size=(11, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)
P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}


def _mse(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _fit(**kw):
    return gdjax.fit(
        _mse,
        P0,
        optax.adam(0.1),
        (X, Y),
        batch_size=2,  # 5 full batches and a remainder of 1: 6 steps per epoch
        epochs=2,
        key=jax.random.key(0),
        validation_data=(X, Y),
        record_steps=True,
        **kw,
    )


@pytest.fixture
def updates(monkeypatch):
    calls = []
    update = progress.Progress.update

    def spy(self, steps, examples, epoch, losses=None):
        calls.append((steps, examples, epoch, dict(losses or {})))
        return update(self, steps, examples, epoch, losses)

    monkeypatch.setattr(progress.Progress, "update", spy)
    return calls


def test_bar_updates_after_every_chunk_and_results_are_bit_identical(updates, capsys):
    quiet = _fit()
    assert capsys.readouterr().err == ""  # quiet by default
    updates.clear()
    shown = _fit(progress=True, progress_every_steps=2)
    for k in quiet.history:
        np.testing.assert_array_equal(shown.history[k], quiet.history[k], err_msg=k)
    for a, b in zip(jax.tree.leaves(shown.params), jax.tree.leaves(quiet.params), strict=True):
        np.testing.assert_array_equal(a, b)
    # chunks of 2, 2 and 1 full batches, then the remainder with the end of the epoch
    assert [c[:3] for c in updates] == [
        (2, 4, 1), (2, 4, 1), (1, 2, 1), (1, 1, 1),
        (2, 4, 2), (2, 4, 2), (1, 2, 2), (1, 1, 2),
    ]  # fmt: skip
    # within an epoch: the mean of the step losses so far (full batches weigh the same)
    step_loss = quiet.history["step_loss"]
    for e in range(2):
        for c, k in zip(updates[4 * e : 4 * e + 3], (2, 4, 5), strict=True):
            np.testing.assert_allclose(c[3]["loss"], step_loss[e, :k].mean(), rtol=1e-5)
        end = updates[4 * e + 3][3]
        assert end["loss"] == quiet.history["loss"][e]
        assert end["val_loss"] == quiet.history["val_loss"][e]
    err = capsys.readouterr().err
    assert "12/12" in err and "epoch=2/2" in err and "ex/s=" in err and "val_loss=" in err


def test_sweep_progress_is_per_chunk_and_changes_nothing(updates):
    kw = {"hparams": {"lr": np.array([0.05, 0.1])}, "batch_size": 2, "epochs": 1}
    opt = lambda h: optax.sgd(h["lr"])  # noqa: E731
    quiet = gdjax.sweep(_mse, P0, opt, (X, Y), **kw)
    updates.clear()
    shown = gdjax.sweep(_mse, P0, opt, (X, Y), progress=True, progress_every_steps=3, **kw)
    np.testing.assert_array_equal(shown.history["loss"], quiet.history["loss"])
    np.testing.assert_array_equal(shown.params["w"], quiet.params["w"])
    # two members: examples count both
    assert [c[:3] for c in updates] == [(3, 12, 1), (2, 8, 1), (1, 2, 1)]


def test_progress_every_steps_is_checked():
    with pytest.raises(ValueError, match="progress_every_steps must be >= 1"):
        _fit(progress=True, progress_every_steps=0)
