"""Callbacks: when they run, what they see, stop requests, errors, and the progress bar's default.

Every fit here shares one loss, data layout and option set, so they share compiled programs.
"""

import csv
import io
import sys

import jax
import numpy as np
import pytest

import gdjax
from gdjax.train import TrainOptions
from tests.test_ema import P0, XV, YV, X, Y, mse

KW = {"batch_size": 4, "key": jax.random.key(0), "validation_data": (XV, YV)}


class Recorder(gdjax.Callback):
    """Records every hook call, with copies of what it saw."""

    def __init__(self):
        self.calls = []
        self.params = {}
        self.logs = {}

    def on_train_begin(self, run):
        self.calls.append(("begin", run.epoch))

    def on_epoch_end(self, run, epoch, logs):
        members = None if run.members is None else tuple(run.members.tolist())
        self.calls.append(("epoch", epoch, members))
        self.logs[members, epoch] = {k: np.array(v, copy=True) for k, v in logs.items()}
        self.params[members, epoch] = jax.tree.map(lambda a: np.array(a, copy=True), run.params)
        self.batch_size = run.batch_size
        self.hparams = run.hparams

    def on_train_end(self, run):
        self.calls.append(("end", run.epoch, run.error))


class StopAt(gdjax.Callback):
    def __init__(self, epoch, batch_size=None):
        self.epoch, self.batch_size = epoch, batch_size

    def on_epoch_end(self, run, epoch, logs):
        return epoch == self.epoch and self.batch_size in (None, run.batch_size)


class Boom(gdjax.Callback):
    def on_epoch_end(self, run, epoch, logs):
        if epoch == 2:
            raise ZeroDivisionError("boom")


def test_hooks_order_logs_and_a_stop_request_change_no_bit():
    rec = Recorder()
    res = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=10, callbacks=[rec, StopAt(3)], **KW)
    assert rec.calls == [
        ("begin", 0),
        ("epoch", 1, None),
        ("epoch", 2, None),
        ("epoch", 3, None),
        ("end", 3, None),
    ]
    assert res.epochs_run == 3 and res.stop_reason == "stopped by callback StopAt"
    assert len(res.history["loss"]) == 3 and res.ema_params is None
    plain = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=3, **KW)
    assert plain.stop_reason is None
    for k in P0:
        np.testing.assert_array_equal(res.params[k], plain.params[k])
        np.testing.assert_array_equal(rec.params[None, 3][k], plain.params[k])
    for e in (1, 2, 3):
        logs = rec.logs[None, e]
        assert set(logs) == set(plain.history)  # the history entries, no control entries
        for k, v in logs.items():
            assert v.shape == () and v.dtype == plain.history[k].dtype
            np.testing.assert_array_equal(v, plain.history[k][e - 1], err_msg=k)
    # a stop asked at the last epoch stops nothing early
    last = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=3, callbacks=[StopAt(3)], **KW)
    assert last.stop_reason is None and last.epochs_run == 3


def test_a_raising_callback_is_named_and_the_checkpoints_resume(tmp_path):
    rec = Recorder()
    ckpt = tmp_path / "ckpt"
    with pytest.raises(ZeroDivisionError, match="boom") as info:
        gdjax.fit(
            mse,
            P0,
            gdjax.sgd(0.3),
            (X, Y),
            epochs=4,
            checkpoint_dir=ckpt,
            callbacks=[rec, Boom()],
            **KW,
        )
    notes = " ".join(info.value.__notes__)
    assert "callback Boom in on_epoch_end at the end of epoch 2" in notes
    assert str(ckpt) in notes and "resume" in notes
    # every callback's on_train_end ran, and saw the error
    assert rec.calls[-1][0] == "end" and rec.calls[-1][2] is info.value
    resumed = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=4, checkpoint_dir=ckpt, **KW)
    assert len(resumed.epoch_seconds) == 2  # epochs 1 and 2 were saved before Boom raised
    plain = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=4, **KW)
    for k in P0:
        np.testing.assert_array_equal(resumed.params[k], plain.params[k])
    for k in plain.history:
        np.testing.assert_array_equal(resumed.history[k], plain.history[k])


