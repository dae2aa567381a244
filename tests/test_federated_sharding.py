"""The round's clients split over 4 simulated CPU devices: each device trains its share of the
clients, and the result equals one device's."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests._xla import xla_flags

HELPER = Path(__file__).parent / "_federated_helpers" / "sharded_run.py"


def test_four_device_mesh_splits_the_clients_and_matches_one_device(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(devices=4))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    out = tmp_path / "r.npz"
    proc = subprocess.run(
        [sys.executable, str(HELPER), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    assert int(r["n_dev"]) == 4  # the global parameters live on all four devices
    # inside the vmapped local step the clients' batches are split over the mesh axis
    # (4 clients per round, one per device); on one device they are whole
    assert r["seen_sharded"].tolist() == [[4, False]]
    assert r["seen_single"].tolist() == [[1, True]]
    np.testing.assert_array_equal(r["s_clients"], r["one_clients"])
    for k in ("w", "b"):
        np.testing.assert_allclose(r[f"s_{k}"], r[f"1_{k}"], rtol=1e-5, atol=1e-6)
