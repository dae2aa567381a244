"""Settings for the whole test run (tests, docstring examples and the docs' code blocks).

The suite compiles many small XLA programs and runs each only briefly, so compiling them
dominates its time. Without LLVM's optimizations they compile faster; the programs compute the
same operations (the tests check values, never speed). Turning off XLA:CPU's newer fusion
emitters as well would compile faster still, but the two together miscompiled a float64
convolution gradient in jax 0.10.2 (tests/test_models.py's finite-difference check fails), so
only the first is used.

The flag applies to this process only: JAX reads ``XLA_FLAGS`` once, when it starts its CPU
backend, which happens here; the variable is then restored, so the scripts the tests run in
subprocesses (benchmarks, studies, several processes), which train for longer, run as users
run them.
"""

import os

FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0"

_saved = os.environ.get("XLA_FLAGS")
os.environ["XLA_FLAGS"] = f"{_saved or ''} {FAST_COMPILE_FLAGS}".strip()
import jax  # noqa: E402

jax.devices()  # the CPU backend starts now, with the flag
if _saved is None:
    del os.environ["XLA_FLAGS"]
else:
    os.environ["XLA_FLAGS"] = _saved
