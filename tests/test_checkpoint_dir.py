"""A checkpoint directory belongs to one run: identity, lock, layout, unusable directories, damage.

These tests drive the Checkpointer directly with tiny states (one orbax save is a few tens of
milliseconds); tests/test_checkpoint.py covers resuming through ``gdjax.fit``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from gdjax.train import checkpoint as ck
from gdjax.train.checkpoint import (
    CHECKPOINTS_SUBDIR,
    LOCK_NAME,
    Checkpointer,
    DirectoryLockedError,
    describe_mismatch,
)

ROOT = Path(__file__).parents[1]
FP = {"optimizer": {"learning_rate": 0.1, "b1": 0.9}, "data": "3f2a", "loss": "mse"}


def _state(v: float) -> dict:
    return {"w": np.full(3, v, np.float32), "step": np.int32(v)}


def _history(n: int) -> dict:
    return {
        "loss": [np.float32(1 / (i + 1)) for i in range(n)],
        "epochs": [np.int32(i) for i in range(n)],
    }


def _save(directory, steps, fp=FP, keep=3):
    with Checkpointer(directory, keep, fp) as c:
        for s in steps:
            c.save(s, _state(s), _history(s))


def _restore(directory, fp=FP):
    with Checkpointer(directory, 3, fp) as c:
        return c.restore(_state(0))


def _meta_file(directory, step) -> Path:
    return Path(directory) / CHECKPOINTS_SUBDIR / str(step) / "meta" / "metadata"


# --- the run's identity ----------------------------------------------------------------------


def test_describe_mismatch_names_each_differing_value():
    lr = {**FP, "optimizer": {"learning_rate": 0.01, "b1": 0.9}}
    assert describe_mismatch(FP, lr) == "optimizer.learning_rate: saved 0.1, this run 0.01"
    assert describe_mismatch(FP, json.loads(json.dumps(FP))) is None
    assert describe_mismatch({"x": float("nan")}, {"x": float("nan")}) is None
    both = describe_mismatch({"data": "aa", "p": [1, 2]}, {"data": "bb", "p": [1, 3, 4], "new": 1})
    assert both == (
        'data: saved "aa", this run "bb"; p[1]: saved 2, this run 3; '
        "p (length): saved 2, this run 3; new: saved (absent), this run 1"
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"optimizer": {"learning_rate": 0.01, "b1": 0.9}},
            r"optimizer\.learning_rate: saved 0\.1, this run 0\.01",
        ),
        ({"data": "77c0"}, r'data: saved "3f2a", this run "77c0"'),
        ({"loss": "cross_entropy"}, r'loss: saved "mse", this run "cross_entropy"'),
    ],
    ids=["learning_rate", "data", "loss"],
)
def test_another_run_is_refused_naming_the_field(tmp_path, change, named):
    _save(tmp_path, [1])
    with pytest.raises(ValueError, match=named) as info:
        _restore(tmp_path, {**FP, **change})
    msg = str(info.value)
    assert str(tmp_path) in msg and "another checkpoint_dir" in msg and "delete" in msg
    state, _ = _restore(tmp_path)  # the refusal released the lock; the run itself resumes
    assert state["w"][0] == 1


def test_numpy_and_jax_values_in_the_fingerprint(tmp_path):
    fp = {"optimizer": {"learning_rate": np.float32(0.1), "betas": jnp.array([0.9, 0.999])}}
    _save(tmp_path, [1], fp)
    assert _restore(tmp_path, fp)[0]["w"][0] == 1
    fp["optimizer"]["betas"] = jnp.array([0.9, 0.99])
    with pytest.raises(
        ValueError, match=r"optimizer\.betas\[1\]: saved 0\.99900001287460\d*, this run 0\.99"
    ):
        _restore(tmp_path, fp)
    with pytest.raises(TypeError, match="fingerprint must be JSON-serializable: object is not"):
        Checkpointer(tmp_path, 3, {"loss": object()})


def test_state_layout_is_part_of_the_identity(tmp_path):
    _save(tmp_path, [1])
    with (
        Checkpointer(tmp_path, 3, FP) as c,
        pytest.raises(
            ValueError, match=r"state layout\[0\]: saved \"\(\) int32\", this run \"\(2,\) int32\""
        ),
    ):
        c.restore({"w": np.zeros(3, np.float32), "step": np.zeros(2, np.int32)})


# --- metadata under the checksum -------------------------------------------------------------


def _edit_body(path: Path, edit) -> None:
    meta = json.loads(path.read_text())
    body = json.loads(meta["body"])
    edit(body)
    meta["body"] = json.dumps(body)
    path.write_text(json.dumps(meta))


def _set(key, value):
    def edit(body):
        body[key] = value

    return edit


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: _edit_body(p, lambda b: b["history_dtypes"].update(loss="int32")),
        lambda p: _edit_body(p, lambda b: b["fingerprint"].update(data="0000")),
        lambda p: _edit_body(p, lambda b: b["history"]["loss"].__setitem__(0, 9.0)),
        lambda p: _edit_body(p, _set("step", 1)),
        lambda p: p.write_text(p.read_text()[:-5]),  # truncated JSON
    ],
    ids=["history_dtypes", "fingerprint", "history", "step", "truncated"],
)
def test_damaged_metadata_falls_back_to_the_previous_checkpoint(tmp_path, damage):
    _save(tmp_path, [1, 2])
    damage(_meta_file(tmp_path, 2))
    with pytest.warns(RuntimeWarning, match=r"skipping corrupt checkpoint .*2: .*metadata"):
        state, history = _restore(tmp_path)
    assert (
        state["w"][0] == 1 and history["loss"] == [1.0] and history["loss"][0].dtype == np.float32
    )


def test_newer_format_is_an_error(tmp_path):
    _save(tmp_path, [1])
    path = _meta_file(tmp_path, 1)
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": ck.FORMAT_VERSION + 1}))
    with pytest.raises(
        ValueError, match=f"format {ck.FORMAT_VERSION + 1}, written by a newer gdjax"
    ):
        _restore(tmp_path)


def test_older_layout_is_a_clear_error(tmp_path):
    # format 1 kept orbax's step folders at the top level of checkpoint_dir
    (tmp_path / "8" / "meta").mkdir(parents=True)
    (tmp_path / "8" / "_CHECKPOINT_METADATA").write_text("{}")
    (tmp_path / "8" / "meta" / "metadata").write_text(json.dumps({"format": 1}))
    with pytest.raises(
        ValueError, match=r"older gdjax \(checkpoint format 1\).*another checkpoint_dir"
    ):
        Checkpointer(tmp_path, 3, FP)
    _save(tmp_path / "run", [1])  # the checkpoints folder passed instead of the run's folder
    with pytest.raises(ValueError, match=r"checkpoints folder of a run; pass its parent"):
        Checkpointer(tmp_path / "run" / CHECKPOINTS_SUBDIR, 3, FP)


def test_stray_numbered_folder_survives_and_keeps_the_runs_checkpoints(tmp_path):
    (tmp_path / "2024").mkdir()
    (tmp_path / "2024" / "notes.txt").write_text("mine")
    _save(tmp_path, [1, 2, 3], keep=2)
    assert (tmp_path / "2024" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / CHECKPOINTS_SUBDIR).iterdir()) == ["2", "3"]
    state, history = _restore(tmp_path)
    assert state["w"][0] == 3 and state["step"].dtype == np.int32
    assert history["loss"] == [np.float32(1), np.float32(1 / 2), np.float32(1 / 3)]  # exact
    assert [e.dtype for e in history["epochs"]] == [np.int32] * 3


def test_corrupt_newer_checkpoints_do_not_block_saves(tmp_path):
    # orbax skips a save below the newest step on disk; the steps skipped as corrupt are newer
    _save(tmp_path, [1, 2, 3])
    for step in (2, 3):
        _edit_body(_meta_file(tmp_path, step), _set("step", 0))
    with Checkpointer(tmp_path, 3, FP) as c:
        with pytest.warns(RuntimeWarning, match="skipping corrupt"):
            state, _ = c.restore(_state(0))
        assert state["w"][0] == 1
        c.save(2, _state(2), _history(2))
    with pytest.warns(RuntimeWarning, match=r"skipping corrupt checkpoint .*3:"):
        state, history = _restore(tmp_path)
    assert state["w"][0] == 2 and len(history["loss"]) == 2


def test_orbax_reports_of_a_failed_read_are_silenced(tmp_path, monkeypatch):
    # orbax closes its event loop while tensorstore still has reads in flight; their callbacks
    # used to print "RuntimeError: Event loop is closed" tracebacks on stderr. It depends on
    # timing (about 2 failed reads in 5 of 40 arrays showed it), so 8 checkpoints fail here.
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    like = {f"w{i:02d}": np.zeros(3, np.float32) for i in range(40)}
    with Checkpointer(tmp_path, 9, FP) as c:
        for step in range(1, 10):
            c.save(step, {k: v + step for k, v in like.items()}, _history(step))
    for f in (tmp_path / CHECKPOINTS_SUBDIR).glob("[2-9]/state/**/d/*"):
        f.unlink()  # OCDBT data files: the saved arrays
    with Checkpointer(tmp_path, 9, FP) as c:
        with pytest.warns(
            RuntimeWarning, match=r"skipping corrupt checkpoint .*: unreadable arrays"
        ):
            state, _ = c.restore(like)
        c.save(10, like, _history(10))
    assert state["w39"][0] == 1
    assert not seen, [repr(u.exc_value) for u in seen]


# --- the lock --------------------------------------------------------------------------------

HOLDER = """
import sys
from gdjax.train.checkpoint import Checkpointer
ckpt = Checkpointer(sys.argv[1], 1, {"run": "holder"})
print("open", flush=True)
sys.stdin.read()  # hold the directory until killed
"""


def test_lock_refuses_a_second_live_writer_and_takes_over_a_stale_one(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline()
        assert line == "open\n", holder.stderr.read()[-2000:]
        owner = json.loads((tmp_path / LOCK_NAME).read_text())
        assert owner["pid"] == holder.pid and owner["host"] == socket.gethostname()
        with pytest.raises(DirectoryLockedError) as info:
            Checkpointer(tmp_path, 3, FP)
        msg = str(info.value)
        assert f"{tmp_path} is in use: locked by pid {holder.pid} on host {owner['host']}" in msg
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
    with pytest.warns(RuntimeWarning, match=f"stale lock .* pid {holder.pid} .*no longer runs"):
        c = Checkpointer(tmp_path, 3, FP)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    c.close()
    assert not (tmp_path / LOCK_NAME).exists()


def test_one_writer_per_directory_in_this_process_too(tmp_path):
    first = Checkpointer(tmp_path, 3, FP)
    with pytest.raises(DirectoryLockedError, match=f"{tmp_path} is already open in this process"):
        Checkpointer(tmp_path, 3, FP)
    first.close()
    first.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        first.save(1, _state(1), _history(1))
    _save(tmp_path, [1])  # free again


def test_lock_file_without_an_os_lock(tmp_path):
    """A lock file whose OS lock is gone: stale if its process no longer runs, else refused."""
    lock, host, parent = tmp_path / LOCK_NAME, socket.gethostname(), os.getppid()
    started = ck._proc_stat(parent)[1]
    lock.write_text(json.dumps({"pid": parent, "host": host, "start": started}))
    with pytest.raises(DirectoryLockedError, match=f"pid {parent} .*runs but holds no OS lock"):
        Checkpointer(tmp_path, 3, FP)
    lock.write_text(json.dumps({"pid": parent, "host": host, "start": "1"}))  # pid reused
    with pytest.warns(RuntimeWarning, match=f"stale lock .* pid {parent} "):
        Checkpointer(tmp_path, 3, FP).close()
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    with pytest.raises(
        DirectoryLockedError, match=f"pid 1 on host elsewhere.example.*delete {lock}"
    ):
        Checkpointer(tmp_path, 3, FP)


# --- unusable directories --------------------------------------------------------------------


@contextlib.contextmanager
def _file_permissions_apply():
    """Root ignores file permissions: drop CAP_DAC_OVERRIDE for this thread (Linux) meanwhile."""
    if os.geteuid() != 0:
        yield
        return

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    assert libc.capget(ctypes.byref(header), data) == 0
    effective = data[0].effective
    data[0].effective &= ~(1 << 1 | 1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    assert libc.capset(ctypes.byref(header), data) == 0
    try:
        yield
    finally:
        data[0].effective = effective
        assert libc.capset(ctypes.byref(header), data) == 0


def test_unusable_directories_are_refused_when_opened(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ValueError, match="checkpoint_dir is empty; it would write into the current"
    ):
        Checkpointer("", 3, FP)
    with pytest.raises(TypeError, match=r"checkpoint_dir must be a str or os\.PathLike; got int"):
        Checkpointer(3, 3, FP)
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(
        FileNotFoundError,
        match=f"{tmp_path / 'link'} is a symbolic link to {tmp_path / 'gone'}, which does not exist",
    ):
        Checkpointer(tmp_path / "link", 3, FP)
    (tmp_path / "file").write_text("x")
    with pytest.raises(
        NotADirectoryError, match=f"{tmp_path / 'file'} exists and is not a directory"
    ):
        Checkpointer(tmp_path / "file", 3, FP)
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    with (
        _file_permissions_apply(),
        pytest.raises(PermissionError, match=f"checkpoint_dir {readonly} is not writable"),
    ):
        Checkpointer(readonly, 3, FP)
    (readonly / CHECKPOINTS_SUBDIR).mkdir(mode=0o555)  # lock file possible, checkpoints not
    readonly.chmod(0o755)
    with (
        _file_permissions_apply(),
        pytest.raises(PermissionError, match=f"checkpoint_dir {readonly} is not writable"),
    ):
        Checkpointer(readonly, 3, FP)
    assert not (readonly / LOCK_NAME).exists()  # released on the way out
    assert sorted(os.listdir(tmp_path)) == ["file", "link", "readonly"]  # nothing written here


def test_failed_save_is_an_oserror_and_the_previous_checkpoint_restores(tmp_path, caplog):
    # A real write failure inside tensorstore: a file-size limit makes the write fail with EFBIG
    # (a full disk fails the same write with ENOSPC).
    big = {
        "w": np.random.default_rng(0).normal(size=200_000).astype(np.float32),
        "step": np.int32(2),
    }
    with Checkpointer(tmp_path, 3, FP) as c:
        c.save(1, {"w": np.ones(200_000, np.float32), "step": np.int32(1)}, _history(1))
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
        try:
            with pytest.raises(
                OSError, match=f"step 2 to checkpoint_dir {tmp_path}.*step 1\\) is intact"
            ) as info:
                c.save(2, big, _history(2))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)
    assert info.value.errno == errno.EFBIG
    assert not [r for r in caplog.records if "orbax" in r.pathname and r.levelno >= logging.ERROR]
    assert sorted(os.listdir(tmp_path / CHECKPOINTS_SUBDIR)) == ["1"]
    with Checkpointer(tmp_path, 3, FP) as c:
        state, _ = c.restore({"w": np.zeros(200_000, np.float32), "step": np.int32(0)})
        assert state["step"] == 1
        c.save(2, big, _history(2))  # the disk has room again
    err = ValueError("RESOURCE_EXHAUSTED: Error writing local file: No space left on device")
    assert ck._errno(err) == errno.ENOSPC
