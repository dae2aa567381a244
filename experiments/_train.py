"""A compiled, vmapped training loop for the studies.

One call trains ``C`` configurations (hyperparameters given as arrays of length ``C``) of the
same model on the same data in one XLA program per epoch: the epoch's batches are gathered once
on the device from a shuffled permutation, ``lax.scan`` runs the steps, and ``jax.vmap`` runs the
configurations side by side. The optimizer is built *inside* the vmapped step from that
configuration's (traced) hyperparameters, which gdjax optimizers accept.

This is the studies' own small loop, kept here so that every study measures the same thing
(per-step losses, per-epoch wall time with compilation timed separately).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._core import Context

#: ``loss_fn(params, batch, key, hp) -> scalar``; ``batch`` is a tuple of arrays, ``hp`` a dict
#: of this configuration's scalar hyperparameters.
LossFn = Callable[[Any, tuple, jax.Array, Mapping[str, jax.Array]], jax.Array]
#: ``evaluate(params, hp, eval_data) -> {metric: scalar}``, vmapped over configurations.
EvalFn = Callable[[Any, Mapping[str, jax.Array], tuple], Mapping[str, jax.Array]]


@dataclasses.dataclass
class SweepResult:
    """What :func:`train_sweep` measured.

    Attributes:
        params: the trained parameters, stacked over configurations (leading axis ``C``).
        step_loss: ``(C, epochs * steps)`` training loss of every step (on its mini-batch).
        epoch_loss: ``(C, epochs)`` mean training loss over each epoch's steps.
        evals: ``{metric: (C, epochs)}`` from ``evaluate`` after each epoch (empty if none).
        epoch_seconds: wall time of each epoch for all configurations together (compiled).
        compile_seconds: time to compile the epoch program.
        steps_per_epoch: optimizer steps per epoch.
    """

    params: Any
    step_loss: np.ndarray
    epoch_loss: np.ndarray
    evals: dict[str, np.ndarray]
    epoch_seconds: list[float]
    compile_seconds: float
    steps_per_epoch: int


def stack_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """Turn ``{name: sequence}`` into float32 arrays of one common length ``C``."""
    arrays = {k: np.asarray(v, np.float32).reshape(-1) for k, v in hparams.items()}
    sizes = {a.shape[0] for a in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(
            f"hyperparameter arrays differ in length: { {k: a.shape for k, a in arrays.items()} }"
        )
    return arrays, sizes.pop()


def train_sweep(
    ctx: Context,
    loss_fn: LossFn,
    params: Any,
    make_optimizer: Callable[[Mapping[str, jax.Array]], optax.GradientTransformation],
    hparams: Mapping[str, Any],
    data: tuple[np.ndarray, ...],
    *,
    batch_size: int,
    epochs: int,
    key: jax.Array,
    evaluate: EvalFn | None = None,
    eval_data: tuple[np.ndarray, ...] = (),
    desc: str = "train",
    stacked_params: bool = False,
) -> SweepResult:
    """Train every configuration in ``hparams`` for ``epochs`` epochs in one program per epoch.

    Args:
        ctx: the study context (progress bar).
        loss_fn: ``loss_fn(params, batch, key, hp)``.
        params: initial parameters, shared by every configuration (or stacked when
            ``stacked_params``).
        make_optimizer: builds the optimizer from one configuration's hyperparameters.
        hparams: ``{name: values}``, all of one length ``C``.
        data: training arrays with a common leading axis ``N``; the last partial batch of each
            shuffled epoch is dropped.
        batch_size: examples per step (``N`` gives full-batch gradient descent).
        epochs: passes over the data.
        key: PRNG key for shuffling and the per-step keys given to ``loss_fn``.
        evaluate: optional metrics computed after every epoch, ``evaluate(params, hp, eval_data)``.
        eval_data: arrays handed to ``evaluate`` (passed as arguments, not baked into the trace).
        desc: progress-bar label.
        stacked_params: ``params`` already carries a leading configuration axis.
    """
    sweep = CompiledSweep(
        ctx,
        loss_fn,
        params,
        make_optimizer,
        hparams,
        data,
        batch_size=batch_size,
        evaluate=evaluate,
        eval_data=eval_data,
        stacked_params=stacked_params,
    )
    return sweep.train(epochs, key, desc=desc)


class CompiledSweep:
    """The compiled epoch program of :func:`train_sweep`, reusable for repeated trainings.

    Construction checks the arguments and compiles; every :meth:`train` call then starts again
    from the initial parameters, so timing studies can repeat (and interleave) whole trainings
    without recompiling. Arguments are those of :func:`train_sweep`.
    """

    def __init__(
        self,
        ctx: Context,
        loss_fn: LossFn,
        params: Any,
        make_optimizer: Callable[[Mapping[str, jax.Array]], optax.GradientTransformation],
        hparams: Mapping[str, Any],
        data: tuple[np.ndarray, ...],
        *,
        batch_size: int,
        evaluate: EvalFn | None = None,
        eval_data: tuple[np.ndarray, ...] = (),
        stacked_params: bool = False,
    ) -> None:
        hp, n_cfg = stack_hparams(hparams)
        n = int(data[0].shape[0])
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in [1, {n}]; got {batch_size}")
        steps = n // batch_size
        self.ctx, self.n_cfg, self.steps_per_epoch = ctx, n_cfg, steps
        self.data = tuple(jnp.asarray(a) for a in data)
        self.initial_params = params

        @jax.jit
        def setup(params, hp):
            if stacked_params:  # a copy: the epoch program donates its inputs
                params = jax.tree.map(jnp.copy, params)
            else:
                params = jax.tree.map(lambda p: jnp.broadcast_to(p, (n_cfg, *jnp.shape(p))), params)
            return params, jax.vmap(lambda p, h: make_optimizer(h).init(p))(params, hp)

        self.hp, self.setup = hp, setup

        def one_step(p, s, h, batch, k):
            loss, g = jax.value_and_grad(loss_fn)(p, batch, k, h)
            updates, s = make_optimizer(h).update(g, s, p)
            return optax.apply_updates(p, updates), s, loss

        def epoch(params, opt_state, data, key):
            k_perm, k_steps = jax.random.split(key)
            perm = jax.random.permutation(k_perm, n)[: steps * batch_size]
            batches = tuple(a[perm].reshape(steps, batch_size, *a.shape[1:]) for a in data)
            keys = jax.random.split(k_steps, steps)

            def body(carry, xs):
                p, s = carry
                batch, k = xs
                p, s, loss = jax.vmap(one_step, in_axes=(0, 0, 0, None, None))(p, s, hp, batch, k)
                return (p, s), loss

            (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (batches, keys))
            return params, opt_state, losses.T

        p0, s0 = setup(params, hp)
        t0 = time.perf_counter()
        self.compiled = (
            jax.jit(epoch, donate_argnums=(0, 1))
            .lower(p0, s0, self.data, jax.random.key(0))
            .compile()
        )
        self.compile_seconds = time.perf_counter() - t0
        self.eval_jit = jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None))) if evaluate else None
        self.eval_data = tuple(jnp.asarray(a) for a in eval_data)

    def train(self, epochs: int, key: jax.Array, *, desc: str = "train") -> SweepResult:
        """Train from the initial parameters for ``epochs`` epochs (keys derived from ``key``)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {epochs}")
        params, opt_state = self.setup(self.initial_params, self.hp)
        step_losses, seconds = [], []
        evals: dict[str, list] = {}
        for k in self.ctx.progress(_split(key, epochs), desc=desc, total=epochs):
            t0 = time.perf_counter()
            params, opt_state, losses = self.compiled(params, opt_state, self.data, k)
            losses = np.asarray(losses)  # blocks until the epoch is done
            seconds.append(time.perf_counter() - t0)
            step_losses.append(losses)
            if self.eval_jit is not None:
                for name, v in self.eval_jit(params, self.hp, self.eval_data).items():
                    evals.setdefault(name, []).append(np.asarray(v))
        step_loss = np.concatenate(step_losses, axis=1)
        return SweepResult(
            params=params,
            step_loss=step_loss,
            epoch_loss=step_loss.reshape(self.n_cfg, epochs, self.steps_per_epoch).mean(axis=2),
            evals={k: np.stack(v, axis=1) for k, v in evals.items()},
            epoch_seconds=seconds,
            compile_seconds=self.compile_seconds,
            steps_per_epoch=self.steps_per_epoch,
        )


