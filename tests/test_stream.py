"""Streamed training: a source gives the same bits as the same data in memory (fit, a sweep with
one seed per member, after SIGKILL and resume); batches are read on a background thread; a
source whose batches change, or that holds NaN, is refused naming it."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grain
import jax
import numpy as np
import optax
import pytest

import gdjax
from gdjax.data import write_memmap
from gdjax.train.checkpoint import CHECKPOINTS_SUBDIR
from gdjax.train.sources import ArraySource, MemmapSource

sys.path.insert(0, str(Path(__file__).parent / "_train_helpers"))
import stream_run as run

ROOT = Path(__file__).parents[1]
HELPER = Path(__file__).parent / "_train_helpers" / "stream_run.py"


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # bit for bit (NaN == NaN)


@pytest.fixture(scope="module")
def in_memory():
    return run.flat(run.train((run.X, run.Y)))


@pytest.fixture(scope="module")
def memmap_dir(tmp_path_factory):
    return write_memmap(tmp_path_factory.mktemp("mm"), (run.X, run.Y))


@pytest.fixture(scope="module")
def streamed(memmap_dir):
    """The run streamed from a memmap directory (its programs also serve a checkpointed run)."""
    return run.flat(run.train(MemmapSource(memmap_dir)))


class Recording(ArraySource):
    """An ArraySource that records the thread and size of every read."""

    def __init__(self, data):
        super().__init__(data, name="Recording")
        self.reads = []

    def __getitem__(self, indices):
        self.reads.append((threading.current_thread().name, len(indices)))
        return super().__getitem__(indices)


def test_streamed_fit_equals_in_memory_bit_for_bit(in_memory, streamed):
    _same(streamed, in_memory)  # from a memmap directory
    recording = Recording((run.X, run.Y))
    grain_ds = grain.MapDataset.source(list(zip(run.X, run.Y, strict=True)))
    for source in (recording, grain_ds):
        _same(run.flat(run.train(source)), in_memory)
    # 3 epochs of 12 full batches in chunks of at most 5 steps (5, 5, 2), plus the remainder:
    # one read per chunk, all on the background thread but the two that learn the layout and
    # fingerprint the data
    reads = recording.reads
    assert [n for _, n in reads[2:]] == [5 * 16, 5 * 16, 2 * 16, 11] * 3
    assert all(name.startswith("gdjax-stream") for name, _ in reads[2:])
    assert {name for name, _ in reads[:2]} == {threading.main_thread().name}


def test_streamed_sweep_with_own_seeds_equals_in_memory():
    kw = dict(batch_size=16, epochs=2, seeds=[3, 4, 5], hparams={"lr": [0.05, 0.1, 0.2]})

    def loss(p, batch):
        return optax.softmax_cross_entropy_with_integer_labels(batch[0] @ p, batch[1]).mean()

    def opt(hp):
        return optax.sgd(hp["lr"])

    p = np.zeros((6, 2), np.float32)
    a = gdjax.sweep(loss, p, opt, (run.X, run.Y), record_steps=True, **kw)
    b = gdjax.sweep(loss, p, opt, ArraySource((run.X, run.Y)), record_steps=True, **kw)
    np.testing.assert_array_equal(a.params, b.params)
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k], err_msg=k)
    assert len({float(a.params[i, 0, 0]) for i in range(3)}) == 3  # the members differ


class Changing(ArraySource):
    """Returns its data, except that read number ``at`` is spoiled by ``spoil``."""

    def __init__(self, spoil, at=3):
        super().__init__((run.X, run.Y), name="Changing")
        self.spoil, self.at, self.count = spoil, at, 0

    def __getitem__(self, indices):
        self.count += 1
        x, y = super().__getitem__(indices)
        return self.spoil(x, y) if self.count == self.at else (x, y)


def _nan_row(x, y):
    x = x.copy()
    x[3, 1] = np.nan
    return x, y


@pytest.mark.parametrize(
    "spoil, error, words",
    [
        (lambda x, y: (x.astype(np.float64), y), TypeError, "batch[0] of dtype float64"),
        (lambda x, y: (x[:, :5], y), ValueError, "batch[0] of shape (80, 5)"),
        (lambda x, y: (x, y[:-1]), ValueError, "batch[1] of shape (79,)"),
        (lambda x, y: x, ValueError, "a batch of structure"),
        (_nan_row, ValueError, "NaN/inf values in batch[0]"),
    ],
)
def test_a_source_whose_batches_change_is_named(spoil, error, words):
    source = Changing(spoil)
    with pytest.raises(error) as info:
        run.train(source)
    assert "data source Changing returned for indices" in str(info.value)
    assert words in str(info.value)


def test_sources_refused_before_training(tmp_path):
    class NoLen:
        def __len__(self):
            return 2.5

        def __getitem__(self, i):
            return run.X[i]

    with pytest.raises(TypeError, match="len\\(\\) of data source NoLen failed"):
        run.train(NoLen())
    strings = grain.MapDataset.source(["a", "b", "c"])
    with pytest.raises(TypeError, match="must return arrays of numbers"):
        run.train(strings)
    filtered = grain.MapDataset.source(list(zip(run.X, run.Y, strict=True))).filter(
        lambda e: e[1] == 1
    )
    with pytest.raises(ValueError, match="is None \\(filtered out\\?\\)"):
        run.train(filtered)
    # a memmap shorter than its declared length (an interrupted copy)
    folder = write_memmap(tmp_path / "mm", (run.X, run.Y))
    os.truncate(folder / "0.npy", os.path.getsize(folder / "0.npy") - 24)
    with pytest.raises(ValueError, match=r"0\.npy: shorter than its declared length"):
        run.train(MemmapSource(folder))


def test_validation_source_is_loaded_like_arrays(in_memory):
    val = ArraySource((run.X[:40], run.Y[:40]))
    res = run.train((run.X, run.Y), validation_data=val)
    np.testing.assert_array_equal(res.history["val_loss"], in_memory["h_val_loss"])


def _start(memmap_dir, ckpt, out):
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path)
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(memmap_dir), str(ckpt), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


class StartRecorder(gdjax.Callback):
    """Records the parameters training starts from: a resumed run starts from a checkpoint's."""

    def on_train_begin(self, run):
        self.epoch = run.epoch
        self.params = [np.array(x, copy=True) for x in jax.tree.leaves(run.params)]


