"""The Flower adapter on a real federation: in another process, a Flower gRPC server and two
clients (one gRPC connection each) train the same loss as gdjax.federated.fit in this one, with
gdjax's server optimizer."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

import gdjax

HELPERS = Path(__file__).parent / "_federated_helpers"
sys.path.insert(0, str(HELPERS))
import flower_run  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flower_federation_matches_the_simulation(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", FLWR_TELEMETRY_ENABLED="0")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    port, out = str(_free_port()), tmp_path / "server.npz"
    federation = subprocess.Popen(
        [sys.executable, str(HELPERS / "flower_run.py"), port, str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # the same settings in this process, while the federation starts up
    loss, params, clients, settings, client_opt, server_opt = flower_run.problem()
    sim = gdjax.federated.fit(
        loss, params, client_opt, server_opt, clients, rounds=flower_run.ROUNDS, **settings
    )
    log = federation.communicate(timeout=240)[0].decode()
    assert federation.returncode == 0, log[-3000:]
    server = np.load(out)
    # Three rounds over gRPC in another process give this process's FedAdam parameters
    # (whose server step test_federated.py checks against optax.adam).
    for k in ("w", "b"):
        np.testing.assert_allclose(server[k], sim.params[k], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(server["loss"], sim.history["loss"], rtol=1e-5)
    assert server["clients"].tolist() == [[0, 1]] * flower_run.ROUNDS
    assert server["loss"][-1] < server["loss"][0]
