"""An optuna study as the sampler of a search (ask-tell), ``batch`` trials per vmapped program.

Optuna proposes; gdjax trains. The search asks the study for ``batch`` trials, translates each
dimension of the space into an optuna distribution (``Uniform`` → ``suggest_float``,
``LogUniform`` → ``suggest_float(log=True)``, ``IntUniform`` → ``suggest_int``, ``Choice``
→ ``suggest_categorical``; a conditional dimension is suggested only when active), trains the
batch as one program (one per combination of static values), and after every epoch reports
each trial's objective (``trial.report(value, epoch)``). A trial the study's pruner stops
(``trial.should_prune()``) is told ``PRUNED`` and frozen at once; when half of a program's
members are frozen, the live ones are repacked into a smaller program (of a power-of-two size,
padded with frozen members, so that a study compiles at most ``log2(batch) + 1`` sizes).
Finished trials are told their objective (``FAIL`` if it is not finite).

Samplers that propose from the results so far (TPE) see a batch's results only after the
batch: a smaller ``batch`` adapts sooner, a larger one trains more trials per program.
TPE's ``constant_liar`` (on by default in optuna 5) keeps the trials of one batch apart.

Requires ``optuna`` (``pip install "gdjax[tune]"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gdjax import _checks
from gdjax.tune import population as pop
from gdjax.tune.space import Choice, IntUniform, LogUniform, Space, Uniform

if TYPE_CHECKING:  # pragma: no cover
    from gdjax.tune.search import Search


@dataclass(frozen=True)
class Optuna:
    """Ask an optuna study for trials, ``batch`` at a time, until ``n_trials`` ran.

    Args:
        study: An ``optuna.Study`` (single objective; its direction must match ``mode``).
        n_trials: Trials to run.
        batch: Trials trained together in one program.
    """

    study: Any
    n_trials: int
    batch: int = 8

    def __post_init__(self) -> None:
        import optuna

        if not isinstance(self.study, optuna.Study):
            raise TypeError(f"Optuna(study=...) must be an optuna.Study, got {self.study!r}")
        _checks.python_int("Optuna(n_trials=...)", self.n_trials)
        _checks.python_int("Optuna(batch=...)", self.batch)

    def __repr__(self) -> str:
        return (
            f"Optuna(study={self.study.study_name!r}, n_trials={self.n_trials}, batch={self.batch})"
        )

    def check(self, space: Space, mode: str) -> None:
        """Refuse a multi-objective study or one optimising the other way."""
        import optuna

        directions = self.study.directions
        if len(directions) != 1:
            raise ValueError("Optuna: the study must have a single objective")
        want = (
            optuna.study.StudyDirection.MINIMIZE
            if mode == "min"
            else optuna.study.StudyDirection.MAXIMIZE
        )
        if directions[0] != want:
            raise ValueError(
                f"Optuna: the study's direction is {directions[0].name.lower()}, but mode={mode!r}"
            )
        for name, dim in space.dims.items():
            if isinstance(dim, Choice) and not all(
                v is None or isinstance(v, bool | int | float | str) for v in dim.values
            ):
                raise TypeError(
                    f"space[{name!r}]: optuna's categorical values must be None, bool, int, "
                    "float or str"
                )

    def run(self, s: Search) -> None:
        """Ask, train, report, prune and tell until ``n_trials`` trials ran."""
        left = self.n_trials
        while left > 0:
            asked = [self.study.ask() for _ in range(min(self.batch, left))]
            left -= len(asked)
            numbers = s.add_trials([suggest(t, s.space) for t in asked])
            by_number = dict(zip(numbers, asked, strict=True))
            for group in s.start_groups(numbers):
                _train(s, group, by_number)


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """The configuration an optuna trial suggests for ``space`` (define-by-run)."""
    config: dict[str, Any] = {}
    for name, dim in space.dims.items():
        if not space.active(name, config):
            config[name] = None
        elif isinstance(dim, LogUniform):
            config[name] = trial.suggest_float(name, dim.low, dim.high, log=True)
        elif isinstance(dim, Uniform):
            config[name] = trial.suggest_float(name, dim.low, dim.high)
        elif isinstance(dim, IntUniform):
            config[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        else:
            config[name] = trial.suggest_categorical(name, list(dim.values))
    return config


def _train(s: Search, group: pop.Group, asked: dict[int, Any]) -> None:
    import optuna

    book, told = s.book, set()

    def tell(pos: int, state: Any = None) -> None:
        n = int(group.trials[pos])
        value = book.trials[n].objective
        if state is None and math.isfinite(value):
            asked[n].study.tell(asked[n], value)
        else:  # pruned, or finished with a non-finite objective
            asked[n].study.tell(asked[n], state=state or optuna.trial.TrialState.FAIL)
        told.add(n)

    for epoch in range(1, s.epochs + 1):
        s.advance(group, epoch)
        pruned = []
        for pos, n in enumerate(group.trials):
            trial, record = asked[int(n)], book.trials[int(n)]
            if record.epochs != epoch:  # frozen earlier
                continue
            if math.isfinite(record.objective):
                trial.report(record.objective, epoch)
            if not group.active[pos]:  # stopped on its own this epoch
                book.finish(group, [pos], None)
                tell(pos)
            elif epoch < s.epochs and trial.should_prune():
                pruned.append(pos)
        if pruned:
            book.finish(group, pruned, "pruned")
            for pos in pruned:
                tell(pos, optuna.trial.TrialState.PRUNED)
            pop.freeze(group, np.asarray(pruned))
        live = np.flatnonzero(group.active)
        if live.size == 0:
            break
        if epoch < s.epochs and live.size <= group.size // 2:
            # Repack into the next power of two that holds the live trials (padded with
            # frozen ones): a study then compiles at most log2(batch) + 1 program sizes.
            size = 1 << (int(live.size) - 1).bit_length()
            frozen = np.flatnonzero(~group.active)[: size - live.size]
            group = pop.take(s.problem, group, np.sort(np.concatenate([live, frozen])))
    book.finish(group, np.flatnonzero(group.active), "completed")
    for pos, n in enumerate(group.trials):
        if int(n) not in told:
            tell(pos)
