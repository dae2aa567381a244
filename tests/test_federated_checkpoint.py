"""Federated checkpoints: a run killed with SIGKILL resumes from its last round checkpoint and
ends with the bits of an uninterrupted run, running only the rounds that were left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gdjax.train.checkpoint import CHECKPOINTS_SUBDIR

HELPERS = Path(__file__).parent / "_federated_helpers"
sys.path.insert(0, str(HELPERS))
import ckpt_run  # noqa: E402


def _start(ckpt, out):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, str(HELPERS / "ckpt_run.py"), str(ckpt), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _saved(ckpt):
    steps = ckpt / CHECKPOINTS_SUBDIR  # orbax's folder inside the run's checkpoint directory
    return [p for p in steps.iterdir() if p.name.isdigit()] if steps.exists() else []


# a kill during a save leaves its temporary directory
@pytest.mark.filterwarnings("ignore:ignoring unfinished checkpoint:RuntimeWarning")
def test_sigkill_then_resume_runs_only_the_remaining_rounds_to_the_same_bits(tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    victim = _start(ckpt, out)
    deadline = time.time() + 180
    while len(_saved(ckpt)) < 2 and victim.poll() is None:
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.2)))  # land anywhere, saves too
    victim.send_signal(signal.SIGKILL)
    log = victim.communicate()[0].decode()[-3000:]
    assert victim.returncode == -signal.SIGKILL, log  # killed, not crashed
    assert not out.exists(), "the run finished before it could be killed"
    # a new run on the killed one's checkpoints, in this process: its program comes from the
    # persistent compilation cache the victim filled
    with pytest.warns(RuntimeWarning, match="taking over the stale lock"):
        resumed = ckpt_run.run(ckpt)
    reference = ckpt_run.run()  # uninterrupted, never checkpointed
    done = resumed.resumed_from
    assert done >= 2, "the second run started over instead of resuming"
    assert len(resumed.round_seconds) == ckpt_run.ROUNDS - done  # only the remaining rounds ran
    assert reference.resumed_from == 0 and len(reference.round_seconds) == ckpt_run.ROUNDS
    for k, v in reference.params.items():
        np.testing.assert_array_equal(resumed.params[k], v)
    assert set(resumed.history) == set(reference.history)
    for k, v in reference.history.items():
        np.testing.assert_array_equal(resumed.history[k], v, err_msg=k)
    assert len(_saved(ckpt)) <= 2  # keep_checkpoints=2
