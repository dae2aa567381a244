"""pytest configuration shared by the test modules."""

# Scripts the tests run in subprocesses: not test modules, and two share a base name.
collect_ignore_glob = ["_train_helpers/*", "_federated_helpers/*"]