def test_a_stop_request_is_checkpointed_as_the_last_epoch(tmp_path):
    ckpt = tmp_path / "ckpt"
    kw = {"epochs": 6, "checkpoint_dir": ckpt, "checkpoint_every": 5, **KW}
    res = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), callbacks=[StopAt(2)], **kw)
    assert res.epochs_run == 2
    steps = sorted(int(p.name) for p in (ckpt / "gdjax-checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2 * 3]  # epoch 2 (3 steps per epoch), although every 5 epochs was asked


def test_callbacks_are_checked_before_training():
    def loss_never_called(p, batch):
        raise AssertionError("traced")

    bad = [([lambda *a: None], r"callbacks\[0\] must be a gdjax.Callback"), (Recorder(), "list")]
    for callbacks, match in bad:
        with pytest.raises(TypeError, match=match):
            gdjax.fit(
                loss_never_called, P0, gdjax.sgd(0.1), (X, Y), epochs=1, callbacks=callbacks, **KW
            )

    class Refuses(gdjax.Callback):
        def check(self):
            raise ValueError("not today")

    with pytest.raises(ValueError, match="not today") as info:
        gdjax.fit(
            loss_never_called, P0, gdjax.sgd(0.1), (X, Y), epochs=1, callbacks=[Refuses()], **KW
        )
    assert r"callbacks[0] (Refuses).check()" in " ".join(info.value.__notes__)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_on_in_a_terminal_and_off_otherwise(monkeypatch):
    assert TrainOptions(batch_size=1, epochs=1).show_progress is False  # under pytest
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert TrainOptions(batch_size=1, epochs=1).show_progress is False  # not a terminal
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert TrainOptions(batch_size=1, epochs=1).show_progress is True
    assert TrainOptions(batch_size=1, epochs=1, progress=False).show_progress is False
    gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=2, **KW)
    assert "epoch=2/2" in terminal.getvalue() and "val_loss=" in terminal.getvalue()


# --- a sweep: two batch sizes, so two programs, each with two members ---------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep with every built-in callback; the tests below read what it left."""
    from tests.test_loggers import allow_mlflow_file_store

    tmp = tmp_path_factory.mktemp("sweep")
    rec = Recorder()
    callbacks = {
        "rec": rec,
        "stop": StopAt(2, batch_size=6),
        "csv": gdjax.CSVLogger(tmp / "log.csv"),
        "tb": gdjax.TensorBoardLogger(tmp / "tb"),
        "best": gdjax.BestCheckpoints(tmp / "best", monitor="val_loss", k=2),
        "mlflow": gdjax.MLflowLogger("sweep", tracking_uri=tmp / "mlruns"),
    }
    with allow_mlflow_file_store():
        res = gdjax.sweep(
            mse,
            P0,
            lambda hp: gdjax.sgd(hp["lr"]),
            (X, Y),
            hparams={"lr": [0.1, 0.3, 0.1, 0.3], "batch_size": [4, 4, 6, 6]},
            epochs=4,
            shuffle=False,
            batch_size=4,
            validation_data=(XV, YV),
            ema=gdjax.EMA(0.6),
            callbacks=list(callbacks.values()),
        )
    return res, callbacks, tmp


def test_sweep_callbacks_see_each_program_with_its_members(swept):
    res, cbs, _ = swept
    rec = cbs["rec"]
    assert rec.calls[0] == ("begin", 0) and rec.calls[-1] == ("end", 2, None)
    epochs = [c[1:] for c in rec.calls[1:-1]]
    assert epochs == [(1, (0, 1)), (2, (0, 1)), (3, (0, 1)), (4, (0, 1)), (1, (2, 3)), (2, (2, 3))]
    assert rec.batch_size == 6 and rec.hparams["lr"].tolist() == pytest.approx([0.1, 0.3])
    for (members, e), logs in rec.logs.items():
        for k, v in logs.items():
            assert v.shape[0] == 2  # the members' axis
            np.testing.assert_array_equal(v, res.history[k][list(members), e - 1], err_msg=k)
    np.testing.assert_array_equal(rec.params[(0, 1), 4]["w"], res.params["w"][:2])
    np.testing.assert_array_equal(rec.params[(2, 3), 2]["w"], res.params["w"][2:])
    # the stop request stopped the batch-size-6 program only
    assert res.epochs_run.tolist() == [4, 4, 2, 2]
    assert res.stop_reason == [
        None,
        None,
        "stopped by callback StopAt",
        "stopped by callback StopAt",
    ]
    assert (
        np.isnan(res.history["loss"][2:, 2:]).all() and np.isfinite(res.history["loss"][:2]).all()
    )


def test_sweep_keeps_each_members_weight_average(swept):
    from tests.test_ema import hand_sgd_ema

    res = swept[0]
    for i, (lr, bs, epochs) in enumerate([(0.1, 4, 4), (0.3, 4, 4), (0.1, 6, 2), (0.3, 6, 2)]):
        raw, avg = hand_sgd_ema(lr, 0.6, bs, epochs)
        np.testing.assert_allclose(res.params["w"][i], raw[-1][0], rtol=1e-5)
        np.testing.assert_allclose(res.ema_params["w"][i], avg[-1][0], rtol=1e-5)


def test_sweep_csv_has_a_row_per_member_and_epoch(swept):
    res, _, tmp = swept
    with open(tmp / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["member"]) for r in rows] == [
        (str(e), str(m))
        for first, last in ((0, 4), (2, 2))
        for e in range(1, last + 1)
        for m in (first, first + 1)
    ]
    for r in rows:
        m, e = int(r["member"]), int(r["epoch"])
        for k in ("loss", "val_loss", "nonfinite_steps"):
            assert float(r[k]) == res.history[k][m, e - 1], (k, m, e)


