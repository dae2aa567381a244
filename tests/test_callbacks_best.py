"""Best-k checkpoints keep exactly the k best epochs by the monitored value, with their weights."""

import jax
import numpy as np
import pytest

import gdjax
from tests.test_callbacks import KW, Recorder
from tests.test_ema import P0, X, Y, mse


def test_exactly_the_best_k_epochs_are_kept_with_their_weights(tmp_path):
    rec = Recorder()
    best = gdjax.BestCheckpoints(tmp_path / "best", monitor="val_loss", k=2, mode="min")
    res = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=8, callbacks=[rec, best], **KW)
    val = res.history["val_loss"]
    expected = [int(e) + 1 for e in np.argsort(val, kind="stable")[:2]]
    # this run's validation loss is not monotone: the best two are neither the first nor the last
    assert set(expected) != {7, 8} and set(expected) != {1, 2}
    on_disk = sorted(int(p.name) for p in (tmp_path / "best").iterdir() if p.name.isdigit())
    assert on_disk == sorted(expected)
    assert best.best_epochs() == expected
    for e in expected:
        kept = best.restore(e, like=P0)
        for k in P0:
            np.testing.assert_array_equal(kept[k], rec.params[None, e][k])
    by_name = best.restore()  # the best one, as {leaf path: array}
    np.testing.assert_array_equal(by_name["w"], rec.params[None, expected[0]]["w"])
    with pytest.raises(ValueError, match="is not kept"):
        best.restore(8 if 8 not in expected else 7)

    # mode="max" keeps the highest values; a fresh run refuses a directory that holds some
    worst = gdjax.BestCheckpoints(tmp_path / "worst", monitor="val_loss", k=3, mode="max")
    gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=8, callbacks=[worst], **KW)
    assert worst.best_epochs() == [int(e) + 1 for e in np.argsort(-val, kind="stable")[:3]]
    with pytest.raises(ValueError, match="already holds checkpoints"):
        gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=1, callbacks=[worst], **KW)


def test_an_unrecorded_monitor_is_refused_before_the_first_step(tmp_path):
    rec = Recorder()
    best = gdjax.BestCheckpoints(tmp_path / "best", monitor="val_acc")
    with pytest.raises(ValueError, match=r"monitor='val_acc' is not recorded.*'val_loss'"):
        gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=2, callbacks=[rec, best], **KW)
    assert [c[0] for c in rec.calls] == ["begin", "end"]  # no epoch ran
    with pytest.raises(ValueError, match="mode must be one of"):
        gdjax.fit(
            mse,
            P0,
            gdjax.sgd(0.3),
            (X, Y),
            epochs=1,
            callbacks=[gdjax.BestCheckpoints(tmp_path / "b", mode="lowest")],
            key=jax.random.key(0),
            batch_size=4,
        )
