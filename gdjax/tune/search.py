"""``gdjax.tune.search``: draw configurations, train them as vmapped programs, keep the best.

The pipeline of one call: arguments checked (space, sampler, scheduler, budget, objective —
all before anything is compiled) → configurations drawn → trials grouped by their static
values into programs (:mod:`gdjax.tune.population`) → the scheduler's plan trained with the
engine's driver, every epoch recorded in the book (:mod:`gdjax.tune.trials`) → a checkpoint
after every rung or PBT interval (:mod:`gdjax.tune.store`) → :class:`~gdjax.tune.TuneResult`.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gdjax import _checks
from gdjax.train import history as hist
from gdjax.train.driver import drive
from gdjax.train.loss_call import LossCall
from gdjax.train.options import make_options, with_option_signature
from gdjax.train.spec import abstract, abstract_batch, probe_loss, validation_sets
from gdjax.tune import population as pop
from gdjax.tune import store
from gdjax.tune.optuna_sampler import Optuna
from gdjax.tune.result import TuneResult
from gdjax.tune.samplers import Grid, Random, Sobol
from gdjax.tune.schedulers import PBT, Hyperband, SuccessiveHalving
from gdjax.tune.space import Choice, IntUniform, Space, Uniform
from gdjax.tune.trials import Book, Trial

FORMAT = 1
Scheduler = SuccessiveHalving | Hyperband | PBT


class Search:
    """The state of one search: its problem, plan, book, live programs and checkpoints."""

    def __init__(
        self,
        problem: pop.Problem,
        scheduler: Scheduler | None,
        book: Book,
        epochs: int,
        tune_dir: Path | None,
        callback: Callable[[dict], None] | None,
        fingerprint: dict,
        seed: int,
    ) -> None:
        self.problem = problem
        self.space = problem.space
        self.scheduler = scheduler
        self.book = book
        self.epochs = epochs
        self.tune_dir = tune_dir
        self.callback = callback
        self.fingerprint = fingerprint
        self.rng = np.random.default_rng([seed, 1])  # PBT's choices
        self.rungs: list[dict] = []
        self.stage = 0
        self.resumed_from: int | None = None

    # --- programs -------------------------------------------------------------------------

    def add_trials(self, configs: list[dict], bracket: int = 0) -> list[int]:
        """New trials for ``configs``; returns their numbers."""
        start = len(self.book.trials)
        for i, config in enumerate(configs):
            self.book.trials.append(Trial(start + i, dict(config), bracket=bracket))
        return list(range(start, start + len(configs)))

    def start_groups(self, numbers: list[int]) -> list[pop.Group]:
        """One program per combination of static values, in order of first appearance."""
        by_static: dict[str, tuple[dict, list[int]]] = {}
        for n in numbers:
            config = self.book.trials[n].config
            static = {k: config[k] for k in self.space.static_names if config[k] is not None}
            by_static.setdefault(repr(sorted(static.items())), (static, []))[1].append(n)
        groups = []
        for static, members in by_static.values():
            configs = [self.book.trials[n].config for n in members]
            groups.append(pop.start(self.problem, static, members, self.problem.inputs(configs)))
        return groups

    def prepare(self, group: pop.Group, sizes: list[int]) -> threading.Thread:
        """Build the programs for ``group``'s later, smaller sizes on a background thread,
        while ``group`` trains (XLA compiles them meanwhile; the runs made here are dropped)."""

        def work() -> None:
            inputs, keys = pop.member_inputs(group), group.run.key
            for k in sizes:
                rows = {name: v[:k] for name, v in inputs.items()}
                key = keys[:k] if self.problem.seed_per_trial else keys
                try:
                    pop.start(self.problem, group.static, group.trials[:k], rows, key)
                except Exception:  # the real start raises it again, named
                    return

        thread = threading.Thread(target=work, name="gdjax-tune-prepare", daemon=True)
        thread.start()
        return thread

    def advance(self, group: pop.Group, epoch: int) -> None:
        """Train ``group`` until its members have completed ``epoch`` epochs."""
        drive(group.run, epoch, on_epoch=self.book.on_epoch(group))

    # --- checkpoints ----------------------------------------------------------------------

    def save(self, position: dict, groups: list[pop.Group]) -> None:
        """End of a stage: checkpoint (with ``tune_dir``) and tell the callback."""
        self.stage += 1
        if self.tune_dir is not None:
            meta, arrays = self._snapshot(position, groups)
            store.save(self.tune_dir, self.stage, meta, arrays)
        if self.callback is not None:
            self.callback(
                {
                    "stage": self.stage,
                    "position": dict(position),
                    "member_epochs": self.book.compute,
                    "seconds": self.book.seconds(),
                    "live": [int(n) for g in groups for n in g.trials],
                }
            )

    def _snapshot(self, position: dict, groups: list[pop.Group]) -> tuple[dict, dict]:
        book = self.book
        arrays: dict[str, np.ndarray] = {}
        for j, g in enumerate(groups):
            for k, v in pop.member_inputs(g).items():
                arrays[f"g{j}.in.{k}"] = v
            if self.problem.seed_per_trial:
                arrays[f"g{j}.key"] = np.asarray(jax.random.key_data(g.run.key))
            for i, leaf in enumerate(jax.tree.leaves(g.run.state)):
                arrays[f"g{j}.state.{i}"] = np.asarray(leaf)
        for t in book.trials:
            for k, values in t.history.items():
                arrays[f"t{t.number}.{k}"] = np.stack(values)
        for name in ("best_params", "best_model_state"):
            for i, leaf in enumerate(jax.tree.leaves(getattr(book, name))):
                arrays[f"{name}.{i}"] = np.asarray(leaf)
        meta = {
            "format": FORMAT,
            "stage": self.stage,
            "position": position,
            "fingerprint": self.fingerprint,
            "trials": [
                {
                    "number": t.number,
                    "config": t.config,
                    "epochs": t.epochs,
                    "objective": t.objective,
                    "status": t.status,
                    "bracket": t.bracket,
                    "schedule": t.schedule,
                    "history": list(t.history),
                }
                for t in book.trials
            ],
            "groups": [
                {"static": g.static, "trials": g.trials.tolist(), "active": g.active.tolist()}
                for g in groups
            ],
            "book": {
                "compute": book.compute,
                "timeline": book.timeline,
                "best_seen": book.best_seen,
                "best_number": book.best_number,
                "seconds": book.seconds(),
            },
            "rungs": self.rungs,
            "rng": self.rng.bit_generator.state,
        }
        return store.jsonable(meta), arrays

    def restore(self) -> tuple[dict, list[pop.Group]] | None:
        """Load the newest checkpoint of ``tune_dir``: ``(position, live groups)``."""
        if self.tune_dir is None:
            return None
        loaded = store.load(self.tune_dir)
        if loaded is None:
            return None
        meta, arrays = loaded
        if meta.get("format") != FORMAT:
            raise ValueError(f"tune_dir {self.tune_dir} holds checkpoints of another format")
        diff = store.differences(meta["fingerprint"], self.fingerprint)
        if diff:
            raise ValueError(
                f"tune_dir {self.tune_dir} holds a different search; it differs in "
                + "; ".join(diff)
                + " (use another tune_dir, or the same arguments to resume)"
            )
        book = self.book
        book.trials[:] = []
        for rec in meta["trials"]:
            t = Trial(
                rec["number"],
                rec["config"],
                epochs=rec["epochs"],
                objective=float(rec["objective"]),
                status=rec["status"],
                bracket=rec["bracket"],
                schedule=rec["schedule"],
            )
            t.history = {k: list(arrays[f"t{t.number}.{k}"]) for k in rec["history"]}
            book.trials.append(t)
        b = meta["book"]
        book.compute = book.compute_before = b["compute"]
        book.timeline = b["timeline"]
        book.best_seen = float(b["best_seen"])
        book.best_number = b["best_number"]
        book.elapsed_before = b["seconds"]
        if book.best_number is not None:
            static = {
                k: v
                for k, v in book.trials[book.best_number].config.items()
                if k in self.space.static_names and v is not None
            }
            _, params, model_state, _ = self.problem.parts(static)
            like = jax.eval_shape(params, jax.random.key(0)) if callable(params) else params
            for name, tree in (("best_params", like), ("best_model_state", model_state)):
                leaves = [arrays[f"{name}.{i}"] for i in range(len(jax.tree.leaves(tree)))]
                setattr(book, name, jax.tree.unflatten(jax.tree.structure(tree), leaves))
        self.rungs = meta["rungs"]
        self.rng.bit_generator.state = meta["rng"]
        self.stage = self.resumed_from = meta["stage"]
        groups = []
        for j, rec in enumerate(meta["groups"]):
            inputs = {k: arrays[f"g{j}.in.{k}"] for k in self.space.input_names}
            keys = (
                jax.random.wrap_key_data(arrays[f"g{j}.key"])
                if self.problem.seed_per_trial
                else None
            )
            g = pop.start(self.problem, rec["static"], rec["trials"], inputs, keys)
            leaves, treedef = jax.tree.flatten(g.run.state)
            saved = [arrays[f"g{j}.state.{i}"] for i in range(len(leaves))]
            for now, old in zip(leaves, saved, strict=True):
                if now.shape != old.shape or now.dtype != old.dtype:
                    raise ValueError(
                        f"tune_dir {self.tune_dir}: a saved training state does not fit this "
                        f"search's programs ({old.shape} {old.dtype} vs {now.shape} {now.dtype})"
                    )
            g.run.state = jax.device_put(jax.tree.unflatten(treedef, saved))
            g.active = np.asarray(rec["active"], bool)
            groups.append(g)
        return meta["position"], groups

    # --- the result -----------------------------------------------------------------------

    def result(self) -> TuneResult:
        book = self.book
        best = None if book.best_number is None else book.trials[book.best_number]
        for t in book.trials:
            t.history = {k: np.stack(v) for k, v in t.history.items()}
        return TuneResult(
            trials=book.trials,
            objective=book.objective,
            mode=book.mode,
            best=best,
            best_params=book.best_params,
            best_model_state=book.best_model_state,
            member_epochs=book.compute,
            seconds=book.seconds(),
            timeline=book.timeline,
            rungs=self.rungs,
            resumed_from=self.resumed_from,
            member_epochs_here=book.compute - book.compute_before,
            space=self.space,
        )


# --- schedules ----------------------------------------------------------------------------


def _halving(s: Search, brackets: list[tuple[list[dict], list[int]]]) -> None:
    """Successive halving over each bracket (one bracket with one rung: a plain search)."""
    b0, k0, groups = 0, 0, None
    restored = s.restore()
    if restored is not None:
        position, live = restored
        b0, k0, groups = position["bracket"], position["rung"], live
        if k0 >= len(brackets[b0][1]):
            b0, k0, groups = b0 + 1, 0, None
    else:
        for b, (configs, _) in enumerate(brackets):
            s.add_trials(configs, bracket=b)
    offset = sum(len(c) for c, _ in brackets[:b0])
    for b in range(b0, len(brackets)):
        configs, rungs = brackets[b]
        if groups is None:
            groups = s.start_groups(list(range(offset, offset + len(configs))))
        offset += len(configs)
        preparing = None
        if len(groups) == 1 and s.scheduler is not None:  # sizes known: compile them early
            sizes, n = [], groups[0].size
            for _ in rungs[k0 + 1 if b == b0 else 1 :]:
                n = s.scheduler.keep(n)
                sizes.append(n)
            preparing = s.prepare(
                groups[0], [k for k in dict.fromkeys(sizes) if k < groups[0].size]
            )
        for k in range(k0 if b == b0 else 0, len(rungs)):
            for g in groups:
                s.advance(g, rungs[k])
            entered = [int(n) for g in groups for n in g.trials]
            if k == len(rungs) - 1:
                for g in groups:
                    s.book.finish(g, np.arange(g.size), "completed")
                kept, groups = [], []
            else:
                live = [
                    int(n) for g in groups for n, a in zip(g.trials, g.active, strict=True) if a
                ]
                finite = [n for n in live if math.isfinite(s.book.trials[n].objective)]
                kept = s.book.ranked(finite)[: s.scheduler.keep(len(entered))]
                survivors = []
                for g in groups:
                    keep = np.asarray([n in kept for n in g.trials])
                    s.book.finish(g, np.flatnonzero(~keep), f"stopped at rung {k + 1}")
                    if keep.any():
                        survivors.append(pop.take(s.problem, g, np.flatnonzero(keep)))
                groups = survivors
            s.rungs.append({"bracket": b, "epoch": rungs[k], "entered": entered, "kept": kept})
            done = not groups
            s.save({"bracket": b, "rung": len(rungs) if done else k + 1}, groups)
            if done:
                break
        if preparing is not None:
            preparing.join()
        groups = None


def _pbt(s: Search, configs: list[dict]) -> None:
    """Population-based training of ``configs`` in one program."""
    sched = s.scheduler
    bounds = sched.boundaries(s.epochs)
    restored = s.restore()
    if restored is not None:
        position, groups = restored
        i0 = position["interval"]
    else:
        groups = s.start_groups(s.add_trials(configs))
        i0 = 0
    if not groups:
        return
    (g,) = groups
    for i in range(i0, len(bounds)):
        s.advance(g, bounds[i])
        _exploit_explore(s, g, bounds[i])
        s.save({"interval": i + 1}, [g])
    s.advance(g, s.epochs)
    s.book.finish(g, np.arange(g.size), "completed")
    s.save({"interval": len(bounds) + 1}, [])


def _exploit_explore(s: Search, g: pop.Group, epoch: int) -> None:
    """The worst members copy a random one of the best and move its hyperparameters."""
    book, sched, rng = s.book, s.scheduler, s.rng
    order = book.ranked(g.trials)
    q = sched.replaced(len(order))
    top, bottom = order[:q], order[-q:]
    where = {int(n): i for i, n in enumerate(g.trials)}
    donors = [int(top[rng.integers(len(top))]) for _ in bottom]
    dst = np.asarray([where[n] for n in bottom])
    src = np.asarray([where[n] for n in donors])
    pop.copy_rows(g, dst, src)
    inputs = pop.member_inputs(g)
    for n, donor, pos in zip(bottom, donors, dst, strict=True):
        config = _explore(s.space, book.trials[donor].final_config(), sched, rng)
        trial = book.trials[n]
        trial.schedule.append({"epoch": epoch, "donor": donor, "config": config})
        trial.objective = book.trials[donor].objective
        trial.status = "running"
        for name in s.space.input_names:
            inputs[name][pos] = s.space.input_value(name, config)
    pop.set_inputs(g, inputs)


def _explore(space: Space, config: dict, sched: PBT, rng: np.random.Generator) -> dict:
    """Perturb or resample each hyperparameter (see :class:`~gdjax.tune.PBT`)."""
    out = dict(config)
    for name in space.input_names:
        dim, value = space.dims[name], out[name]
        if value is None:
            continue
        if rng.random() < sched.resample:
            out[name] = dim.from_unit(float(rng.random()))
        elif isinstance(dim, Uniform | IntUniform):
            out[name] = dim.clip(value * float(sched.perturb[rng.integers(len(sched.perturb))]))
        elif isinstance(dim, Choice):
            i = list(dim.values).index(value) + int(rng.choice([-1, 1]))
            out[name] = dim.values[min(max(i, 0), len(dim.values) - 1)]
    settled = space.settle(out)
    for name in space.names:  # a dimension that became active gets a fresh value
        if settled[name] is None and space.active(name, settled):
            settled[name] = space.dims[name].from_unit(float(rng.random()))
    return settled


# --- the entry point ------------------------------------------------------------------------


def _recorded_keys(problem: pop.Problem, static: dict) -> set[str]:
    """The history keys a run of ``problem`` records (the loss's aux entries found by
    evaluating it abstractly: traced, never compiled)."""
    opts = problem.options
    sets = validation_sets(opts.validation_data, problem.data)
    known = {"loss", *hist.validation_keys([n for n, _ in sets], list(opts.metrics or {}))}
    if opts.reduce_on_plateau is not None:
        known.add("lr_scale")
    loss_fn, params, model_state, _ = problem.parts(static)
    like = jax.eval_shape(params, jax.random.key(0)) if callable(params) else params
    call = LossCall(loss_fn, model_state is not None, opts.takes_key, problem.takes_hparams)
    n = _checks.data_set("data", problem.data)
    bs = min(static.get("batch_size", opts.batch_size) or n, n)
    hp = {
        k: jax.ShapeDtypeStruct((), pop.input_dtype(problem.space, k))
        for k in problem.space.input_names
    }
    aux = probe_loss(
        call, abstract(like), abstract(model_state), abstract_batch(problem.data, bs), hp
    )
    return known | {k for k, _ in aux}


def _fingerprint(space, sampler, scheduler, objective, mode, seed, per_trial, opts, data) -> dict:
    simple = {
        f.name: repr(getattr(opts, f.name))
        for f in dataclasses.fields(opts)
        if not callable(getattr(opts, f.name))
        and f.name not in ("validation_data", "metrics", "progress", "progress_every_steps")
    }
    shapes = lambda tree: [f"{a.shape} {a.dtype}" for a in jax.tree.leaves(tree)]  # noqa: E731
    return store.jsonable(
        {
            "space": repr(space),
            "sampler": repr(sampler),
            "scheduler": repr(scheduler),
            "objective": objective,
            "mode": mode,
            "seed": seed,
            "seed_per_trial": per_trial,
            "options": simple,
            "metrics": sorted(opts.metrics or {}),
            "data": shapes(data),
            "validation_data": shapes(opts.validation_data),
        }
    )


@with_option_signature
def search(
    loss_fn: Callable[..., Any],
    params: Any,
    optimizer: Callable[[dict], Any],
    data: Any,
    *,
    space: Mapping[str, Any] | Space,
    sampler: Grid | Random | Sobol | Optuna,
    scheduler: Scheduler | None = None,
    objective: str = "val_loss",
    mode: str = "min",
    seed: int = 0,
    seed_per_trial: bool = False,
    model_state: Any = None,
    loss_takes_hparams: bool = False,
    build: Callable[[dict], tuple] | None = None,
    tune_dir: str | Path | None = None,
    callback: Callable[[dict], None] | None = None,
    **options: Any,
) -> TuneResult:
    """Search ``space`` for the hyperparameters that optimise ``objective``.

    Trials that share their static values (batch size, a width) train together as the
    members of one vmapped program, exactly as :func:`gdjax.sweep` would train them; a
    scheduler stops the poor ones early (successive halving, Hyperband: the survivors of
    each rung are repacked into a smaller program) or lets the population copy its best
    (:class:`~gdjax.tune.PBT`).

    Args:
        loss_fn: The loss, as for :func:`gdjax.sweep` (``hparams=`` with
            ``loss_takes_hparams``).
        params: Initial parameters, or ``init(key) -> params``.
        optimizer: ``optimizer(hparams) -> GradientTransformation``; ``hparams`` holds the
            trial's values: arrays for program inputs, Python values for static dimensions.
        data: Training data (validation data and metrics go in the options).
        space: ``{name: dimension}`` (see :mod:`gdjax.tune.space`).
        sampler: :class:`Grid`, :class:`Random`, :class:`Sobol` or :class:`Optuna`.
        scheduler: ``None`` (every trial trains ``epochs``), :class:`SuccessiveHalving`,
            :class:`Hyperband` or :class:`PBT`.
        objective: The history key to optimise, e.g. ``"val_loss"`` or ``"val_acc"``; its
            value at a trial's last epoch is the trial's score.
        mode: ``"min"`` or ``"max"``.
        seed: Seed of the sampler, of PBT's choices, and of the trials' keys.
        seed_per_trial: Give each trial its own key (initialisation, data order); by default
            all trials share one, so they differ only in their hyperparameters.
        model_state: Initial model state (see :func:`gdjax.fit`).
        loss_takes_hparams: Pass the trial's program inputs to the loss as ``hparams=``.
        build: ``build(static) -> (loss_fn, params[, model_state])`` for spaces with static
            dimensions other than ``batch_size`` (called once per combination).
        tune_dir: Checkpoint after every rung (PBT: every interval) here, and resume from the
            newest checkpoint if it holds this search.
        callback: Called after every rung or interval with a summary dict.
        **options: The training options of :class:`gdjax.TrainOptions`; ``epochs`` is the
            most a trial trains.

    Returns:
        A :class:`TuneResult`.

    Examples:
        >>> import jax.numpy as jnp, optax
        >>> from gdjax import tune
        >>> x = jnp.linspace(-1, 1, 64)[:, None]; y = 3 * x[:, 0]
        >>> loss = lambda w, b: jnp.mean((b[0][:, 0] * w - b[1]) ** 2)
        >>> res = tune.search(loss, jnp.zeros(()), lambda hp: optax.sgd(hp["lr"]), (x, y),
        ...     space={"lr": tune.LogUniform(1e-3, 1.0)}, sampler=tune.Grid(points=4),
        ...     objective="loss", batch_size=16, epochs=3)
        >>> res.best_config
        {'lr': 1.0}
    """
    space = Space(space)
    if "batch_size" in space.names:
        if "batch_size" in options:
            raise ValueError("batch_size is in the space; do not pass it as an option too")
        options["batch_size"] = None
    if options.get("checkpoint_dir") is not None:
        raise ValueError("search checkpoints per rung in tune_dir; do not pass checkpoint_dir")
    opts = make_options("search", options)
    _checks.choice("mode", mode, ("min", "max"))
    _checks.function("optimizer", optimizer)
    if build is None:
        _checks.function("loss_fn", loss_fn)
    else:
        _checks.function("build", build)
    _checks.flag("seed_per_trial", seed_per_trial)
    _checks.python_int("seed", seed, minimum=0)
    if not isinstance(sampler, Grid | Random | Sobol | Optuna):
        raise TypeError(
            f"sampler must be tune.Grid, tune.Random, tune.Sobol or tune.Optuna, got {sampler!r}"
        )
    if scheduler is not None and not isinstance(scheduler, SuccessiveHalving | PBT):
        raise TypeError(
            "scheduler must be None, tune.SuccessiveHalving, tune.Hyperband or tune.PBT, got "
            f"{scheduler!r}"
        )
    if scheduler is not None:
        scheduler.check(opts.epochs)  # a budget smaller than one rung
    if isinstance(sampler, Optuna):
        if scheduler is not None:
            raise ValueError(
                "an Optuna sampler stops trials with the study's pruner; pass scheduler=None"
            )
        if tune_dir is not None:
            raise ValueError(
                "an Optuna study keeps its own records: resume it with optuna's storage "
                "(optuna.create_study(storage=..., load_if_exists=True)), not tune_dir"
            )
        sampler.check(space, mode)
    if isinstance(scheduler, Hyperband) and isinstance(sampler, Grid):
        raise ValueError("Hyperband sizes its brackets itself: use tune.Random() or tune.Sobol()")
    if isinstance(scheduler, PBT) and space.static_names:
        raise ValueError(
            f"PBT trains its population in one program, so the space cannot have static "
            f"dimensions ({', '.join(space.static_names)}): run one search per value"
        )
    data = jax.device_put(data)
    if opts.validation_data is not None:
        opts = dataclasses.replace(opts, validation_data=jax.device_put(opts.validation_data))
    problem = pop.Problem(
        loss_fn=loss_fn,
        params=params,
        model_state=model_state,
        optimizer=optimizer,
        data=data,
        options=opts,
        space=space,
        build=build,
        takes_hparams=_checks.flag("loss_takes_hparams", loss_takes_hparams),
        seed=seed,
        seed_per_trial=seed_per_trial,
    )
    rng = np.random.default_rng(seed)
    plan: Any
    if isinstance(sampler, Optuna):
        plan = None
    elif isinstance(scheduler, Hyperband):
        brackets = scheduler.brackets(opts.epochs)
        configs = sampler.draw(space, sum(n for n, _ in brackets), rng)
        plan, i = [], 0
        for n, rungs in brackets:
            plan.append((configs[i : i + n], rungs))
            i += n
    else:
        configs = sampler.draw(space, None, rng)
        if isinstance(scheduler, PBT) and len(configs) < 2:
            raise ValueError("PBT needs a population of at least 2 trials")
        if isinstance(scheduler, PBT):
            plan = configs
        else:
            rungs = scheduler.rungs(opts.epochs) if scheduler is not None else [opts.epochs]
            plan = [(configs, rungs)]
    if isinstance(plan, list) and plan:
        first = plan[0] if isinstance(plan[0], dict) else plan[0][0][0]
    else:  # an optuna search: the first value of each static dimension
        first = space.from_unit([[0.0] * len(space.names)])[0]
    static0 = {k: first[k] for k in space.static_names if first[k] is not None}
    if objective not in _recorded_keys(problem, static0):
        known = sorted(_recorded_keys(problem, static0))
        raise ValueError(
            f"objective={objective!r} is not recorded; the history will hold {known}"
            + ("" if opts.validation_data is not None else " (pass validation_data for val_*)")
        )
    book = Book(objective, mode, [])
    fp = _fingerprint(space, sampler, scheduler, objective, mode, seed, seed_per_trial, opts, data)
    s = Search(
        problem,
        scheduler,
        book,
        opts.epochs,
        None if tune_dir is None else Path(tune_dir),
        callback,
        fp,
        seed,
    )
    if isinstance(sampler, Optuna):
        sampler.run(s)
    elif isinstance(scheduler, PBT):
        _pbt(s, plan)
    else:
        _halving(s, plan)
    return s.result()
