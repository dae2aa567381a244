"""Run a gdjax loss and optimizers on a real Flower federation (``pip install gdjax[federated]``).

:class:`Client` turns a loss, a client optimizer and one client's data into a Flower
``NumPyClient``: each ``fit`` request runs the same local training as
:func:`gdjax.federated.fit` (one compiled program). :class:`ServerOptStrategy` is Flower's
``FedAvg`` (sampling, messaging, failure handling) whose aggregation is gdjax's server step:
the example-weighted average update, then any gdjax or optax server optimizer (FedAvg with
``sgd(1.0)``, FedAdam with ``adam``...). With full participation, the same settings and key,
a Flower run gives :func:`gdjax.federated.fit`'s parameters up to floating-point rounding.

Parameters travel as the list of the pytree's leaves (``jax.tree.leaves`` order). Client ``i``
trains round ``r`` (Flower counts rounds from 1) with ``client_key(key, r - 1, i)``.

Both objects work wherever Flower takes a client and a strategy: ``start_client`` /
``start_server``, or a ``ClientApp(client_fn=...)`` and ``ServerApp(server_fn=...)`` run by a
SuperLink and SuperNodes (see the federated guide).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flwr.client import NumPyClient
from flwr.common import FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from gdjax.federated import _clients as cl
from gdjax.federated import _server
from gdjax.federated._checks import check_key, check_optimizer, positive_int, probe_loss
from gdjax.federated._local import local_train, make_plan
from gdjax.federated._round import client_key
from gdjax.train.loss_call import LossCall


def to_ndarrays(params: Any) -> list[np.ndarray]:
    """The parameters as Flower sends them: NumPy copies of the leaves, in tree order."""
    return [np.array(x) for x in jax.tree.leaves(params)]


def from_ndarrays(arrays: list[np.ndarray], like: Any) -> Any:
    """Rebuild parameters shaped like ``like`` from Flower's list of arrays (checked)."""
    leaves, treedef = jax.tree.flatten(like)
    if len(arrays) != len(leaves):
        raise ValueError(f"received {len(arrays)} arrays, the model has {len(leaves)} leaves")
    out = []
    for path, a, ref in zip(cl.leaf_paths(like), arrays, leaves, strict=True):
        a = np.asarray(a)
        if a.shape != np.shape(ref):
            raise ValueError(f"received params{path} of shape {a.shape}, expected {np.shape(ref)}")
        out.append(a.astype(np.asarray(ref).dtype, copy=False))
    return jax.tree.unflatten(treedef, out)


