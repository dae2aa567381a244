"""pytest configuration shared by the test modules."""

from tests._xla import compile_for_tests

compile_for_tests()  # before any test starts JAX's backend

# Scripts the tests run in subprocesses: not test modules, and two share a base name.
collect_ignore_glob = ["_train_helpers/*", "_federated_helpers/*"]
