"""Checkpoints of a training run with orbax: atomic saves, verified restores.

A checkpoint holds the whole :class:`~gdjax.train.epoch.TrainState` (parameters, optimizer and
model state, epoch, step, position within the epoch, the epoch's running sums, the stopping
rules' state) as numbered leaves, plus JSON metadata: the history so far, a fingerprint of the
run's shapes, and a SHA-256 of every saved byte. orbax writes each checkpoint into a temporary
directory and renames it when complete, so a run killed mid-save leaves the previous checkpoint
intact (the temporary directory it leaves is reported and removed); the checksum catches a
checkpoint that was completed and later damaged, and a checkpoint with missing files fails to
load: either is skipped with a warning for the previous one, and rewritten when the resumed run
reaches its step again.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

FORMAT_VERSION = 1
#: Part of the name of orbax's temporary directory for a save in progress.
UNFINISHED_MARK = ".orbax-checkpoint-tmp"


def _digest(leaves: list[np.ndarray], history_json: str) -> str:
    h = hashlib.sha256()
    for leaf in leaves:
        h.update(str((leaf.shape, leaf.dtype.str)).encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    h.update(history_json.encode())
    return h.hexdigest()


def _history_to_json(history: dict[str, list]) -> str:
    # float32 -> Python float -> JSON repr round-trips exactly; NaN/inf use JSON's extension.
    return json.dumps({k: [np.asarray(v).tolist() for v in vals] for k, vals in history.items()})


def _history_from_json(text: str, dtypes: dict[str, Any]) -> dict[str, list]:
    raw = json.loads(text)
    return {
        k: [np.asarray(v, dtype=dtypes.get(k, np.float32)) for v in vals] for k, vals in raw.items()
    }


def describe_mismatch(saved: dict, current: dict) -> str | None:
    """The first difference between two run fingerprints, in words, or ``None``."""
    for field in current:
        if saved.get(field) != current[field]:
            a, b = saved.get(field), current[field]
            if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                for x, y in zip(a, b, strict=True):
                    if x != y:
                        return f"{field}: checkpoint has {x}, this run has {y}"
            return f"{field}: checkpoint has {a}, this run has {b}"
    return None


class Checkpointer:
    """Saves and restores one run's checkpoints in ``directory`` (orbax ``CheckpointManager``).

    Args:
        directory: Where the checkpoints live (created if missing).
        keep: How many of the most recent checkpoints to keep.
        fingerprint: JSON-able description of the run's shapes; a directory holding a run with
            another fingerprint is refused with ``ValueError``.
    """

    def __init__(self, directory: str | os.PathLike, keep: int, fingerprint: dict) -> None:
        import orbax.checkpoint as ocp  # imported lazily: orbax is slow to import

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        self.fingerprint = json.loads(json.dumps(fingerprint))
        self._warn_unfinished()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._last_saved: int | None = None
        self._corrupt: set[int] = set()  # steps skipped by restore, rewritten when reached

    def save(self, step: int, state: Any, history: dict[str, list]) -> None:
        """Write a checkpoint for global ``step`` (no-op if that step is already saved)."""
        if step == self._last_saved:
            return
        if step in self._manager.all_steps():
            if step not in self._corrupt:
                return
            self._manager.delete(step)  # replace the damaged copy of this step
            self._corrupt.discard(step)
        leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
        history_json = _history_to_json(history)
        meta = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "history": history_json,
            "history_dtypes": {k: str(np.asarray(v[0]).dtype) for k, v in history.items() if v},
            "checksum": _digest(leaves, history_json),
        }
        ocp = self._ocp
        arrays = {f"{i:05d}": leaf for i, leaf in enumerate(leaves)}
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            ),
        )
        self._manager.wait_until_finished()
        self._last_saved = step

    def restore(self, like: Any) -> tuple[Any, dict[str, list]] | None:
        """Load the newest valid checkpoint, shaped like ``like``; ``None`` if there is none.

        Raises:
            ValueError: The directory holds a run with other shapes or settings.
        """
        ocp = self._ocp
        like_leaves, treedef = jax.tree.flatten(like)
        target = {f"{i:05d}": np.asarray(x) for i, x in enumerate(like_leaves)}
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                meta = self._manager.restore(
                    step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
                )["meta"]
            except Exception as err:
                self._warn(step, f"unreadable metadata ({type(err).__name__}: {err})")
                continue
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
                self._warn(step, "missing or unknown metadata")
                continue
            diff = describe_mismatch(meta.get("fingerprint", {}), self.fingerprint)
            if diff is not None:
                raise ValueError(
                    f"checkpoint_dir {self.directory} holds a run with other shapes or settings "
                    f"({diff}); use another directory or delete it to start afresh"
                )
            try:
                arrays = self._manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
                )["state"]
                leaves = [np.asarray(arrays[k]) for k in sorted(target)]
            except Exception as err:
                self._warn(step, f"unreadable arrays ({type(err).__name__}: {err})")
                continue
            if _digest(leaves, meta["history"]) != meta.get("checksum"):
                self._warn(step, "checksum mismatch (the files were damaged)")
                continue
            history = _history_from_json(meta["history"], meta.get("history_dtypes", {}))
            self._last_saved = step
            return jax.tree.unflatten(treedef, leaves), history
        return None

    def _warn_unfinished(self) -> None:
        """Warn about temporary directories left by a save that was killed (orbax removes them)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob(f"*{UNFINISHED_MARK}*")):
            warnings.warn(
                f"ignoring unfinished checkpoint {path} (a save was interrupted); it is removed "
                "and the run resumes from the newest complete checkpoint",
                RuntimeWarning,
                stacklevel=4,
            )

    def _warn(self, step: int, why: str) -> None:
        self._corrupt.add(step)
        warnings.warn(
            f"skipping corrupt checkpoint {self.directory / str(step)}: {why}; "
            "falling back to the previous one",
            RuntimeWarning,
            stacklevel=3,
        )

    def close(self) -> None:
        """Release orbax's resources."""
        self._manager.close()
