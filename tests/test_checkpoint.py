"""Checkpoints: resume after SIGKILL to identical bits; corrupt checkpoints skipped; shape guard."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train.checkpoint import CHECKPOINTS_SUBDIR

HELPER = Path(__file__).parent / "_train_helpers" / "ckpt_run.py"
ROOT = Path(__file__).parents[1]
# the helper, under the name it runs as (a checkpoint names the loss's module); not entered in
# sys.modules, where tests/test_federated_checkpoint.py puts its own ckpt_run
_spec = importlib.util.spec_from_file_location("ckpt_run", HELPER)
ckpt_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ckpt_run)


def _start(ckpt, out):
    # the checkout under test, not whichever gdjax is installed
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path)
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(ckpt), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _steps(ckpt):
    ckpt = ckpt / CHECKPOINTS_SUBDIR
    return [p for p in ckpt.iterdir() if p.name.isdigit()] if ckpt.exists() else []


# a kill during a save leaves its temporary directory
@pytest.mark.filterwarnings("ignore:ignoring unfinished checkpoint:RuntimeWarning")
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    victim = _start(ckpt, out)
    deadline = time.time() + 120
    while len(_steps(ckpt)) < 2 and victim.poll() is None:
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.3)))  # land anywhere, saves too
    victim.send_signal(signal.SIGKILL)
    log = victim.communicate()[0].decode()[-2000:]
    assert victim.returncode == -signal.SIGKILL, log  # killed, not crashed
    assert not out.exists(), "the run finished before it could be killed"
    # a new run on the killed one's checkpoints, in this process: its programs come from the
    # persistent compilation cache the victim filled
    with pytest.warns(RuntimeWarning, match="taking over the stale lock"):
        res, start = ckpt_run.train(ckpt)
    # the same run uninterrupted and never checkpointed
    ref, ref_start = ckpt_run.train(None)
    assert set(res.history) == set(ref.history)
    for k, v in ref.history.items():
        np.testing.assert_array_equal(res.history[k], v, err_msg=k)  # bit-identical (NaN == NaN)
    for k, v in ref.params.items():
        np.testing.assert_array_equal(res.params[k], v, err_msg=k)
    assert res.steps == ref.steps
    # the resumed run began from a checkpoint (away from the initial parameters) and ran only
    # the epochs that were left; the reference began afresh
    assert ref_start.epoch == 0 and len(ref.epoch_seconds) == ckpt_run.EPOCHS
    for k, v in ckpt_run.PARAMS.items():
        np.testing.assert_array_equal(ref_start.params[k], v)
    assert any(not np.array_equal(start.params[k], v) for k, v in ckpt_run.PARAMS.items())
    assert len(res.epoch_seconds) == ckpt_run.EPOCHS - start.epoch
    assert len(_steps(ckpt)) <= 2  # keep_checkpoints=2


X = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
Y = 3 * X[:, 0] + 1


def _loss(p, batch):
    return jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)


P = {"w": np.zeros(1, np.float32), "b": np.zeros((), np.float32)}


def _fit(ckpt, epochs, params=P, **kw):
    return gdjax.fit(
        _loss,
        params,
        optax.adam(0.1),
        (X, Y),
        batch_size=6,
        epochs=epochs,
        key=jax.random.key(0),
        checkpoint_dir=ckpt,
        record_steps=True,
        **kw,
    )


# orbax's reports of the failed reads it retries (asyncio tracebacks) are silenced
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_extend_run_and_corrupt_latest_checkpoint_falls_back(tmp_path):
    full = _fit(tmp_path / "a", 4)
    _fit(tmp_path / "b", 2)
    latest = max(_steps(tmp_path / "b"), key=lambda p: int(p.name))
    # damage every array file of the newest checkpoint, keeping sizes
    damaged = 0
    for f in (latest / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 64 and "d" in f.parent.name:
            data = bytearray(f.read_bytes())
            data[-64:] = bytes(64)
            f.write_bytes(bytes(data))
            damaged += 1
    assert damaged
    with pytest.warns(RuntimeWarning, match="skipping corrupt checkpoint"):
        resumed = _fit(tmp_path / "b", 4)
    for k in ("loss", "step_loss"):
        np.testing.assert_array_equal(resumed.history[k], full.history[k])
    np.testing.assert_array_equal(resumed.params["w"], full.params["w"])
    # a finished run started again returns its result without training
    again = _fit(tmp_path / "a", 4)
    assert again.steps == full.steps
    np.testing.assert_array_equal(again.params["b"], full.params["b"])


def test_checkpoint_dir_of_other_shapes_is_refused(tmp_path):
    _fit(tmp_path / "c", 1)
    other = {"w": np.zeros(1, np.float32), "b": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match=r"holds another run.*params\[0\].*\['b'\]"):
        _fit(tmp_path / "c", 2, params=other)


def _delete_arrays(step_dir):
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":  # OCDBT data files: the saved arrays
            f.unlink()


def _delete_metadata(step_dir):
    (step_dir / "meta" / "metadata").unlink()


def _unfinished_save(step_dir):
    # a save of the next step killed before orbax renamed its temporary directory
    tmp = step_dir.parent / f"{int(step_dir.name) + 4}.orbax-checkpoint-tmp-1700000000"
    shutil.copytree(step_dir, tmp)
    _delete_arrays(tmp)


@pytest.fixture(scope="module")
def three_epochs_dir(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ref") / "ckpt"
    return ckpt, _fit(ckpt, 3)


@pytest.fixture
def three_epochs(three_epochs_dir):
    return three_epochs_dir[1]


# orbax's reports of the failed reads it retries (asyncio tracebacks) are silenced
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("damage", "warning"),
    [
        (_delete_arrays, "skipping corrupt checkpoint .*8: unreadable arrays"),
        (_delete_metadata, "skipping corrupt checkpoint .*8: unreadable metadata"),
        (_unfinished_save, r"ignoring unfinished checkpoint .*12\.orbax-checkpoint-tmp"),
    ],
)
def test_partial_checkpoint_is_skipped_for_the_previous_one(
    tmp_path, three_epochs, damage, warning
):
    ckpt = tmp_path / "ckpt"
    _fit(ckpt, 2)
    newest = max(_steps(ckpt), key=lambda p: int(p.name))
    assert newest.name == "8"  # 2 epochs of 4 steps
    damage(newest)
    with pytest.warns(RuntimeWarning, match=warning):
        resumed = _fit(ckpt, 3)
    # resumed from step 4 (or 8 for the unfinished save of step 12): same bits as straight
    for k in ("loss", "step_loss"):
        np.testing.assert_array_equal(resumed.history[k], three_epochs.history[k])
    np.testing.assert_array_equal(resumed.params["w"], three_epochs.params["w"])
    assert not list((ckpt / CHECKPOINTS_SUBDIR).glob("*orbax-checkpoint-tmp*"))
    if damage is _delete_arrays:
        # the damaged step was rewritten when the resumed run reached it again
        shutil.rmtree(ckpt / CHECKPOINTS_SUBDIR / "12")
        with warnings.catch_warnings():
            warnings.filterwarnings("error", "skipping corrupt", RuntimeWarning)
            again = _fit(ckpt, 2)
        np.testing.assert_array_equal(again.history["loss"], three_epochs.history["loss"][:2])


def test_checkpoint_of_a_longer_run_is_refused(three_epochs_dir):
    ckpt, _ = three_epochs_dir
    with pytest.raises(ValueError, match="already completed 3 epochs, more than epochs=2"):
        _fit(ckpt, 2)