def _split(key: jax.Array, n: int) -> list[jax.Array]:
    """``n`` keys from ``key`` in one compiled call (eager splits each compile on first use)."""
    return list(jax.jit(jax.random.split, static_argnums=1)(key, n))


def softmax_xent(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of integer ``labels``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of rows whose arg-max matches ``labels``."""
    return (jnp.argmax(logits, -1) == labels).mean()


def tree_select(tree: Any, index: int) -> Any:
    """Configuration ``index`` of a stacked tree."""
    return jax.tree.map(lambda a: a[index], tree)


def minimize_sweep(
    f: Callable[[jax.Array], jax.Array],
    x0: jax.Array,
    make_optimizer: Callable[[Mapping[str, jax.Array]], optax.GradientTransformation],
    hparams: Mapping[str, Any],
    *,
    steps: int,
    key: jax.Array | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``f`` from starts ``x0`` (shape ``(C, D)``) with one optimizer per row.

    Everything (all rows, all steps) is one compiled ``vmap`` of a ``lax.scan``. The optimizer's
    ``update`` gets ``params`` (so transforms that need them, and noise keyed by their own
    seed, work).

    Returns:
        ``(trajectory, values)``: ``(C, steps + 1, D)`` iterates and ``(C, steps + 1)`` values of
        ``f`` along them (non-finite where a run diverged).
    """
    hp, n_cfg = stack_hparams(hparams)
    if x0.shape[0] != n_cfg:
        raise ValueError(f"x0 has {x0.shape[0]} rows but hparams have {n_cfg} configurations")

    def run(x, h):
        opt = make_optimizer(h)

        def body(carry, _):
            x, s = carry
            g = jax.grad(f)(x)
            u, s = opt.update(g, s, x)
            x = optax.apply_updates(x, u)
            return (x, s), x

        _, xs = jax.lax.scan(body, (x, opt.init(x)), None, length=steps)
        xs = jnp.concatenate([x[None], xs])
        return xs, jax.vmap(f)(xs)

    traj, vals = jax.jit(jax.vmap(run))(jnp.asarray(x0, jnp.float32), hp)
    return np.asarray(traj), np.asarray(vals)


def either(
    use_second: jax.Array, first: optax.GradientTransformation, second: optax.GradientTransformation
) -> optax.GradientTransformation:
    """Run ``first`` or ``second`` depending on a (traced) flag, keeping both states.

    Lets structurally different optimizers (SGD and Adam, say) share one vmapped program: both
    updates are computed and ``jnp.where`` picks one, so the cost is the sum of the two.
    """

    def init(params):
        return first.init(params), second.init(params)

    def update(updates, state, params=None):
        u1, s1 = first.update(updates, state[0], params)
        u2, s2 = second.update(updates, state[1], params)
        pick = lambda a, b: jnp.where(use_second > 0.5, b, a)  # noqa: E731
        return jax.tree.map(pick, u1, u2), (s1, s2)

    return optax.GradientTransformation(init, update)