def test_sweep_tensorboard_has_a_run_per_member(swept):
    from tests.test_loggers import read_scalars

    res, _, tmp = swept
    for m, epochs in ((1, 4), (2, 2)):
        steps, values = read_scalars(tmp / "tb" / f"member_{m}", "val_loss")
        assert steps == list(range(1, epochs + 1))
        np.testing.assert_array_equal(values, res.history["val_loss"][m, :epochs])


def test_sweep_keeps_the_best_k_of_each_member(swept):
    res, cbs, _ = swept
    best, rec = cbs["best"], cbs["rec"]
    for m, epochs in ((0, 4), (1, 4), (2, 2), (3, 2)):
        val = res.history["val_loss"][m, :epochs]
        expected = [int(e) + 1 for e in np.argsort(val, kind="stable")[:2]]
        assert best.best_epochs(member=m) == expected
        program, j = ((0, 1), m) if m < 2 else ((2, 3), m - 2)
        kept = best.restore(member=m, like=P0)
        np.testing.assert_array_equal(kept["w"], rec.params[program, expected[0]]["w"][j])


def test_sweep_mlflow_has_a_child_run_per_member(swept):
    from mlflow.tracking import MlflowClient

    from tests.test_loggers import allow_mlflow_file_store

    res, cbs, tmp = swept
    with allow_mlflow_file_store():
        client = MlflowClient(tracking_uri=str(tmp / "mlruns"))
        parent = cbs["mlflow"].run_id
        exp = client.get_experiment_by_name("sweep").experiment_id
        children = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
        assert sorted(r.info.run_name for r in children) == [f"member {i}" for i in range(4)]
        for run in children:
            m = int(run.info.run_name.split()[1])
            assert run.info.status == "FINISHED"
            assert float(run.data.params["lr"]) == pytest.approx([0.1, 0.3, 0.1, 0.3][m])
            assert run.data.params["batch_size"] == str([4, 4, 6, 6][m])
            hist = client.get_metric_history(run.info.run_id, "loss")
            assert [h.step for h in hist] == list(range(1, res.epochs_run[m] + 1))
            assert [h.value for h in hist] == res.history["loss"][m, : res.epochs_run[m]].tolist()
