"""Two JAX processes on this machine (CPU collectives over gloo), one device each, train
data-parallel: each streams only its rows of every batch, both end with the parameters one
process trains alone, the checkpoints are written once (by process 0) and both resume from
them."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

import gdjax
from gdjax.data import write_memmap
from gdjax.train.checkpoint import CHECKPOINTS_SUBDIR
from tests._xla import xla_flags

HELPERS = Path(__file__).parent / "_train_helpers"
sys.path.insert(0, str(HELPERS))
import multihost_run as mh  # noqa: E402

ROOT = Path(__file__).parents[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(70, 6)).astype(np.float32)  # 4 batches of 16 and a remainder of 6
Y = (X @ rng.normal(size=(6, 3))).argmax(-1).astype(np.int32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one_and_share_checkpoints(tmp_path):
    data = write_memmap(tmp_path / "data", (X, Y))
    ckpt, port = tmp_path / "ckpt", _free_port()
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=path, XLA_FLAGS=xla_flags())
    args = [str(port), str(data), str(ckpt)]

    def out(i):
        return str(tmp_path / f"out{i}.npz")

    procs = [
        subprocess.Popen(
            [sys.executable, str(HELPERS / "multihost_run.py"), str(i), "2", *args, out(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    # meanwhile, the same run in one process, in memory
    key = jax.random.key(0, impl=mh.KEY_IMPL)
    single = gdjax.fit(
        mh.loss_fn, mh.PARAMS, gdjax.adam(0.05), (X, Y), epochs=3, key=key, **mh.OPTIONS
    )
    for p in procs:
        log = p.communicate(timeout=300)[0].decode(errors="replace")
        assert p.returncode == 0, log[-3000:]
    outs = [np.load(tmp_path / f"out{i}.npz") for i in range(2)]
    for r in outs:
        assert int(r["devices"]) == 2
        for k in ("w", "b"):
            np.testing.assert_allclose(r[f"p_{k}"], single.params[k], rtol=1e-5, atol=1e-6)
        for k in ("loss", "step_loss"):
            np.testing.assert_allclose(r[f"h_{k}"], single.history[k], rtol=1e-5, atol=1e-6)
        # each process read half of every epoch's 70 rows (8 of each batch of 16, 3 of the
        # remainder of 6), plus 20 to learn the layout and fingerprint the data, per call
        assert int(r["rows_first"]) == 20 + 2 * 35 and int(r["rows_total"]) == 40 + 3 * 35
        assert int(r["steps_first"]) == 10  # the first call ran 2 epochs; the second resumed
    # written once: orbax's array store of process 0 only, in every checkpoint
    steps = sorted(int(p.name) for p in (ckpt / CHECKPOINTS_SUBDIR).iterdir() if p.name.isdigit())
    assert steps[-1] == 15
    for step in steps:
        stores = sorted(
            p.name
            for p in (ckpt / CHECKPOINTS_SUBDIR / str(step) / "state").glob("ocdbt.process_*")
        )
        assert stores == ["ocdbt.process_0"], stores
