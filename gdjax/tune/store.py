"""A search's checkpoints in ``tune_dir``: one file per stage (rung or PBT interval).

``tune_dir/tune-<stage>.npz`` holds the arrays of the search at the end of a stage (the live
programs' training states, member hyperparameters and keys, every trial's history, the best
parameters) and one JSON record ``meta`` (the position in the plan, the trials' configurations
and statuses, random generator states, compute and time spent, and the search's fingerprint).
A file is written under a temporary name, flushed to disk and renamed, so a search killed
mid-save leaves the previous stage readable; the two newest stages are kept. A file that
cannot be read (truncated, corrupted: the zip format checks a CRC of every array) is skipped
with a warning for the one before it.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_NAME = re.compile(r"^tune-(\d{6})\.npz$")
KEEP = 2


def _stages(directory: Path) -> list[tuple[int, Path]]:
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save(directory: Path, stage: int, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write stage ``stage`` atomically and drop all but the newest ``KEEP`` stages."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    path = directory / f"tune-{stage:06d}.npz"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tune-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for _, old in _stages(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def load(directory: Path) -> tuple[dict, dict[str, np.ndarray]] | None:
    """The newest readable stage as ``(meta, arrays)``, or ``None`` when there is none."""
    for stage, path in reversed(_stages(directory)):
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            warnings.warn(
                f"tune_dir {directory}: stage {stage} ({path.name}) is unreadable ({err}); "
                "trying the one before it",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        return meta, arrays
    return None


def differences(saved: dict, current: dict) -> list[str]:
    """The fields of two fingerprints that differ, described."""
    out = []
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            out.append(f"{key}: saved {saved.get(key)!r}, now {current.get(key)!r}")
    return out


def jsonable(value: Any) -> Any:
    """Plain Python for a JSON record (NumPy scalars become numbers)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
