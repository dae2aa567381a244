"""Settings for the whole test run (tests, docstring examples and the docs' code blocks).

The suite compiles many small XLA programs and runs each only briefly, so compiling them
dominates its time. Without LLVM's optimizations they compile faster; the programs compute the
same operations (the tests check values, never speed). Turning off XLA:CPU's newer fusion
emitters as well would compile faster still, but the two together miscompiled a float64
convolution gradient in jax 0.10.2 (tests/test_models.py's finite-difference check fails), so
only the first is used. The flags are set before JAX starts its CPU backend, and the test's subprocesses
(benchmark and study scripts, multi-process runs) inherit them.
"""

import os

FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE_FLAGS}".strip()
