"""Federated checkpoints: a run killed with SIGKILL resumes from its last round checkpoint and
ends with the bits of an uninterrupted run, running only the rounds that were left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

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


def test_sigkill_then_resume_runs_only_the_remaining_rounds_to_the_same_bits(tmp_path):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    victim = _start(ckpt, out)
    deadline = time.time() + 180
    while len(_saved(ckpt)) < 2 and victim.poll() is None:
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.2)))  # land anywhere, saves too
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not out.exists(), "the run finished before it could be killed"
    resumed = _start(ckpt, out)
    reference = ckpt_run.run()  # uninterrupted, in this process, meanwhile
    log = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, log[-3000:]
    r = np.load(out)
    done = int(r["resumed_from"])
    assert done >= 2, "the second process started over instead of resuming"
    assert int(r["rounds_here"]) == ckpt_run.ROUNDS - done  # only the remaining rounds ran
    for k, v in reference.params.items():
        np.testing.assert_array_equal(r[f"p_{k}"], v)
    assert {f"h_{k}" for k in reference.history} == {k for k in r.files if k.startswith("h_")}
    for k, v in reference.history.items():
        np.testing.assert_array_equal(r[f"h_{k}"], v, err_msg=k)
    assert len(_saved(ckpt)) <= 2  # keep_checkpoints=2
