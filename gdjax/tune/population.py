"""Trials as members of vmapped programs: start, repack, copy, freeze (a thin layer over the
training engine).

A *group* is one running program: the trials that share every static value (batch size, a
width) trained as the members of one :class:`~gdjax.train.driver.Run`. The engine's member
state and member hyperparameters carry a leading members' axis, so

- **repacking** survivors is a new run of fewer members whose state is the survivors' rows of
  the old one (their keys too, when each trial has its own);
- **copying** a member (PBT's exploit) writes one row of the state into another;
- **moving** hyperparameters (PBT's explore) replaces ``run.hp["member"]`` with arrays of the
  same shapes and dtypes, so the compiled programs are reused;
- **freezing** a member (a pruned trial) sets its stop flag: the engine keeps its state as is.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gdjax.train.driver import Run
from gdjax.train.engine import Members, Optimizer, as_params, optimizer_of, start_run
from gdjax.train.options import TrainOptions
from gdjax.tune.space import Choice, IntUniform, Space


@dataclass
class Problem:
    """What every program of one search shares; static values pick the model (``build``)."""

    loss_fn: Callable[..., Any] | None
    params: Any
    model_state: Any
    optimizer: Callable[[dict], Any]
    data: Any
    options: TrainOptions
    space: Space
    build: Callable[[dict], tuple] | None
    takes_hparams: bool
    seed: int
    seed_per_trial: bool
    _parts: dict = field(default_factory=dict)

    def parts(self, static: dict) -> tuple[Callable, Any, Any, Optimizer]:
        """Loss, parameters (or init function), model state and optimizer for ``static``
        (built once per combination of static values, so a repacked group finds its programs
        by the engine's cheap key)."""
        key = repr(sorted(static.items()))
        if key not in self._parts:
            loss_fn, params, model_state = self.loss_fn, self.params, self.model_state
            model_values = {k: v for k, v in static.items() if k != "batch_size"}
            if self.build is not None:
                built = self.build(dict(static))
                if not isinstance(built, tuple) or len(built) not in (2, 3):
                    raise TypeError(
                        "build(static) must return (loss_fn, params) or (loss_fn, params, "
                        f"model_state); got {type(built).__name__}"
                    )
                loss_fn, params = built[0], built[1]
                model_state = built[2] if len(built) == 3 else None
            elif model_values:
                raise ValueError(
                    f"space has static dimensions {sorted(model_values)} that change the model: "
                    "pass build=lambda static: (loss_fn, params) to make each variant"
                )
            if not callable(params):
                params = as_params(params)
            opt = optimizer_of(_with_statics(self.optimizer, static), "sweep")
            self._parts[key] = (loss_fn, params, model_state, opt)
        return self._parts[key]

    def keys(self, numbers: np.ndarray) -> jax.Array:
        """The members' PRNG keys: one shared key, or one per trial number."""
        root = jax.random.key(self.seed)
        if not self.seed_per_trial:
            return root
        return jax.vmap(lambda n: jax.random.fold_in(root, n))(jnp.asarray(numbers, jnp.uint32))

    def inputs(self, configs: list[dict]) -> dict[str, np.ndarray]:
        """The members' hyperparameters as program inputs, one array per non-static name."""
        out = {}
        for name in self.space.input_names:
            values = [self.space.input_value(name, c) for c in configs]
            out[name] = np.asarray(values, input_dtype(self.space, name))
        return out


# user optimizer -> {repr(static values): wrapper}: the same wrapper for the same function, so
# that a later search finds its programs by the engine's cheap key (functions by identity).
_WRAPPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _with_statics(optimizer: Callable[[dict], Any], static: dict) -> Callable[[dict], Any]:
    """``hp -> optimizer({**hp, **static})``: the optimizer sees static values as Python values."""
    key = repr(sorted(static.items()))
    try:
        per_fn = _WRAPPERS.setdefault(optimizer, {})
    except TypeError:  # not weakly referenceable
        per_fn = {}
    if key not in per_fn:
        values = dict(static)
        per_fn[key] = lambda hp: optimizer({**hp, **values})
    return per_fn[key]


def input_dtype(space: Space, name: str) -> Any:
    """int32 for integer dimensions and integer choices, float32 otherwise."""
    dim = space.dims[name]
    ints = isinstance(dim, IntUniform) or (
        isinstance(dim, Choice) and all(isinstance(v, int | np.integer) for v in dim.values)
    )
    return np.int32 if ints else np.float32


@dataclass
class Group:
    """One running program: its static values, its trials (member order), their run."""

    static: dict
    trials: np.ndarray
    run: Run
    active: np.ndarray  # members still training (not stopped, not pruned)

    @property
    def size(self) -> int:
        return len(self.trials)


def start(
    problem: Problem,
    static: dict,
    numbers: list[int] | np.ndarray,
    inputs: dict[str, np.ndarray],
    keys: Any = None,
) -> Group:
    """A fresh group for trials ``numbers`` (hyperparameters ``inputs``)."""
    numbers = np.asarray(numbers, np.int64)
    loss_fn, params, model_state, opt = problem.parts(static)
    options = dataclasses.replace(
        problem.options,
        batch_size=static.get("batch_size", problem.options.batch_size),
        checkpoint_dir=None,
    )
    if keys is None:
        keys = problem.keys(numbers)
    init_fn = params if callable(params) else None
    run = start_run(
        caller="sweep",
        loss_fn=loss_fn,
        params=None if init_fn is not None else params,
        optimizer=opt,
        data=problem.data,
        model_state=model_state,
        options=options,
        key=keys,
        member_hp={k: jnp.asarray(v) for k, v in inputs.items()},
        members=Members(len(numbers), not problem.seed_per_trial, init_fn),
        takes_hparams=problem.takes_hparams,
        desc="tune",
    )
    return Group(dict(static), numbers, run, np.ones(len(numbers), bool))


def member_inputs(group: Group) -> dict[str, np.ndarray]:
    """The members' current hyperparameter inputs, on the host."""
    return {k: np.array(v) for k, v in group.run.hp["member"].items()}


def _host(tree: Any) -> Any:
    """``tree``'s arrays copied to the host (NumPy indexing there compiles nothing)."""
    return jax.tree.map(np.array, tree)


def take(problem: Problem, group: Group, positions: np.ndarray) -> Group:
    """A new, smaller group of the members at ``positions`` that continues where they are."""
    positions = np.asarray(positions, np.int64)
    inputs = {k: v[positions] for k, v in member_inputs(group).items()}
    keys = None
    if problem.seed_per_trial:
        keys = jax.random.wrap_key_data(np.asarray(jax.random.key_data(group.run.key))[positions])
    new = start(problem, group.static, group.trials[positions], inputs, keys)
    rows = jax.tree.map(lambda a: a[positions], _host(group.run.state))
    new.run.state = jax.device_put(rows)
    new.run.history = {k: [v[positions] for v in vals] for k, vals in group.run.history.items()}
    new.active = group.active[positions].copy()
    return new


def copy_rows(group: Group, dst: np.ndarray, src: np.ndarray) -> None:
    """Member ``dst[i]`` takes member ``src[i]``'s whole training state (parameters, optimizer
    and model state, stopping rules)."""
    state = _host(group.run.state)

    def copy(a: np.ndarray) -> np.ndarray:
        a[dst] = a[src]
        return a

    group.run.state = jax.device_put(jax.tree.map(copy, state))
    group.active[dst] = group.active[src]


def set_inputs(group: Group, inputs: dict[str, np.ndarray]) -> None:
    """Replace the members' hyperparameters (same names, shapes and dtypes)."""
    old = group.run.hp["member"]
    if set(inputs) != set(old):
        raise ValueError(f"hyperparameters {sorted(inputs)} do not match {sorted(old)}")
    new = {}
    for k, v in inputs.items():
        arr = np.asarray(v, old[k].dtype)
        if arr.shape != old[k].shape:
            raise ValueError(f"hyperparameter {k!r} has shape {arr.shape}, not {old[k].shape}")
        new[k] = jax.device_put(arr)
    group.run.hp = {**group.run.hp, "member": new}


def freeze(group: Group, positions: np.ndarray) -> None:
    """Stop the members at ``positions``: the programs keep their state unchanged from now on."""
    positions = np.asarray(positions, np.int64)
    if positions.size == 0:
        return
    state = group.run.state
    stopped = np.array(state.stop.stopped)
    stopped[positions] = True
    group.run.state = state._replace(stop=state.stop._replace(stopped=jax.device_put(stopped)))
    group.active[positions] = False


def member_params(group: Group, position: int) -> tuple[Any, Any]:
    """Member ``position``'s parameters and model state (the best epoch's under
    ``EarlyStopping(restore_best=True)``, as ``sweep`` returns them)."""
    state, spec = group.run.state, group.run.spec
    pick = lambda tree: jax.tree.map(lambda a: np.asarray(a)[position], tree)  # noqa: E731
    es = spec.stop.early_stopping
    if es is not None and es.restore_best and int(np.asarray(state.stop.best_epoch)[position]) > 0:
        return pick(state.stop.best_params), pick(state.stop.best_model_state)
    return pick(state.params), pick(state.model_state)
