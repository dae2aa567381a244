"""Checkpoints of a training run with orbax: one run per directory, atomic saves, verified restores.

Layout of a ``checkpoint_dir`` (format 2)::

    checkpoint_dir/
        gdjax.lock            exists while a Checkpointer has the directory open (pid, host)
        gdjax-checkpoints/    orbax's folder, written only by the engine
            4/  8/  ...       one checkpoint per global step

Other entries of ``checkpoint_dir`` are left alone: orbax never sees them, so a stray numbered
folder (``2024/``) cannot make it delete or skip the run's checkpoints.

A checkpoint holds the whole :class:`~gdjax.train.state.TrainState` (parameters, optimizer and
model state, epoch, step, position within the epoch, the epoch's running sums, the stopping
rules' state) as numbered array leaves, plus one JSON record
``{"format": 2, "body": TEXT, "sha256": SHA-256 of TEXT}``. The body holds the step, the run's
fingerprint, the history so far and its dtypes, the shapes and dtypes of the leaves and a
SHA-256 of every array byte, so every byte a resume depends on is under a checksum.

orbax writes each checkpoint into a temporary directory and renames it when complete, so a run
killed mid-save leaves the previous checkpoint intact (the temporary directory is reported and
removed). A checkpoint whose metadata or arrays are unreadable, or fail their checksum, is
skipped with a warning for the previous one, and rewritten when the resumed run reaches its step.
A failed save (a full disk) raises ``OSError`` naming the directory and leaves the previous
checkpoint restorable.

Opening a directory checks, before anything is trained: that it is a usable, writable directory
(not ``""``, not a dangling symbolic link, not a file); that no other live ``Checkpointer`` has it
open (the lock, see :class:`DirectoryLockedError`); that it does not hold checkpoints of the
older layout (format 1, numbered folders at the top level), which are refused with
``ValueError``. Resuming checks that the saved fingerprint equals this run's, field by field
(see :func:`describe_mismatch`): a difference raises ``ValueError``, never a silent resume.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import socket
import sys
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the pid file alone guards the directory
    fcntl = None  # type: ignore[assignment]

FORMAT_VERSION = 2
#: The folder of ``checkpoint_dir`` that holds orbax's checkpoints (the engine owns it).
CHECKPOINTS_SUBDIR = "gdjax-checkpoints"
#: The lock file of ``checkpoint_dir``: JSON with the owner's pid, host and start time.
LOCK_NAME = "gdjax.lock"
#: Part of the name of orbax's temporary directory for a save in progress.
UNFINISHED_MARK = ".orbax-checkpoint-tmp"
_SHOWN_DIFFERENCES = 5
_BODY_KEYS = (
    "format",
    "step",
    "fingerprint",
    "history",
    "history_dtypes",
    "leaves",
    "arrays_sha256",
)


class DirectoryLockedError(RuntimeError):
    """``checkpoint_dir`` is open in another live ``Checkpointer`` (this process or another).

    The message names the directory, the owner's pid and host, and the lock file to delete if
    the owner is known to be gone.
    """


# --- the run's identity ----------------------------------------------------------------------


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _differences(saved: Any, current: Any, path: str) -> list[tuple[str, Any, Any]]:
    """Every leaf where two JSON values differ, as ``(path, saved, current)``."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in [*current, *(k for k in saved if k not in current)]:
            where = f"{path}.{key}" if path else str(key)
            a, b = saved.get(key, _ABSENT), current.get(key, _ABSENT)
            absent = a is _ABSENT or b is _ABSENT
            out += [(where, a, b)] if absent else _differences(a, b, where)
        return out
    if isinstance(saved, list) and isinstance(current, list):
        out = []
        for i, (a, b) in enumerate(zip(saved, current, strict=False)):
            out += _differences(a, b, f"{path}[{i}]")
        if len(saved) != len(current):
            out.append((f"{path} (length)", len(saved), len(current)))
        return out
    return [] if _same_value(saved, current) else [(path, saved, current)]


