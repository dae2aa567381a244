"""gdjax.tune.search resumes after a real SIGKILL from its last rung, not from the start."""

import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax import tune
from tests.test_tune import DATA, HALVING, loss, sgd

ROOT = Path(__file__).resolve().parents[1]

#: The child: the same search with a tune_dir; after the first rung's checkpoint it waits to be
#: killed (the parent sends SIGKILL while it is alive, mid-search).
CHILD = """
import sys, time
import jax.numpy as jnp
from gdjax import tune
from tests.test_tune import DATA, HALVING, loss, sgd

def wait_after_first_rung(info):
    if info["stage"] == 1:
        print("checkpointed", flush=True)
        time.sleep(300)

tune.search(loss, jnp.zeros(()), sgd, DATA, tune_dir=sys.argv[1],
            callback=wait_after_first_rung, **HALVING)
print("finished", flush=True)
"""


def test_search_killed_after_a_rung_resumes_there_with_identical_results(tmp_path):
    whole = tune.search(loss, jnp.zeros(()), sgd, DATA, **HALVING)
    tune_dir = tmp_path / "tune"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tune_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == "checkpointed", line + child.stderr.read()[-3000:]
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    assert [p.name for p in tune_dir.iterdir()] == ["tune-000001.npz"]

    with pytest.raises(ValueError, match=r"tune_dir .* holds a different search.*epochs"):
        tune.search(loss, jnp.zeros(()), sgd, DATA, tune_dir=tune_dir, **(HALVING | {"epochs": 8}))

    stages = []
    res = tune.search(
        loss, jnp.zeros(()), sgd, DATA, tune_dir=tune_dir, callback=stages.append, **HALVING
    )
    # resumed after rung 1: only rungs 2 and 3 trained here (3 members x 2 + 1 x 6 epochs)
    assert res.resumed_from == 1 and [s["stage"] for s in stages] == [2, 3]
    assert res.member_epochs == whole.member_epochs == 21 and res.member_epochs_here == 12
    assert res.rungs == whole.rungs
    for a, b in zip(res.trials, whole.trials, strict=True):
        assert (a.config, a.epochs, a.status) == (b.config, b.epochs, b.status)
        for key in b.history:
            np.testing.assert_array_equal(a.history[key], b.history[key])
    assert res.best.number == whole.best.number
    for x, y in zip(
        jax.tree.leaves(res.best_params), jax.tree.leaves(whole.best_params), strict=True
    ):
        np.testing.assert_array_equal(x, y)
