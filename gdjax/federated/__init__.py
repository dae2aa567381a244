"""Federated learning: gradient descent across many clients that keep their data.

``gdjax.federated.fit`` runs FedSGD, FedAvg, FedProx, FedOpt (FedAvgM, FedAdam, FedYogi,
FedAdagrad: any optax transformation on the server) and DP-FedAvg over simulated clients, each
round one compiled program that trains all the round's clients at once. ``partition`` splits a
data set into clients (IID, label shards, Dirichlet). ``gdjax.federated.flower`` (optional
extra ``federated``) runs the same loss and optimizers on a real Flower federation.

The conventions (keys, shuffles, batches) are ``gdjax.fit``'s: in round ``t`` client ``k``
trains exactly as ``gdjax.fit(..., epochs=local_epochs, key=client_key(key, t, k))`` would.
"""

from gdjax.federated import partition
from gdjax.federated._fit import FederatedResult, fit
from gdjax.federated._round import client_key
from gdjax.federated._server import DPConfig

__all__ = ["DPConfig", "FederatedResult", "client_key", "fit", "partition"]