def _show(value: Any) -> str:
    text = repr(value) if value is _ABSENT else json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def describe_mismatch(saved: dict, current: dict) -> str | None:
    """The differences between two run fingerprints, in words, or ``None`` if they are equal.

    Fingerprints are JSON values (dicts, lists, strings, numbers); a difference is named by its
    path (``optimizer.learning_rate``, ``params[1]``) with the saved and the current value. A
    field present on one side only is a difference too. NaN equals NaN.

    Examples:
        >>> from gdjax.train.checkpoint import describe_mismatch
        >>> saved, current = {"optimizer": {"lr": 0.1}}, {"optimizer": {"lr": 0.01}}
        >>> describe_mismatch(saved, current)
        'optimizer.lr: saved 0.1, this run 0.01'
        >>> describe_mismatch({"batch_size": 8}, {"batch_size": 8}) is None
        True
    """
    found = _differences(saved, current, "")
    if not found:
        return None
    shown = "; ".join(
        f"{p}: saved {_show(a)}, this run {_show(b)}" for p, a, b in found[:_SHOWN_DIFFERENCES]
    )
    more = len(found) - _SHOWN_DIFFERENCES
    return shown + (f"; and {more} more difference(s)" if more > 0 else "")


# --- the lock --------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time in clock ticks since boot)`` of a process, from Linux's /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _alive(pid: Any, start: Any) -> bool:
    """Whether process ``pid`` of this host runs, and is the one that started at ``start``."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    except (OSError, OverflowError):
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    return state not in ("Z", "X") and (start is None or started == start)


class _DirectoryLock:
    """Exclusive ownership of a directory: ``gdjax.lock`` naming the owner, under an OS lock.

    The OS lock (``flock``) makes taking it atomic and is released by the kernel when the owner
    dies; the file's content (pid, host, process start time) names the owner in error messages
    and tells a stale lock (left by a process that no longer runs on this host) from a live one.
    """

    _held: ClassVar[set[str]] = set()  # lock files held by this process

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None
        self._pid = os.getpid()

    def acquire(self) -> None:
        if str(self.path) in self._held:
            raise DirectoryLockedError(
                f"checkpoint_dir {self.directory} is already open in this process "
                f"(pid {os.getpid()}) by another Checkpointer; close it first (two writers "
                "would mix their checkpoints)"
            )
        fd = self._open_locked()
        try:
            self._take_over(self._read_owner(fd))
            me = os.getpid()
            stat = _proc_stat(me)
            owner = {
                "pid": me,
                "host": socket.gethostname(),
                "start": stat[1] if stat else None,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(owner).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._pid = fd, os.getpid()
        self._held.add(str(self.path))

    def _open_locked(self) -> int:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise OSError(
                    err.errno,
                    f"checkpoint_dir {self.directory} is not writable: cannot create its lock "
                    f"file {self.path} ({err.strerror}); pass a writable directory",
                ) from err
            if fcntl is None:  # pragma: no cover
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._read_owner(fd)
                os.close(fd)
                raise DirectoryLockedError(self._held_by(owner, "is in use")) from None
            except OSError as err:
                os.close(fd)
                raise OSError(
                    err.errno, f"cannot lock checkpoint_dir {self.directory}: {err.strerror}"
                ) from err
            try:
                here, mine = os.stat(self.path), os.fstat(fd)
                same = (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the owner removed the file between our open and our lock: again

    @staticmethod
    def _read_owner(fd: int) -> dict | str | None:
        raw = os.pread(fd, 4096, 0)
        if not raw:
            return None
        try:
            owner = json.loads(raw)
        except ValueError:
            return raw[:80].decode(errors="replace")
        return owner if isinstance(owner, dict) else str(owner)[:80]

    def _held_by(self, owner: dict | str | None, what: str) -> str:
        if isinstance(owner, dict):
            who = f"pid {owner.get('pid')} on host {owner.get('host')}"
            since = owner.get("since")
            who += f", since {since}" if since else ""
        else:
            who = "a process that has not written its name yet"
        return (
            f"checkpoint_dir {self.directory} {what}: locked by {who} (lock file {self.path}). "
            "Two runs writing one directory would mix their checkpoints: wait for that run to "
            "end, or pass another checkpoint_dir"
        )

    def _take_over(self, owner: dict | str | None) -> None:
        """We hold the OS lock; refuse if the file still names a process that may be alive."""
        if owner is None:
            return  # a fresh file
        if not isinstance(owner, dict):
            warnings.warn(
                f"replacing the unreadable lock file {self.path} ({owner!r})",
                RuntimeWarning,
                stacklevel=5,
            )
            return
        pid, host = owner.get("pid"), owner.get("host")
        if host != socket.gethostname():
            raise DirectoryLockedError(
                self._held_by(owner, "may be in use")
                + f". This host ({socket.gethostname()}) cannot tell whether that process still "
                f"runs; if it does not, delete {self.path} and start again"
            )
        if pid != os.getpid() and _alive(pid, owner.get("start")):
            raise DirectoryLockedError(
                self._held_by(owner, "is in use")
                + f". That process runs but holds no OS lock on the file (a file system without "
                f"flock?); if it is not writing here, delete {self.path} and start again"
            )
        warnings.warn(
            f"taking over the stale lock of checkpoint_dir {self.directory}: it names pid {pid} "
            f"on this host ({host}), which no longer runs (killed?)",
            RuntimeWarning,
            stacklevel=5,
        )

    def release(self) -> None:
        """Remove the lock file and drop the OS lock (no-op in a forked child, or if not held)."""
        if self._fd is None or os.getpid() != self._pid:
            return
        try:
            os.unlink(self.path)
        except OSError:
            with contextlib.suppress(OSError):  # cannot remove it: say that nobody owns it
                os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None
        self._held.discard(str(self.path))


# --- orbax's own reports of failures that the Checkpointer reports itself -----------------------


class _OrbaxErrors(logging.Filter):
    """Drops orbax's ERROR records (tracebacks of a failed read or write) from absl's logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and f"{os.sep}orbax{os.sep}" in record.pathname)


