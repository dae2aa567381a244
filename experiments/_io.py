"""Writing results: atomic files, JSON without NaN, machine description."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A reader sees either the old file or the complete new one, never a half-written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(value: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays to plain Python; NaN and ±inf become ``None``.

    ``None`` in a result JSON therefore means "not finite" (a diverged run), which keeps the
    files strict JSON.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__array__") and not isinstance(value, str):
        arr = np.asarray(value)
        return to_jsonable(arr.tolist()) if arr.ndim else to_jsonable(arr.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a result JSON: {value!r}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented, strict JSON (no NaN tokens), atomically."""
    text = json.dumps(to_jsonable(payload), indent=1, allow_nan=False)
    atomic_write_text(path, text + "\n")


def write_figure(path: Path, fig: Any) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, usable cores, accelerators JAX sees, and library versions."""
    import jax

    import gdjax

    devices = jax.devices()
    accelerators = sorted({d.device_kind for d in devices if d.platform != "cpu"})
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "accelerators": accelerators,
        "jax_backend": jax.default_backend(),
        "gdjax": gdjax.__version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    """One line: ``AMD EPYC, 2 cores; no GPU`` or with the accelerator names."""
    acc = ", ".join(info["accelerators"]) if info["accelerators"] else "no GPU"
    return f"{info['cpu']}, {info['cores']} cores; {acc}"
