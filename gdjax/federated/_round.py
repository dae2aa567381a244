"""One federated round as one compiled program: sample, train every client, aggregate, evaluate.

Randomness is a pure function of ``(key, round)``: with ``round_key = fold_in(key, t)`` for
the 0-based round ``t``, the clients are drawn with ``fold_in(round_key, 0)``, client ``k``
trains with ``client_key(key, t, k) = fold_in(fold_in(round_key, 1), k)``, DP noise uses
``fold_in(round_key, 2)`` and evaluation ``fold_in(round_key, 3)``. A run resumed from a
checkpoint therefore draws the same numbers as one that was never interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gdjax.federated import _server
from gdjax.federated._local import LocalPlan, local_train
from gdjax.train.loss_call import LossCall

SAMPLE, CLIENT, NOISE, EVAL = 0, 1, 2, 3


def client_key(key: jax.Array, round_index: int | jax.Array, client: int | jax.Array) -> jax.Array:
    """The key client ``client`` trains with in round ``round_index`` (0-based).

    Its local training in that round is ``gdjax.fit`` on its data from the global parameters
    with this key and ``epochs=local_epochs`` (see :mod:`gdjax.federated`).

    Examples:
        >>> import jax
        >>> from gdjax.federated import client_key
        >>> k = client_key(jax.random.key(0), 3, 7)
        >>> bool((jax.random.key_data(k) == jax.random.key_data(
        ...     jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 3), 1), 7)
        ... )).all())
        True
    """
    return jax.random.fold_in(
        jax.random.fold_in(jax.random.fold_in(key, round_index), CLIENT), client
    )


class FedState(NamedTuple):
    """What evolves from round to round (checkpointed as is)."""

    params: Any
    server_state: Any
    round: jax.Array  # rounds completed


@dataclass(frozen=True)
class RoundSpec:
    """Static description of a federated run's round program."""

    plan: LocalPlan
    server_optimizer: optax.GradientTransformation
    num_clients: int
    per_round: int
    weighting: str  # "examples" | "uniform"
    dp: bool
    eval_loss: LossCall
    metrics: tuple[tuple[str, Callable[..., Any]], ...] = ()
    #: ``(name, N, eval batch size)`` of each validation set
    val_sets: tuple[tuple[str, int, int], ...] = ()
    client_sharding: Any = None  # NamedSharding of a per-client array, or None


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.asarray(True)


def _constrain(x: Any, sharding: Any) -> Any:
    if sharding is None:
        return x
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), x)


def sample_clients(spec: RoundSpec, key: jax.Array) -> jax.Array:
    """The round's clients, ascending: all of them, or ``per_round`` drawn without replacement."""
    if spec.per_round == spec.num_clients:
        return jnp.arange(spec.num_clients, dtype=jnp.int32)
    ids = jax.random.choice(key, spec.num_clients, (spec.per_round,), replace=False)
    return jnp.sort(ids).astype(jnp.int32)


def evaluate(
    spec: RoundSpec, params: Any, data: Any, key: jax.Array, name: str, n: int, eb: int
) -> dict:
    """Means of the evaluation loss and metrics over the whole set ``name`` (batches of ``eb``)."""
    nfull, rem = n // eb, n % eb

    def sums(batch: Any, rows: int) -> dict:
        loss = spec.eval_loss(params, None, batch, key)[0]
        out = {f"{name}_loss": loss.astype(jnp.float32) * rows}
        for metric, fn in spec.metrics:
            out[f"{name}_{metric}"] = jnp.asarray(fn(params, batch), jnp.float32) * rows
        return out

    total = None
    if nfull:
        xs = jax.tree.map(lambda a: a[: nfull * eb].reshape(nfull, eb, *a.shape[1:]), data)

        def body(carry: dict, batch: Any) -> tuple[dict, None]:
            return jax.tree.map(jnp.add, carry, sums(batch, eb)), None

        first = jax.tree.map(lambda a: a[0], xs)
        zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(sums, first, eb))
        total, _ = jax.lax.scan(body, zero, xs)
    if rem:
        tail = sums(jax.tree.map(lambda a: a[nfull * eb :], data), rem)
        total = tail if total is None else jax.tree.map(jnp.add, total, tail)
    return {k: v / n for k, v in total.items()}


def run_round(
    spec: RoundSpec,
    state: FedState,
    key: jax.Array,
    data: Any,
    offsets: jax.Array,
    counts: jax.Array,
    val_data: tuple | None,
    hp: dict[str, jax.Array],
) -> tuple[FedState, dict]:
    """Run round ``state.round``; ``hp`` holds ``mu`` and, with DP, ``clip_norm`` and
    ``noise_multiplier`` (arrays, so other values reuse the program)."""
    round_key = jax.random.fold_in(key, state.round)
    ids = sample_clients(spec, jax.random.fold_in(round_key, SAMPLE))
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.fold_in(round_key, CLIENT), k))(ids)
    n = counts[ids]
    per_client = _constrain((ids, keys, offsets[ids], n), spec.client_sharding)
    _, keys, offs, n = per_client

    def train(offset: jax.Array, count: jax.Array, k: jax.Array) -> tuple[Any, dict]:
        return local_train(spec.plan, state.params, data, offset, count, k, hp["mu"])

    client_params, sums = jax.vmap(train)(offs, n, keys)
    client_params = _constrain(client_params, spec.client_sharding)
    if spec.weighting == "uniform":
        weights = jnp.full((spec.per_round,), 1.0 / spec.per_round, jnp.float32)
    else:
        weights = n.astype(jnp.float32) / jnp.sum(n).astype(jnp.float32)
    dp = (hp["clip_norm"], hp["noise_multiplier"]) if spec.dp else None
    noise_key = jax.random.fold_in(round_key, NOISE)
    update, stats = _server.average_update(state.params, client_params, weights, dp, noise_key)
    new = _server.server_step(spec.server_optimizer, state.params, state.server_state, update)
    ok = jnp.isfinite(stats["update_norm"]) & _all_finite(new[0])
    params, server_state = jax.tree.map(
        lambda a, b: jnp.where(ok, a, b), new, (state.params, state.server_state)
    )
    stats["update_ok"] = ok
    count = jnp.sum(sums["count"])
    stats["loss"] = jnp.where(count > 0, jnp.sum(sums["loss"]) / jnp.maximum(count, 1.0), jnp.nan)
    stats["nonfinite_steps"] = jnp.sum(sums["nonfinite_steps"])
    stats["clients"] = ids
    stats["examples"] = jnp.sum(n)
    if spec.val_sets:
        eval_key = jax.random.fold_in(round_key, EVAL)
        for vdata, (name, vn, eb) in zip(val_data, spec.val_sets, strict=True):
            stats.update(evaluate(spec, params, vdata, eval_key, name, vn, eb))
    return FedState(params, server_state, state.round + 1), stats