_ORBAX_ERRORS = _OrbaxErrors()
_CLOSED_LOOP = "Event loop is closed"
_quiet_users = 0
_previous_unraisablehook: Any = None


def _drop_closed_loop(unraisable: Any) -> None:
    # After a failed read, orbax closes its event loop while tensorstore still has reads in
    # flight; their callbacks then raise "Event loop is closed" in tensorstore's threads.
    exc = unraisable.exc_value
    if unraisable.object is None and isinstance(exc, RuntimeError) and str(exc) == _CLOSED_LOOP:
        return
    (_previous_unraisablehook or sys.__unraisablehook__)(unraisable)


def _quiet_orbax(on: bool) -> None:
    """Silence orbax's duplicate failure reports while any Checkpointer is open."""
    global _quiet_users, _previous_unraisablehook
    absl_logger = logging.getLogger("absl")
    if on:
        _quiet_users += 1
        if _quiet_users == 1:
            _previous_unraisablehook = sys.unraisablehook
            sys.unraisablehook = _drop_closed_loop
            absl_logger.addFilter(_ORBAX_ERRORS)
        return
    _quiet_users -= 1
    if _quiet_users == 0:
        if sys.unraisablehook is _drop_closed_loop:
            sys.unraisablehook = _previous_unraisablehook
        _previous_unraisablehook = None
        absl_logger.removeFilter(_ORBAX_ERRORS)


def _release(lock: _DirectoryLock) -> None:
    lock.release()
    _quiet_orbax(False)


# --- the directory ---------------------------------------------------------------------------