# a kill during a save leaves its temporary directory
@pytest.mark.filterwarnings("ignore:ignoring unfinished checkpoint:RuntimeWarning")
def test_streamed_run_killed_and_resumed_equals_in_memory(
    tmp_path, memmap_dir, streamed, in_memory
):
    # (``streamed`` compiled the programs in this process and put them in the persistent
    # compilation cache: the victim loads them from there)
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    victim = _start(memmap_dir, ckpt, out)

    def saved():
        folder = ckpt / CHECKPOINTS_SUBDIR
        return [p for p in folder.iterdir() if p.name.isdigit()] if folder.exists() else []

    deadline = time.time() + 120
    while len(saved()) < 2 and victim.poll() is None:
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.3)))
    victim.send_signal(signal.SIGKILL)
    log = victim.communicate()[0].decode()[-2000:]
    assert victim.returncode == -signal.SIGKILL, log  # killed, not crashed
    assert not out.exists(), "the run finished before it could be killed"
    # a new run on the killed one's checkpoints, in this process
    start = StartRecorder()
    with pytest.warns(RuntimeWarning, match="taking over the stale lock"):
        resumed = run.train_checkpointed(memmap_dir, ckpt, callbacks=[start])
    # the same run uninterrupted, streamed and in memory
    _same(run.flat(resumed), streamed)
    _same(streamed, in_memory)
    # it began from a checkpoint, not from the initial parameters, and ran only what was left
    initial = jax.tree.leaves(run.PARAMS)
    assert any(not np.array_equal(a, b) for a, b in zip(start.params, initial, strict=True))
    assert len(resumed.epoch_seconds) == run.EPOCHS - start.epoch
