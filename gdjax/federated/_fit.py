"""``gdjax.federated.fit``: federated training of one model over simulated clients."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gdjax.federated import _clients as cl
from gdjax.federated._checks import (
    check_key,
    check_optimizer,
    positive_int,
    probe_loss,
    probe_metrics,
)
from gdjax.federated._local import make_plan
from gdjax.federated._progress import RoundBar
from gdjax.federated._round import FedState, RoundSpec, run_round
from gdjax.federated._server import DPConfig
from gdjax.train.checkpoint import Checkpointer
from gdjax.train.loss_call import LossCall


@dataclass
class FederatedResult:
    """What :func:`fit` returns.

    Attributes:
        params: The global parameters after the last round.
        server_state: The server optimizer's state.
        history: Per-round NumPy arrays, one entry per round run: ``loss`` (the clients' mean
            training loss during local training, over every example visit of the round),
            ``clients`` (shape ``(rounds, clients_per_round)``: who took part, ascending),
            ``examples`` (their examples), ``update_norm`` (norm of the averaged update),
            ``nonfinite_steps`` (local steps skipped for a non-finite loss or gradient),
            ``clipped_fraction`` with DP, and with validation data ``val_loss`` and
            ``val_<metric>`` (``<name>_loss``... for a dict of sets) of the new global model.
        rounds_run: Rounds completed, including those restored from a checkpoint.
        resumed_from: Rounds restored from a checkpoint when this call started (0: fresh).
        round_seconds: Wall-clock seconds of each round run by this call (the first includes
            compilation); not part of checkpoints.
        stop_reason: Why training stopped early, or ``None``.
    """

    params: Any
    server_state: Any
    history: dict[str, np.ndarray]
    rounds_run: int
    resumed_from: int = 0
    round_seconds: np.ndarray | None = None
    stop_reason: str | None = None


#: Compiled round programs by their static description, so that a later run with the same loss,
#: optimizers and settings (other data of the same shapes, another key, other DP noise or FedProx
#: ``mu``) reuses the compiled code. Least recently used programs are dropped.
_PROGRAMS: OrderedDict[RoundSpec, Callable[..., Any]] = OrderedDict()
MAX_PROGRAMS = 16


def _program(spec: RoundSpec) -> Callable[..., Any]:
    """The jitted round program for ``spec`` (its state argument donated)."""
    if spec not in _PROGRAMS:
        _PROGRAMS[spec] = jax.jit(functools.partial(run_round, spec), donate_argnums=0)
        while len(_PROGRAMS) > MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(spec)
    return _PROGRAMS[spec]


def _validation_sets(validation_data: Any, example: Any) -> list[tuple[str, Any]]:
    if validation_data is None:
        return []
    if isinstance(validation_data, Mapping) and jax.tree.structure(
        validation_data
    ) != jax.tree.structure(example):
        if not validation_data:
            raise ValueError("validation_data is an empty dict; pass None for no validation")
        for name in validation_data:
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"validation_data names must be identifiers, got {name!r}")
        return list(validation_data.items())
    return [("val", validation_data)]


def _mesh_sharding(mesh: Any, axis: str | None, per_round: int) -> NamedSharding:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    axis = axis if axis is not None else mesh.axis_names[0]
    if axis not in mesh.axis_names:
        raise ValueError(f"client_axis {axis!r} is not an axis of the mesh {mesh.axis_names}")
    devices = mesh.shape[axis]
    if per_round % devices:
        raise ValueError(
            f"clients_per_round={per_round} must be a multiple of the {devices} devices on mesh "
            f"axis {axis!r} (each device trains the same number of clients)"
        )
    # The clients are placed by the compiler (GSPMD) from this one constraint, so the mesh's
    # devices are used with automatic axes whatever the mesh's own axis types.
    auto = Mesh(
        mesh.devices,
        mesh.axis_names,
        axis_types=(jax.sharding.AxisType.Auto,) * len(mesh.axis_names),
    )
    return NamedSharding(auto, PartitionSpec(axis))


def _layout(tree: Any) -> list[str]:
    return [
        f"{p}: {tuple(np.shape(x))} {np.dtype(x.dtype)}"
        for p, x in zip(cl.leaf_paths(tree), jax.tree.leaves(tree), strict=True)
    ]


def _fingerprint(
    state: FedState, clients: cl.ClientSet, val: list, spec: RoundSpec, key: Any
) -> dict:
    raw = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    plan = spec.plan
    return {
        "state": _layout(state),
        "clients": [
            *_layout(clients.example),
            hashlib.sha256(clients.counts.tobytes()).hexdigest()[:16],
        ],
        "validation_data": [f"{name}: {_layout(v)}" for name, v in val],
        "settings": [
            plan.batch_size,
            plan.epochs,
            plan.remainder,
            plan.shuffle,
            plan.prox,
            spec.per_round,
            spec.weighting,
            spec.dp,
        ],
        "key": hashlib.sha256(np.asarray(raw).tobytes()).hexdigest()[:16],
    }


def fit(
    loss_fn: Callable[..., Any],
    params: Any,
    client_optimizer: optax.GradientTransformation,
    server_optimizer: optax.GradientTransformation,
    clients: Any,
    *,
    rounds: int,
    key: jax.Array,
    clients_per_round: int | None = None,
    local_epochs: int = 1,
    batch_size: int | None = None,
    prox_mu: float = 0.0,
    weighting: Literal["examples", "uniform"] | None = None,
    dp: DPConfig | None = None,
    validation_data: Any = None,
    metrics: Mapping[str, Callable[..., Any]] | None = None,
    eval_loss_fn: Callable[..., Any] | None = None,
    eval_batch_size: int | None = None,
    takes_key: bool = False,
    shuffle: bool = True,
    drop_last: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
    keep_checkpoints: int = 3,
    mesh: Mesh | None = None,
    client_axis: str | None = None,
    progress: bool = False,
) -> FederatedResult:
    r"""Train ``params`` by federated optimisation over ``clients``.

    Each round is one compiled program: it draws ``clients_per_round`` clients from ``key``,
    trains all of them at once (vmapped; sharded over ``mesh`` when given) for
    ``local_epochs`` epochs of mini-batch steps of ``client_optimizer`` on their own data,
    averages their updates :math:`\Delta_k = w_k - w` with weights :math:`p_k \propto n_k`
    (their example counts), and lets ``server_optimizer`` take a step along
    :math:`\bar\Delta = \sum_k p_k \Delta_k` (it receives :math:`-\bar\Delta` as the
    gradient). The algorithms of the literature are settings of this one loop:

    ===========  =======================================================================
    FedSGD       ``local_epochs=1, batch_size=None``: one full-batch gradient step per
                 client per round (client ``sgd(lr)``, server ``sgd(1.0)``)
    FedAvg       ``local_epochs=E, batch_size=B``, server ``sgd(1.0)``: the new model is
                 :math:`\sum_k p_k w_k` (McMahan et al., 2017)
    FedProx      FedAvg plus ``prox_mu=μ``: each step minimises
                 :math:`\ell(\theta) + \frac{μ}{2}\lVert\theta - w\rVert^2` (Li et al., 2020)
    FedOpt       any server optimizer: ``sgd(1.0, momentum=0.9)`` (FedAvgM), ``adam``
                 (FedAdam), ``optax.yogi`` (FedYogi), ``adagrad`` (FedAdagrad) (Reddi et al., 2021)
    DP-FedAvg    ``dp=DPConfig(clip_norm, noise_multiplier)`` (McMahan et al., 2018)
    ===========  =======================================================================

    In round ``t`` (0-based), client ``k``'s local training is exactly ``gdjax.fit(loss_fn,
    w, client_optimizer, clients[k], batch_size=batch_size, epochs=local_epochs,
    key=client_key(key, t, k))``: the same shuffles, batches, remainder batch and loss keys
    (the loss is called through the engine's convention, without a model state). Clients may
    differ in size: they are padded in index space and masked, so each trains on each of its
    own examples exactly once per local epoch; a client smaller than ``batch_size`` takes one
    step over all its data per epoch.

    Args:
        loss_fn: ``loss_fn(params, batch) -> loss | (loss, aux)`` (``key=key`` added with
            ``takes_key``); the mean over the batch. ``aux`` is not recorded.
        params: Initial global parameters (a pytree of arrays; not modified).
        client_optimizer: Any optax ``GradientTransformation``; its state starts afresh in
            every client every round.
        server_optimizer: Any optax ``GradientTransformation``; ``gdjax.sgd(1.0)`` for FedAvg.
        clients: A list of client data sets, each an array or a tuple/pytree of arrays sharing
            the leading dimension ``n_k``, all of one layout
            (:func:`gdjax.federated.partition.split` makes one from a data set).
        rounds: Communication rounds to run (in all, when resuming).
        key: PRNG key of the run (client sampling, shuffles, loss keys, DP noise).
        clients_per_round: Clients drawn per round, without replacement (default: all).
        local_epochs: Passes of each client over its data per round.
        batch_size: Local mini-batch size ``B``; ``None`` for each client's full data.
        prox_mu: FedProx's :math:`μ \ge 0` (0: off).
        weighting: ``"examples"`` (:math:`p_k \propto n_k`, the default) or ``"uniform"``
            (:math:`p_k = 1/m`; the default, and the only choice, with ``dp``).
        dp: Client-level differential privacy: clip each update to ``clip_norm``, add
            Gaussian noise of standard deviation ``noise_multiplier * clip_norm`` to the sum.
        validation_data: Held-out data (a client's layout) on which the new global model is
            evaluated after every round; a dict ``{name: data}`` for several sets.
        metrics: ``{"name": fn(params, batch) -> scalar}`` computed on ``validation_data``.
        eval_loss_fn: Loss for evaluation (e.g. without dropout); default ``loss_fn``.
        eval_batch_size: Evaluation batch size (default ``min(N, 1024)``).
        takes_key: Pass a fresh key to the loss each step as ``key=``.
        shuffle: Reshuffle each client's data every local epoch.
        drop_last: Drop each client's last, smaller batch of every epoch.
        checkpoint_dir: Save checkpoints here (orbax); if it holds checkpoints of this run,
            resume from the newest valid one, bit-identical to an uninterrupted run.
        checkpoint_every: Save every this many rounds (and after the last).
        keep_checkpoints: How many recent checkpoints to keep.
        mesh: A ``jax.sharding.Mesh``: the round's clients are split over ``client_axis``
            (each device trains ``clients_per_round / devices`` clients); parameters and data
            are replicated.
        client_axis: Mesh axis for the clients (default: the mesh's first axis).
        progress: Show a tqdm progress bar over the rounds.

    Returns:
        A :class:`FederatedResult`.

    Raises:
        ValueError: A client with no data, clients of different layouts, ``clients_per_round``
            larger than the number of clients, non-positive ``rounds``/``local_epochs``/
            ``batch_size``, negative ``prox_mu``, NaN/inf in the data, ``drop_last`` leaving a
            client no batch, a mesh axis that does not divide ``clients_per_round``, a loss
            that does not return a scalar, or a checkpoint directory of another run.
        TypeError: Arguments of the wrong type, or a loss that fails on the data.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, gdjax
        >>> x = np.linspace(-1, 1, 60, dtype=np.float32)[:, None]; y = 3 * x[:, 0] + 1
        >>> clients = gdjax.federated.partition.split(
        ...     (x, y), gdjax.federated.partition.iid(60, 4))
        >>> def loss(p, batch):
        ...     xb, yb = batch
        ...     return jnp.mean((xb[:, 0] * p["w"] + p["b"] - yb) ** 2)
        >>> res = gdjax.federated.fit(
        ...     loss, {"w": np.float32(0), "b": np.float32(0)}, gdjax.sgd(0.3),
        ...     gdjax.sgd(1.0), clients, rounds=20, clients_per_round=2, local_epochs=2,
        ...     batch_size=5, key=jax.random.key(0))
        >>> round(float(res.params["w"]), 2), res.history["clients"].shape
        (3.0, (20, 2))
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    params = jax.tree.map(lambda x: np.asarray(x) if isinstance(x, int | float) else x, params)
    check_optimizer(client_optimizer, "client_optimizer", params)
    check_optimizer(server_optimizer, "server_optimizer", params)
    key = check_key(key)
    rounds = positive_int(rounds, "rounds")
    local_epochs = positive_int(local_epochs, "local_epochs")
    checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
    keep_checkpoints = positive_int(keep_checkpoints, "keep_checkpoints")
    client_set = cl.gather_clients(clients)
    num_clients = client_set.num_clients
    if clients_per_round is None:
        per_round = num_clients
    else:
        per_round = positive_int(clients_per_round, "clients_per_round")
        if per_round > num_clients:
            raise ValueError(
                f"clients_per_round={per_round} is larger than the number of clients "
                f"({num_clients})"
            )
    bs = client_set.largest if batch_size is None else positive_int(batch_size, "batch_size")
    if drop_last:
        small = np.flatnonzero(client_set.counts < bs)
        if small.size:
            raise ValueError(
                f"drop_last=True with batch_size={bs} leaves clients {small[:10].tolist()} "
                f"(sizes {client_set.counts[small[:10]].tolist()}) no batch to train on"
            )
    if isinstance(prox_mu, bool) or not isinstance(prox_mu, int | float | np.floating):
        raise TypeError(f"prox_mu must be a number, got {prox_mu!r}")
    if not (math.isfinite(prox_mu) and prox_mu >= 0):
        raise ValueError(f"prox_mu must be a finite number >= 0, got {prox_mu!r}")
    if dp is not None and not isinstance(dp, DPConfig):
        raise TypeError(f"dp must be a gdjax.federated.DPConfig or None, got {dp!r}")
    if weighting not in (None, "examples", "uniform"):
        raise ValueError(f"weighting must be 'examples', 'uniform' or None, got {weighting!r}")
    if dp is not None and weighting == "examples":
        raise ValueError(
            "dp bounds each client's influence, so clients are weighted uniformly; "
            "weighting='examples' cannot be combined with dp"
        )
    weighting = weighting or ("uniform" if dp is not None else "examples")
    if eval_loss_fn is not None and not callable(eval_loss_fn):
        raise TypeError("eval_loss_fn must be callable or None")
    metrics = dict(metrics or {})
    for name, fn in metrics.items():
        if not isinstance(name, str) or not callable(fn):
            raise TypeError("metrics must map names (str) to functions fn(params, batch)")
    if metrics and validation_data is None:
        raise ValueError("metrics are computed on validation_data; pass validation_data too")

    call = LossCall(loss_fn, takes_key=bool(takes_key), name="loss_fn")
    eval_call = LossCall(
        eval_loss_fn or loss_fn,
        takes_key=bool(takes_key),
        name="eval_loss_fn" if eval_loss_fn else "loss_fn",
    )
    plan = make_plan(
        call,
        client_optimizer,
        client_set.counts,
        bs,
        local_epochs,
        bool(shuffle),
        bool(drop_last),
        prox_mu > 0,
    )
    probe_loss(call, params, client_set.example, min(bs, client_set.largest))
    if plan.remainder and not plan.uniform:
        probe_loss(call, params, client_set.example, 1)  # the per-example remainder step
    val_sets = []
    for name, vdata in _validation_sets(validation_data, client_set.example):
        label = "validation_data" if name == "val" else f"validation_data[{name!r}]"
        vn = cl.check_dataset(vdata, label)
        cl.check_same_layout(vdata, client_set.example, label, "clients[0]")
        eb = (
            min(vn, 1024)
            if eval_batch_size is None
            else min(positive_int(eval_batch_size, "eval_batch_size"), vn)
        )
        probe_loss(eval_call, params, vdata, eb)
        probe_metrics(metrics, params, vdata, eb)
        val_sets.append((name, vdata, vn, eb))
    sharding = None if mesh is None else _mesh_sharding(mesh, client_axis, per_round)
    spec = RoundSpec(
        plan=plan,
        server_optimizer=server_optimizer,
        num_clients=num_clients,
        per_round=per_round,
        weighting=weighting,
        dp=dp is not None,
        eval_loss=eval_call,
        metrics=tuple(metrics.items()),
        val_sets=tuple((name, vn, eb) for name, _, vn, eb in val_sets),
        client_sharding=sharding,
    )

    params = jax.tree.map(jnp.array, params)  # copies: the state is donated
    state = FedState(
        params, jax.tree.map(jnp.array, server_optimizer.init(params)), jnp.zeros((), jnp.int32)
    )
    history: dict[str, list] = {}
    ckpt = None
    if checkpoint_dir is not None:
        fingerprint = _fingerprint(
            state, client_set, [(n, v) for n, v, _, _ in val_sets], spec, key
        )
        ckpt = Checkpointer(checkpoint_dir, keep_checkpoints, fingerprint)
        restored = ckpt.restore(state)
        if restored is not None:
            state, history = restored
            if int(state.round) > rounds:
                ckpt.close()
                raise ValueError(
                    f"checkpoint_dir {checkpoint_dir} holds a run that already completed "
                    f"{int(state.round)} rounds, more than rounds={rounds}"
                )
    arrays = (
        client_set.data,
        client_set.offsets,
        client_set.counts,
        tuple(v for _, v, _, _ in val_sets) or None,
    )
    hp = {"mu": np.float32(prox_mu)}
    if dp is not None:
        hp["clip_norm"] = np.float32(dp.clip_norm)
        hp["noise_multiplier"] = np.float32(dp.noise_multiplier)
    if mesh is not None:
        state, arrays, hp = jax.device_put(
            (state, arrays, hp), NamedSharding(sharding.mesh, PartitionSpec())
        )
    else:
        state, arrays, hp = jax.device_put((state, arrays, hp))
    program = _program(spec)

    resumed_from = int(state.round)
    bar = RoundBar(progress, rounds, resumed_from)
    seconds, stop_reason = [], None
    try:
        for t in range(resumed_from + 1, rounds + 1):
            t0 = time.perf_counter()
            state, stats = program(state, key, *arrays, hp)
            stats = jax.device_get(stats)
            seconds.append(time.perf_counter() - t0)
            ok = bool(stats.pop("update_ok"))
            for k, val in stats.items():
                history.setdefault(k, []).append(np.asarray(val))
            bar.update(int(stats["examples"]) * local_epochs, stats)
            if not ok:
                stop_reason = f"non-finite server update in round {t}"
                warnings.warn(
                    f"federated training stopped: {stop_reason}; returning the last finite "
                    "global parameters (lower a learning rate)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if ckpt is not None and (t % checkpoint_every == 0 or t == rounds or not ok):
                ckpt.save(t, state, history)
            if not ok:
                break
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    return FederatedResult(
        params=state.params,
        server_state=state.server_state,
        history={k: np.stack(v) for k, v in history.items() if v},
        rounds_run=int(state.round),
        resumed_from=resumed_from,
        round_seconds=np.asarray(seconds),
        stop_reason=stop_reason,
    )
