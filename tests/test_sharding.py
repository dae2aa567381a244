"""Data-parallel fit over 4 simulated CPU devices (explicit and auto meshes): batches split over
the devices, results equal to one device."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests._xla import xla_flags

HELPER = Path(__file__).parent / "_train_helpers" / "sharded_run.py"


def test_four_device_mesh_matches_one_device(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(devices=4))
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
    assert int(r["n_dev"]) == 4  # parameters live on all four devices
    # inside the compiled step, as XLA laid it out: (rows, rows per device, devices). Full
    # batches of 16 are split 4 rows per device; the remainder of 6 and the validation batch of
    # 30 do not divide by 4 and stay whole on every device.
    for mesh in ("explicit", "auto"):
        assert r[f"seen_{mesh}"].tolist() == [[6, 6, 4], [16, 4, 4], [30, 30, 4]], mesh
    assert r["seen_single"].tolist() == [[6, 6, 1], [16, 16, 1], [30, 30, 1]]
    for k in ("w", "b"):
        np.testing.assert_allclose(r[f"s_{k}"], r[f"1_{k}"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r[f"a_{k}"], r[f"1_{k}"], rtol=1e-5, atol=1e-6)
    for k in ("loss", "val_loss", "val_accuracy", "step_loss"):
        np.testing.assert_allclose(r[f"sh_{k}"], r[f"1h_{k}"], rtol=1e-5, atol=1e-6)
    assert r["sh_step_loss"].shape == (3, 5)  # 4 batches of 16 and a remainder of 6
