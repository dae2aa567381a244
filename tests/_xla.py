"""XLA settings of the test processes, and of the subprocesses the tests start."""

from __future__ import annotations

import os

DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
OPT_LEVEL_FLAG = "--xla_backend_optimization_level"


def compile_for_tests() -> None:
    """Compile this process's XLA:CPU programs at LLVM -O1 unless ``XLA_FLAGS`` names a level.

    The suite checks what programs compute, not how fast they run, and compiling is most of
    its time: -O1 takes about 30% less of it than XLA's default. Not -O0: at -O0 XLA:CPU
    miscompiles here (``test_models.py::test_overfits_tiny_batch[cnn_bn]`` turns NaN). Set
    ``XLA_FLAGS=--xla_backend_optimization_level=2`` to run the suite at XLA's default.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if OPT_LEVEL_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {OPT_LEVEL_FLAG}=1".strip()


def xla_flags(devices: int | None = None) -> str:
    """This process's ``XLA_FLAGS`` for a subprocess, with ``devices`` simulated CPU devices
    (``None``: one, XLA's default)."""
    kept = [
        f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_COUNT_FLAG)
    ]
    if devices is not None:
        kept.append(f"{DEVICE_COUNT_FLAG}={devices}")
    return " ".join(kept)
