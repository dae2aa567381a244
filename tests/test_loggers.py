"""The loggers write what the history holds, read back with each format's own reader.

(The sweep's CSV, TensorBoard and MLflow files are checked in ``test_callbacks.py``.)
"""

import contextlib
import csv
import os

import jax
import numpy as np
import pytest

import gdjax
from tests.test_ema import P0, XV, YV, X, Y, mse

KW = {"batch_size": 4, "key": jax.random.key(0), "validation_data": (XV, YV)}


@contextlib.contextmanager
def allow_mlflow_file_store():
    """MLflow 3 refuses a plain folder as its store unless told it is wanted."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def read_scalars(logdir, tag):
    """Steps and values of ``tag``, read with TensorBoard's own event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    events = acc.Scalars(tag)
    return [e.step for e in events], np.array([e.value for e in events], np.float32)


def test_csv_holds_the_history_exactly_and_the_whole_of_a_resumed_run(tmp_path):
    path, ckpt = tmp_path / "logs" / "run.csv", tmp_path / "ckpt"
    kw = {"checkpoint_dir": ckpt, "callbacks": [gdjax.CSVLogger(path)], **KW}
    gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=2, **kw)
    res = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=4, **kw)  # resumes at epoch 2
    assert len(res.epoch_seconds) == 2
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", *res.history]
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    for k, values in res.history.items():
        read = np.array([float(r[k]) for r in rows]).astype(values.dtype)
        np.testing.assert_array_equal(read, values, err_msg=k)


def test_tensorboard_event_files_hold_the_logged_values(tmp_path):
    res = gdjax.fit(
        mse,
        P0,
        gdjax.sgd(0.3),
        (X, Y),
        epochs=3,
        callbacks=[gdjax.TensorBoardLogger(tmp_path / "tb")],
        **KW,
    )
    for tag in ("loss", "val_loss", "nonfinite_steps"):
        steps, values = read_scalars(tmp_path / "tb", tag)
        assert steps == [1, 2, 3]
        np.testing.assert_array_equal(values, res.history[tag].astype(np.float32), err_msg=tag)


def test_mlflow_logger_records_metrics_params_and_status(tmp_path):
    logger = gdjax.MLflowLogger("fit", tracking_uri=tmp_path / "mlruns", params={"lr": 0.3})
    with allow_mlflow_file_store():
        res = gdjax.fit(mse, P0, gdjax.sgd(0.3), (X, Y), epochs=3, callbacks=[logger], **KW)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=str(tmp_path / "mlruns"))
        run = client.get_run(logger.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params == {"lr": "0.3", "epochs": "3", "batch_size": "4"}
        for key in ("loss", "val_loss"):
            hist = client.get_metric_history(logger.run_id, key)
            assert [h.step for h in hist] == [1, 2, 3]
            assert [h.value for h in hist] == res.history[key].tolist()


def test_unwritable_destinations_are_refused_before_training(tmp_path):
    def loss_never_called(p, batch):
        raise AssertionError("training started")

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    refused = [
        (gdjax.CSVLogger(afile / "log.csv"), NotADirectoryError, "afile is a file"),
        (gdjax.CSVLogger(tmp_path), IsADirectoryError, "is a directory"),
        (gdjax.TensorBoardLogger(afile / "tb"), NotADirectoryError, "afile is a file"),
        (gdjax.TensorBoardLogger(afile), NotADirectoryError, "is not a directory"),
        (gdjax.BestCheckpoints(afile / "best" / "deeper"), NotADirectoryError, "afile is a file"),
        (gdjax.MLflowLogger(tracking_uri=afile / "runs"), NotADirectoryError, "afile is a file"),
    ]
    for logger, error, match in refused:
        with pytest.raises(error, match=match) as info:
            gdjax.fit(
                loss_never_called, P0, gdjax.sgd(0.1), (X, Y), epochs=1, callbacks=[logger], **KW
            )
        assert f"({type(logger).__name__}).check()" in " ".join(info.value.__notes__)
    assert afile.read_text() == "not a folder"
    # a folder to be created under a writable one is fine, and nothing is written by the check
    gdjax.CSVLogger(tmp_path / "new" / "log.csv").check()
    assert not (tmp_path / "new").exists()