def _directory(directory: Any) -> Path:
    """Check ``checkpoint_dir``, create it if missing, and return it as an absolute path."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint_dir must be a str or os.PathLike; got {type(directory).__name__}"
        )
    text = os.fsdecode(os.fspath(directory))
    if text == "":
        raise ValueError(
            "checkpoint_dir is empty; it would write into the current directory. Name a "
            "directory, e.g. checkpoint_dir='runs/first'"
        )
    path = Path(text).absolute()
    if path.is_symlink() and not path.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            f"checkpoint_dir {path} is a symbolic link to {os.readlink(path)}, which does not "
            "exist; create that directory or pass another checkpoint_dir",
        )
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"checkpoint_dir {path} exists and is not a directory"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(
            err.errno,
            f"checkpoint_dir {path} cannot be created ({err.strerror}); check that its parent "
            "exists and is writable (a dangling symbolic link in the path gives this too)",
        ) from err
    _refuse_old_layout(path)
    return path


def _refuse_old_layout(path: Path) -> None:
    """Format 1 kept orbax's numbered folders at the top level of ``checkpoint_dir``."""
    for entry in sorted(path.iterdir()):
        if not (entry.name.isdigit() and (entry / "_CHECKPOINT_METADATA").is_file()):
            continue
        try:
            fmt = json.loads((entry / "meta" / "metadata").read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt == FORMAT_VERSION and path.name == CHECKPOINTS_SUBDIR:
            raise ValueError(
                f"checkpoint_dir {path} is the checkpoints folder of a run; pass its parent "
                f"{path.parent}"
            )
        raise ValueError(
            f"checkpoint_dir {path} holds orbax checkpoints at its top level ({entry.name}/): "
            f"the layout of an older gdjax (checkpoint format {fmt or 1}) or of another program. "
            f"This version (format {FORMAT_VERSION}) does not resume them: pass another "
            "checkpoint_dir, or delete them to start afresh"
        )


def _json_array(value: Any) -> Any:
    """NumPy and JAX scalars and arrays in a fingerprint, as JSON numbers and lists."""
    if isinstance(value, np.generic) or hasattr(value, "__array__"):
        return np.asarray(value).tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _arrays_digest(leaves: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for leaf in leaves:
        h.update(str((leaf.shape, leaf.dtype.str)).encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def _layout(leaves: list[np.ndarray]) -> list[str]:
    return [f"{tuple(x.shape)} {x.dtype}" for x in leaves]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _errno(err: BaseException) -> int:
    """The errno behind a failed write: OSError's, tensorstore's ``os_error_code``, or EIO."""
    if isinstance(err, OSError) and err.errno:
        return err.errno
    found = re.search(r"os_error_code='?(\d+)", str(err))
    if found:
        return int(found.group(1))
    return errno.ENOSPC if "RESOURCE_EXHAUSTED" in str(err) else errno.EIO


class Checkpointer:
    """Saves and restores one run's checkpoints in ``directory`` (orbax ``CheckpointManager``).

    Opening checks the directory and takes its lock (see the module's docstring); ``close``
    releases it (the kernel releases it if the process dies, and the next opener takes the
    stale lock over with a warning). Usable as a context manager.

    Args:
        directory: Where the checkpoints live (created if missing).
        keep: How many of the most recent checkpoints to keep.
        fingerprint: JSON-able description of the run (shapes, settings, hyperparameter values,
            data and loss fingerprints; NumPy/JAX scalars and arrays become numbers and lists);
            a directory holding a run with another fingerprint is refused with ``ValueError``
            naming the differing fields.

    Raises:
        TypeError: ``directory`` is not a path, or ``fingerprint`` is not JSON-able.
        ValueError: ``directory`` is ``""``, or holds checkpoints of the older layout.
        OSError: ``directory`` cannot be created or written (the message names it).
        DirectoryLockedError: another live Checkpointer has ``directory`` open.

    Examples:
        >>> import tempfile, numpy as np
        >>> from gdjax.train.checkpoint import Checkpointer
        >>> folder = tempfile.mkdtemp()
        >>> with Checkpointer(folder, keep=2, fingerprint={"lr": 0.1}) as ckpt:
        ...     ckpt.save(1, {"w": np.ones(2)}, {"loss": [np.float32(0.5)]})
        >>> with Checkpointer(folder, keep=2, fingerprint={"lr": 0.1}) as ckpt:
        ...     state, history = ckpt.restore({"w": np.zeros(2)})
        >>> state["w"].tolist(), [float(v) for v in history["loss"]]
        ([1.0, 1.0], [0.5])
    """

    def __init__(self, directory: str | os.PathLike, keep: int, fingerprint: dict) -> None:
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"keep must be an int >= 1; got {keep!r}")
        try:
            self.fingerprint = json.loads(json.dumps(fingerprint, default=_json_array))
        except (TypeError, ValueError) as err:
            raise TypeError(f"fingerprint must be JSON-serializable: {err}") from err
        self.directory = _directory(directory)
        self.checkpoints = self.directory / CHECKPOINTS_SUBDIR
        self._manager: Any = None
        self._last_saved: int | None = None
        self._corrupt: set[int] = set()  # steps skipped by restore, rewritten when reached
        lock = _DirectoryLock(self.directory)
        if jax.process_index() == 0:  # one owner per run: several processes share a directory
            lock.acquire()
        _quiet_orbax(True)
        self._release = weakref.finalize(self, _release, lock)
        try:
            self._check_writable()
            self._warn_unfinished()
            import orbax.checkpoint as ocp  # imported lazily: orbax is slow to import

            self._ocp = ocp
            options = ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=False, cleanup_tmp_directories=True
            )
            self._manager = ocp.CheckpointManager(self.checkpoints, options=options)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        probe = self.checkpoints / f".write-probe-{os.getpid()}"
        try:
            self.checkpoints.mkdir(exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"gdjax")
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
        except OSError as err:
            raise OSError(
                err.errno,
                f"checkpoint_dir {self.directory} is not writable ({err.strerror} for "
                f"{err.filename or self.checkpoints}): no checkpoint could be saved; pass a "
                "writable directory",
            ) from err

    def _check_open(self) -> None:
        if not self._release.alive:
            raise RuntimeError(f"the Checkpointer of {self.directory} is closed")

    def save(self, step: int, state: Any, history: dict[str, list]) -> None:
        """Write a checkpoint for global ``step`` (no-op if that step is already saved).

        Raises:
            OSError: The write failed (e.g. a full disk); the message names the directory, and
                the previous checkpoint is intact, so the run can resume from it.
        """
        self._check_open()
        if step == self._last_saved:
            return
        if step in self._manager.all_steps():
            if step not in self._corrupt:
                return
            self._manager.delete(step)  # replace the damaged copy of this step
            self._corrupt.discard(step)
        leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
        body = json.dumps(
            {
                "format": FORMAT_VERSION,
                "step": int(step),
                "fingerprint": self.fingerprint,
                # float32 -> Python float -> JSON repr round-trips exactly; NaN/inf too
                "history": {k: [np.asarray(v).tolist() for v in vs] for k, vs in history.items()},
                "history_dtypes": {
                    k: str(np.asarray(vs[0]).dtype) for k, vs in history.items() if vs
                },
                "leaves": _layout(leaves),
                "arrays_sha256": _arrays_digest(leaves),
            }
        )
        meta = {"format": FORMAT_VERSION, "body": body, "sha256": _sha256(body)}
        ocp = self._ocp
        arrays = {f"{i:05d}": leaf for i, leaf in enumerate(leaves)}
        args = ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        try:
            # force: orbax would silently skip a step below one already on disk (a checkpoint
            # skipped as corrupt); saved steps are appended, so its garbage collection keeps them
            self._manager.save(step, args=args, force=True)
            self._manager.wait_until_finished()
        except Exception as err:
            self._clean_failed_save(step)
            previous = (
                f"The previous checkpoint (step {self._last_saved}) is intact"
                if self._last_saved is not None
                else "No earlier checkpoint of this run was written"
            )
            raise OSError(
                _errno(err),
                f"could not write the checkpoint of step {step} to checkpoint_dir "
                f"{self.directory}: {err}. {previous}; fix the cause (e.g. free disk space) and "
                "run again to resume",
            ) from err
        self._last_saved = step

    def _clean_failed_save(self, step: int) -> None:
        for tmp in self.checkpoints.glob(f"{step}{UNFINISHED_MARK}*"):
            shutil.rmtree(tmp, ignore_errors=True)  # frees the space a full disk needs
        with contextlib.suppress(Exception):  # best effort; the error being raised says more
            self._manager.reload()

    def restore(self, like: Any) -> tuple[Any, dict[str, list]] | None:
        """Load the newest valid checkpoint, shaped like ``like``; ``None`` if there is none.

        Raises:
            ValueError: The directory holds another run (the message names each differing
                field of the fingerprint, or of the state's layout), or checkpoints of a newer
                format. The Checkpointer is closed (its lock released) before raising.
        """
        self._check_open()
        like_leaves, treedef = jax.tree.flatten(like)
        like_arrays = [np.asarray(x) for x in like_leaves]
        target = {f"{i:05d}": a for i, a in enumerate(like_arrays)}
        for step in sorted(self._manager.all_steps(), reverse=True):
            body = self._read_body(step)
            if body is None:
                continue
            self._check_same_run(body, like_arrays)
            try:
                arrays = self._manager.restore(
                    step,
                    args=self._ocp.args.Composite(state=self._ocp.args.StandardRestore(target)),
                )["state"]
                leaves = [np.asarray(arrays[k]) for k in sorted(target)]
            except Exception as err:  # any failure to read is damage
                self._warn(step, f"unreadable arrays ({type(err).__name__}: {err})")
                continue
            if _arrays_digest(leaves) != body["arrays_sha256"]:
                self._warn(step, "checksum mismatch (the array files were damaged)")
                continue
            try:
                history = _history(body)
            except (TypeError, ValueError, KeyError) as err:
                self._warn(step, f"unusable history ({type(err).__name__}: {err})")
                continue
            self._last_saved = step
            return jax.tree.unflatten(treedef, leaves), history
        return None

    def _read_body(self, step: int) -> dict | None:
        """The checksummed metadata of ``step``, or ``None`` after a warning if damaged."""
        ocp = self._ocp
        try:
            meta = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
            meta = meta["meta"]
        except Exception as err:  # any failure to read is damage
            self._warn(step, f"unreadable metadata ({type(err).__name__}: {err})")
            return None
        fmt = meta.get("format") if isinstance(meta, dict) else None
        if isinstance(fmt, int) and fmt > FORMAT_VERSION:
            self.close()
            raise ValueError(
                f"checkpoint_dir {self.directory} holds checkpoints of format {fmt}, written by "
                f"a newer gdjax; this one reads format {FORMAT_VERSION}: upgrade gdjax or pass "
                "another checkpoint_dir"
            )
        text = meta.get("body") if fmt == FORMAT_VERSION else None
        if not isinstance(text, str) or _sha256(text) != meta.get("sha256"):
            self._warn(step, "metadata checksum mismatch (the metadata was damaged or edited)")
            return None
        body = json.loads(text)
        if not isinstance(body, dict) or any(k not in body for k in _BODY_KEYS):
            self._warn(step, "incomplete metadata")
            return None
        if body["step"] != step:
            self._warn(step, f"its metadata belongs to step {body['step']}")
            return None
        return body

    def _check_same_run(self, body: dict, like_arrays: list[np.ndarray]) -> None:
        diff = describe_mismatch(body["fingerprint"], self.fingerprint)
        if diff is None:
            diff = describe_mismatch(
                {"state layout": body["leaves"]}, {"state layout": _layout(like_arrays)}
            )
        if diff is not None:
            self.close()
            raise ValueError(
                f"checkpoint_dir {self.directory} holds another run, not resumed: {diff}. To "
                f"start afresh pass another checkpoint_dir, or delete {self.directory}; to "
                "resume the saved run, call again with the settings and data it was started with"
            )

    def _warn_unfinished(self) -> None:
        """Warn about temporary directories left by a save that was killed (orbax removes them)."""
        for path in sorted(self.checkpoints.glob(f"*{UNFINISHED_MARK}*")):
            warnings.warn(
                f"ignoring unfinished checkpoint {path} (a save was interrupted); it is removed "
                "and the run resumes from the newest complete checkpoint",
                RuntimeWarning,
                stacklevel=4,
            )

    def _warn(self, step: int, why: str) -> None:
        self._corrupt.add(step)
        warnings.warn(
            f"skipping corrupt checkpoint {self.checkpoints / str(step)}: {why}; "
            "falling back to the previous one",
            RuntimeWarning,
            stacklevel=4,
        )

    def close(self) -> None:
        """Release orbax's resources and the directory's lock (idempotent)."""
        manager, self._manager = self._manager, None
        try:
            if manager is not None:
                manager.close()
        finally:
            self._release()


def _history(body: dict) -> dict[str, list]:
    dtypes = body["history_dtypes"]
    return {
        k: [np.asarray(v, dtype=dtypes[k]) for v in vals] for k, vals in body["history"].items()
    }
