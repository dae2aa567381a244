r"""A client's local training: ``gdjax.fit``'s epochs, written so that clients can be vmapped.

Client ``k`` starts a round from the global parameters :math:`w` with a fresh client optimizer
state and runs ``local_epochs`` epochs over its own ``n_k`` examples, exactly as ``gdjax.fit``
would with the client's key ``c`` (:func:`gdjax.federated.client_key`):

* epoch ``e`` (0-based) uses ``epoch_key = fold_in(c, e)``;
* the order is ``gdjax.train.shuffle.permutation(fold_in(epoch_key, 0), n_k)`` (or
  ``arange(n_k)`` without shuffling);
* step ``i`` of the epoch takes rows ``order[i*B:(i+1)*B]`` and passes
  ``fold_in(epoch_key, i + 1)`` to a loss that takes ``key=``; after the full batches, unless
  ``drop_last``, one remainder batch ``order[(n_k // B) * B:]``;
* a step whose loss or gradient is not finite is not applied.

FedProx adds the proximal term to each step's objective,
:math:`\ell(\theta) + \frac{\mu}{2}\lVert\theta - w\rVert^2` (Li et al., 2020); the recorded
loss is :math:`\ell` alone.

All clients of a round run in lockstep: ``largest // B`` full steps per epoch, and a client
with fewer full batches has its extra steps masked (computed on filler rows, not applied, not
counted). When clients differ in size, the remainder batches differ in size too, so the
remainder step evaluates the loss per example over the largest remainder and averages only the
client's own ``n_k mod B`` rows: in exact arithmetic the same step (a loss that takes ``key=``
gets ``fold_in(step_key, j)`` for row ``j`` there). When all clients have the same size, every
step is ``gdjax.fit``'s step on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gdjax.federated._shuffle import padded_permutation
from gdjax.train.loss_call import LossCall
from gdjax.train.shuffle import permutation


@dataclass(frozen=True)
class LocalPlan:
    """The static schedule of every client's local training in a round.

    Attributes:
        loss: The user's loss, as the engine calls it.
        optimizer: The client optimizer (re-initialised every round).
        batch_size: ``B``.
        epochs: Local epochs ``E``.
        size: Length of each client's order: the largest client's size.
        uniform: All clients have ``size`` examples (no masks anywhere).
        remainder: Rows of the remainder step (0: none).
        shuffle: Reshuffle every local epoch.
        prox: Add FedProx's proximal term (its ``mu`` is an argument of the program).
    """

    loss: LossCall
    optimizer: optax.GradientTransformation
    batch_size: int
    epochs: int
    size: int
    uniform: bool
    remainder: int
    shuffle: bool
    prox: bool

    @property
    def num_full(self) -> int:
        """Full-batch steps per epoch (the largest client's)."""
        return self.size // self.batch_size


def make_plan(
    loss: LossCall,
    optimizer: optax.GradientTransformation,
    counts: Any,
    batch_size: int,
    epochs: int,
    shuffle: bool,
    drop_last: bool,
    prox: bool,
) -> LocalPlan:
    """The plan for clients of sizes ``counts`` (batch ``B`` may exceed a client's size)."""
    sizes = [int(c) for c in counts]
    largest, uniform = max(sizes), len(set(sizes)) == 1
    rem = 0 if drop_last else max(c % batch_size for c in sizes)
    return LocalPlan(loss, optimizer, batch_size, epochs, largest, uniform, rem, shuffle, prox)


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.asarray(True)


def _sq_distance(a: Any, b: Any) -> jax.Array:
    return sum(
        jnp.sum(jnp.square(x - y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


Carry = tuple[Any, Any, dict]


def _step(
    plan: LocalPlan,
    carry: Carry,
    batch: Any,
    rows: jax.Array,
    valid: jax.Array,
    key: jax.Array,
    anchor: Any,
    mu: jax.Array,
    mask: jax.Array | None = None,
) -> Carry:
    """One optimizer step on ``batch`` (``rows`` real examples); not applied unless ``valid``."""
    params, opt_state, acc = carry

    def data_loss(p: Any) -> jax.Array:
        if mask is None:
            return plan.loss(p, None, batch, key)[0]

        def one(row: Any, j: jax.Array) -> jax.Array:
            single = jax.tree.map(lambda a: a[None], row)
            return plan.loss(p, None, single, jax.random.fold_in(key, j))[0]

        losses = jax.vmap(one)(batch, jnp.arange(mask.shape[0]))
        return jnp.sum(jnp.where(mask, losses, 0.0)) / jnp.maximum(rows, 1).astype(losses.dtype)

    def objective(p: Any) -> tuple[jax.Array, jax.Array]:
        loss = data_loss(p)
        if plan.prox:
            return loss + 0.5 * mu.astype(loss.dtype) * _sq_distance(p, anchor), loss
        return loss, loss

    (value, loss), grads = jax.value_and_grad(objective, has_aux=True)(params)
    finite = jnp.isfinite(value) & _all_finite(grads)
    ok = finite & valid
    updates, new_opt = plan.optimizer.update(grads, opt_state, params)
    new = (optax.apply_updates(params, updates), new_opt)
    params, opt_state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, (params, opt_state))
    n = rows.astype(jnp.float32)
    acc = {
        "loss": acc["loss"] + jnp.where(ok, loss.astype(jnp.float32) * n, 0.0),
        "count": acc["count"] + jnp.where(ok, n, 0.0),
        "nonfinite_steps": acc["nonfinite_steps"] + (valid & ~finite).astype(jnp.int32),
    }
    return params, opt_state, acc


def local_train(
    plan: LocalPlan,
    params: Any,
    data: Any,
    offset: jax.Array,
    count: jax.Array,
    key: jax.Array,
    mu: jax.Array,
) -> tuple[Any, dict]:
    """Train one client from ``params``; vmap it over clients.

    Args:
        plan: The round's static schedule.
        params: The global parameters (also FedProx's anchor).
        data: Every client's rows, concatenated (``total`` rows).
        offset: The client's first row in ``data``.
        count: The client's number of examples ``n_k``.
        key: The client's key for this round.
        mu: FedProx's ``mu`` (ignored unless ``plan.prox``).

    Returns:
        The client's parameters after local training, and its sums: ``loss`` (loss times rows
        over applied steps), ``count`` (rows of applied steps), ``nonfinite_steps``.
    """
    bs, nf_max, rem = plan.batch_size, plan.num_full, plan.remainder
    total = jax.tree.leaves(data)[0].shape[0]
    count = jnp.asarray(count, jnp.int32)
    own_full, own_rem = count // bs, count % bs

    def gather(local: jax.Array) -> Any:
        rows = jnp.clip(offset + local, 0, total - 1)
        return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), data)

    def order_of(epoch_key: jax.Array) -> jax.Array:
        if not plan.shuffle:
            return jnp.arange(plan.size, dtype=jnp.int32)
        if plan.uniform:
            return permutation(jax.random.fold_in(epoch_key, 0), plan.size)
        return padded_permutation(jax.random.fold_in(epoch_key, 0), count, plan.size)

    def epoch(carry: Carry, e: jax.Array) -> tuple[Carry, None]:
        epoch_key = jax.random.fold_in(key, e)
        order = order_of(epoch_key)
        if nf_max:
            idx = order[: nf_max * bs].reshape(nf_max, bs)

            def body(c: Carry, xs: tuple) -> tuple[Carry, None]:
                i, ix = xs
                valid = jnp.asarray(True) if plan.uniform else i < own_full
                step_key = jax.random.fold_in(epoch_key, i + 1)
                rows = jnp.asarray(bs, jnp.int32)
                return _step(plan, c, gather(ix), rows, valid, step_key, params, mu), None

            carry, _ = lax.scan(body, carry, (jnp.arange(nf_max, dtype=jnp.int32), idx))
        if rem:
            if plan.uniform:
                tail = gather(order[nf_max * bs :])
                step_key = jax.random.fold_in(epoch_key, nf_max + 1)
                rows = jnp.asarray(rem, jnp.int32)
                carry = _step(plan, carry, tail, rows, jnp.asarray(True), step_key, params, mu)
            else:
                padded = jnp.concatenate([order, jnp.zeros(rem, jnp.int32)])
                ix = lax.dynamic_slice(padded, (own_full * bs,), (rem,))
                mask = jnp.arange(rem) < own_rem
                step_key = jax.random.fold_in(epoch_key, own_full + 1)
                carry = _step(
                    plan, carry, gather(ix), own_rem, own_rem > 0, step_key, params, mu, mask
                )
        return carry, None

    acc = {
        "loss": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
        "nonfinite_steps": jnp.zeros((), jnp.int32),
    }
    opt_state = plan.optimizer.init(params)
    (out, _, acc), _ = lax.scan(epoch, (params, opt_state, acc), jnp.arange(plan.epochs))
    return out, acc