class Client(NumPyClient):
    """One client of a Flower federation that trains with gdjax.

    Args:
        loss_fn: ``loss_fn(params, batch) -> loss | (loss, aux)`` (``key=`` with
            ``takes_key``), as for :func:`gdjax.federated.fit`.
        params: Parameters of the model's shape (the server sends the values).
        client_optimizer: Any optax ``GradientTransformation`` (fresh state every round).
        data: This client's data set (an array or a tuple/pytree of arrays).
        client_id: This client's index ``k`` in the federation (its key stream).
        key: The run's PRNG key, the same on every client and in a simulation to compare with.
        local_epochs: Passes over the data per round.
        batch_size: Local mini-batch size; ``None`` for the whole data set.
        prox_mu: FedProx's ``μ`` (0: off).
        takes_key: Pass a fresh key to the loss each step as ``key=``.
        shuffle: Reshuffle every local epoch.
        drop_last: Drop the last, smaller batch of every epoch.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, gdjax
        >>> from gdjax.federated.flower import Client
        >>> x = np.ones((8, 2), np.float32); y = np.zeros(8, np.float32)
        >>> def loss(p, b):
        ...     return jnp.mean((b[0] @ p["w"] - b[1]) ** 2)
        >>> client = Client(loss, {"w": np.ones(2, np.float32)}, gdjax.sgd(0.1), (x, y),
        ...                 client_id=0, key=jax.random.key(0), batch_size=4)
        >>> arrays, n, metrics = client.fit([np.ones(2, np.float32)], {"server_round": 1})
        >>> n, sorted(metrics), bool(arrays[0][0] < 1)
        (8, ['client_id', 'loss'], True)
    """

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        params: Any,
        client_optimizer: optax.GradientTransformation,
        data: Any,
        *,
        client_id: int,
        key: jax.Array,
        local_epochs: int = 1,
        batch_size: int | None = None,
        prox_mu: float = 0.0,
        takes_key: bool = False,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        check_optimizer(client_optimizer, "client_optimizer", params)
        self._key = check_key(key)
        if (
            isinstance(client_id, bool)
            or not isinstance(client_id, int | np.integer)
            or client_id < 0
        ):
            raise ValueError(f"client_id must be an int >= 0, got {client_id!r}")
        self.client_id = int(client_id)
        n = cl.check_dataset(data, "data")
        bs = n if batch_size is None else positive_int(batch_size, "batch_size")
        if drop_last and n < bs:
            raise ValueError(f"drop_last=True with batch_size={bs} leaves {n} examples no batch")
        if not (isinstance(prox_mu, int | float) and np.isfinite(prox_mu) and prox_mu >= 0):
            raise ValueError(f"prox_mu must be a finite number >= 0, got {prox_mu!r}")
        call = LossCall(loss_fn, takes_key=bool(takes_key))
        probe_loss(call, params, data, min(bs, n))
        plan = make_plan(
            call,
            client_optimizer,
            [n],
            bs,
            positive_int(local_epochs, "local_epochs"),
            bool(shuffle),
            bool(drop_last),
            prox_mu > 0,
        )
        self.num_examples = n
        self._like = jax.tree.map(np.asarray, params)
        self._data = jax.device_put(data)
        self._mu = np.float32(prox_mu)
        self._train = jax.jit(functools.partial(local_train, plan))

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        """The local copy of the parameters (the model's shape; the server sends values)."""
        return to_ndarrays(self._like)

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Train locally from the server's parameters for round ``config["server_round"]``.

        Returns:
            The new parameters, the number of examples, and metrics ``loss`` (mean training
            loss over the round's local steps) and ``client_id``.
        """
        if "server_round" not in config:
            raise KeyError(
                "config has no 'server_round': run gdjax clients with "
                "gdjax.federated.flower.ServerOptStrategy, or send it from on_fit_config_fn"
            )
        t = int(config["server_round"]) - 1
        params = from_ndarrays(parameters, self._like)
        key = client_key(self._key, t, self.client_id)
        new, sums = self._train(params, self._data, 0, self.num_examples, key, self._mu)
        loss = float(sums["loss"] / max(float(sums["count"]), 1.0))
        return to_ndarrays(new), self.num_examples, {"loss": loss, "client_id": self.client_id}


class ServerOptStrategy(FedAvg):
    r"""Flower's ``FedAvg`` with gdjax's server step: FedAvg, FedAvgM, FedAdam, FedYogi...

    Each round's results are averaged into :math:`\bar\Delta = \sum_k p_k (w_k - w)`,
    :math:`p_k \propto n_k` (or :math:`1/m`), and ``server_optimizer`` steps with
    :math:`-\bar\Delta` as the gradient, exactly as in :func:`gdjax.federated.fit`. Clients
    that report a ``client_id`` (gdjax's :class:`Client` does) are summed in that order.

    Args:
        params: Initial global parameters.
        server_optimizer: Any optax ``GradientTransformation`` (``gdjax.sgd(1.0)``: FedAvg).
        weighting: ``"examples"`` or ``"uniform"``.
        **kwargs: ``flwr.server.strategy.FedAvg`` options (``fraction_fit``,
            ``min_fit_clients``, ``min_available_clients``, ``evaluate_fn`` for a central
            evaluation...). Client-side evaluation is off (``fraction_evaluate=0``): gdjax
            clients only train.

    Attributes:
        params: The current global parameters (JAX arrays).
        server_state: The server optimizer's state.
        history: ``loss`` (the clients' example-weighted mean training loss) and ``clients``
            (the ``client_id`` of each result) per round.

    Examples:
        >>> import numpy as np, gdjax
        >>> from gdjax.federated.flower import ServerOptStrategy
        >>> strategy = ServerOptStrategy({"w": np.zeros(2, np.float32)}, gdjax.adam(0.1),
        ...                              min_fit_clients=2, min_available_clients=2)
        >>> strategy.history
        {'loss': [], 'clients': []}
    """

    def __init__(
        self,
        params: Any,
        server_optimizer: optax.GradientTransformation,
        *,
        weighting: Literal["examples", "uniform"] = "examples",
        **kwargs: Any,
    ) -> None:
        params = jax.tree.map(lambda x: jnp.array(np.asarray(x)), params)
        check_optimizer(server_optimizer, "server_optimizer", params)
        if weighting not in ("examples", "uniform"):
            raise ValueError(f"weighting must be 'examples' or 'uniform', got {weighting!r}")
        user_config = kwargs.pop("on_fit_config_fn", None)

        def fit_config(server_round: int) -> dict[str, Scalar]:
            config = dict(user_config(server_round)) if user_config else {}
            config["server_round"] = server_round
            return config

        kwargs.setdefault("initial_parameters", ndarrays_to_parameters(to_ndarrays(params)))
        kwargs.setdefault("fraction_evaluate", 0.0)  # gdjax clients do not evaluate
        super().__init__(on_fit_config_fn=fit_config, **kwargs)
        self.params = params
        self.server_state = server_optimizer.init(params)
        self.weighting = weighting
        self.history: dict[str, list] = {"loss": [], "clients": []}
        self._step = jax.jit(functools.partial(_aggregate_and_step, server_optimizer))

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Average the clients' updates and apply the server optimizer."""
        if not results or (failures and not self.accept_failures):
            return None, {}
        fits = [r for _, r in results]
        fits.sort(key=lambda r: int(r.metrics.get("client_id", 0)))
        stacked = jax.tree.map(
            lambda *xs: np.stack(xs),
            *[from_ndarrays(parameters_to_ndarrays(r.parameters), self.params) for r in fits],
        )
        n = np.asarray([r.num_examples for r in fits], np.float32)
        weights = n / n.sum() if self.weighting == "examples" else np.full_like(n, 1 / len(n))
        self.params, self.server_state = self._step(
            self.params, self.server_state, stacked, weights
        )
        losses = [float(r.metrics["loss"]) for r in fits if "loss" in r.metrics]
        metrics: dict[str, Scalar] = {}
        if len(losses) == len(fits):
            metrics["loss"] = float(np.dot(weights, losses))
            self.history["loss"].append(metrics["loss"])
        self.history["clients"].append([int(r.metrics.get("client_id", -1)) for r in fits])
        return ndarrays_to_parameters(to_ndarrays(self.params)), metrics


def _aggregate_and_step(
    optimizer: optax.GradientTransformation,
    params: Any,
    state: Any,
    client_params: Any,
    weights: jax.Array,
) -> tuple[Any, Any]:
    update, _ = _server.average_update(params, client_params, weights)
    return _server.server_step(optimizer, params, state, update)
