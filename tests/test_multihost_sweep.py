"""A sweep's members split over 4 simulated devices (and members x batches over 2 x 2): each
device holds its members' state, and every member ends as on one device."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gdjax
from tests._xla import xla_flags

HELPER = Path(__file__).parent / "_train_helpers" / "sweep_sharded_run.py"
ROOT = Path(__file__).parents[1]


def test_sweep_members_split_over_devices(tmp_path):
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=xla_flags(devices=4),
        PYTHONPATH=path,  # the checkout under test, not whichever gdjax is installed
    )
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
    # (devices the state lives on, members each device holds)
    assert r["seen_members"].tolist() == [[4, 1]]
    assert r["seen_members_data"].tolist() == [[4, 2]]
    assert r["seen_one"].tolist() == [[1, 4]]
    for k in ("w", "b"):
        np.testing.assert_array_equal(r[f"members_{k}"], r[f"one_{k}"])
        np.testing.assert_allclose(r[f"members_data_{k}"], r[f"one_{k}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["members_data_loss"], r["one_loss"], rtol=1e-5, atol=1e-6)
    assert len({float(v) for v in r["one_w"][:, 0, 0]}) == 4  # the members differ


def test_sweep_mesh_arguments_are_checked():
    import jax

    x, y = np.zeros((8, 2), np.float32), np.zeros(8, np.float32)
    mesh = jax.make_mesh((1,), ("m",))
    kw = dict(hparams={"lr": [0.1, 0.2]}, batch_size=4, epochs=1)
    args = (lambda p, b: ((b[0] @ p - b[1]) ** 2).mean(), np.zeros(2, np.float32))
    opt = lambda hp: gdjax.sgd(hp["lr"])  # noqa: E731
    with pytest.raises(ValueError, match="is not an axis of the mesh"):
        gdjax.sweep(*args, opt, (x, y), mesh=mesh, member_axis="k", **kw)
    with pytest.raises(ValueError, match="data_axis and member_axis are both 'm'"):
        gdjax.sweep(*args, opt, (x, y), mesh=mesh, data_axis="m", **kw)
    with pytest.raises(ValueError, match="member_axis and data_axis need a mesh"):
        gdjax.sweep(*args, opt, (x, y), data_axis="m", **kw)
