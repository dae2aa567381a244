"""A Flower federation of gdjax clients over gRPC on this machine: a Flower server (in the main
thread, which its signal handlers need) and two clients, one thread and gRPC connection each.

Usage: python flower_run.py PORT OUT_NPZ

The test imports :func:`problem` to run the same settings in-process with
``gdjax.federated.fit``.
"""

import os
import socket
import sys
import threading
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax

ROUNDS = 3


def problem():
    """Loss, initial parameters, two clients of unequal size, and the shared settings."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(36, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 3))).argmax(-1).astype(np.int32)
    clients = gdjax.federated.partition.split((x, y), [np.arange(24), np.arange(24, 36)])
    params = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(3, np.float32)}

    def loss(p, batch):
        logits = batch[0] @ p["w"] + p["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    client = dict(local_epochs=2, batch_size=6, key=jax.random.key(3))
    return loss, params, clients, client, gdjax.sgd(0.2), gdjax.adam(0.05)


def main(port: str, out: str) -> None:
    from flwr.compat.client.app import start_client
    from flwr.compat.server.app import start_server
    from flwr.server import ServerConfig

    from gdjax.federated.flower import Client, ServerOptStrategy

    loss, params, clients, settings, client_opt, server_opt = problem()
    address = f"127.0.0.1:{port}"

    def serve(k: int) -> None:
        try:
            client = Client(loss, params, client_opt, clients[k], client_id=k, **settings)
            _wait_for(port)  # the legacy gRPC client gives up if the server is not listening yet
            start_client(server_address=address, client=client.to_client(), max_wait_time=120)
        except BaseException:
            traceback.print_exc()
            os._exit(1)  # the server would wait for this client forever

    threads = [threading.Thread(target=serve, args=(k,)) for k in range(len(clients))]
    for t in threads:
        t.start()
    strategy = ServerOptStrategy(params, server_opt, min_fit_clients=2, min_available_clients=2)
    start_server(server_address=address, config=ServerConfig(num_rounds=ROUNDS), strategy=strategy)
    for t in threads:
        t.join()
    np.savez(
        out,
        loss=np.asarray(strategy.history["loss"]),
        clients=np.asarray(strategy.history["clients"]),
        **{k: np.asarray(v) for k, v in strategy.params.items()},
    )


def _wait_for(port: str, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before gRPC threads start
    main(*sys.argv[1:])
