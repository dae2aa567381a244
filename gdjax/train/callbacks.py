"""Callbacks: code of yours that runs on the host between the compiled chunks of a run.

A callback never runs inside a compiled program: the engine calls it from Python at chunk
boundaries, where it already wakes up (so a run with callbacks computes the same bits as one
without). A :class:`Callback` overrides any of

- ``check()`` — when ``fit``/``sweep`` check their options, before anything is compiled or
  written: raise if the callback cannot work (a log directory that cannot be written);
- ``on_train_begin(run)`` — once, before the first step (of what is left, after a resume);
- ``on_epoch_end(run, epoch, logs)`` — after every epoch, with ``epoch`` (1-based) and that
  epoch's history entries ``logs`` (NumPy arrays; in a sweep each has the members' axis first).
  Returning ``True`` asks the run to stop after this epoch: it is checkpointed as a stop, and
  the result's ``stop_reason`` names the callback;
- ``on_train_end(run)`` — once, when training ends: normally, by a stop, or by an exception
  (``run.error`` holds it; the exception goes on after every callback has run).

``run`` is a :class:`RunInfo`: the parameters, history and settings of the run so far.

In a sweep, each batch size is a program of its own, trained after the other: ``on_epoch_end``
is called for each program's epochs (``run.members`` says which members it trains), and a stop
request stops that program. ``on_train_begin`` and ``on_train_end`` are called once per call.

A callback that raises stops the run. The exception goes on with a note naming the callback,
the hook and the epoch; the checkpoints already written are intact (the epoch's checkpoint is
saved before its callbacks run), so calling again with the same arguments resumes.

Examples:
    >>> import jax, jax.numpy as jnp, optax, gdjax
    >>> class StopBelow(gdjax.Callback):
    ...     def on_epoch_end(self, run, epoch, logs):
    ...         return logs["loss"] < 0.01  # True: stop after this epoch
    >>> x = jnp.linspace(-1, 1, 32); y = 2 * x
    >>> def loss(p, batch):
    ...     return jnp.mean((batch[0] * p - batch[1]) ** 2)
    >>> res = gdjax.fit(loss, jnp.zeros(()), optax.sgd(0.5), (x, y), batch_size=8,
    ...                 epochs=50, key=jax.random.key(0), callbacks=[StopBelow()])
    >>> res.epochs_run < 50, res.stop_reason
    (True, 'stopped by callback StopBelow')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from gdjax.train import history as hist
from gdjax.train.ema import average_of

if TYPE_CHECKING:
    from gdjax.train.driver import Run


class Callback:
    """Base class of callbacks: override the hooks you need (each does nothing here)."""

    def check(self) -> None:
        """Raise if this callback cannot work, before anything is compiled or written."""

    def on_train_begin(self, run: RunInfo) -> None:
        """Called once before the first step."""

    def on_epoch_end(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> bool | None:
        """Called after every epoch; return ``True`` to stop training after it."""
        return None

    def on_train_end(self, run: RunInfo) -> None:
        """Called once when training ends (``run.error`` is the exception that ended it)."""


def name_of(callback: Callback) -> str:
    """How messages name a callback: its class name."""
    return type(callback).__name__


def check_callbacks(callbacks: Any) -> tuple[Callback, ...]:
    """``callbacks`` as a tuple of :class:`Callback`, each one's ``check()`` passed."""
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise TypeError(
            f"callbacks must be a list of gdjax.Callback objects, got {type(callbacks).__name__}"
            + (" (put it in a list: callbacks=[...])" if isinstance(callbacks, Callback) else "")
        )
    out = tuple(callbacks)
    for i, cb in enumerate(out):
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks[{i}] must be a gdjax.Callback (subclass it and override "
                f"on_epoch_end, ...), got {type(cb).__name__}: {cb!r}"
            )
        try:
            cb.check()
        except Exception as err:
            err.add_note(f"raised by callbacks[{i}] ({name_of(cb)}).check(), before training")
            raise
    return out


def recorded_keys(spec: Any) -> list[str]:
    """The per-epoch scalar history keys a run with ``spec`` records (diagnostics left out)."""
    keys = ["loss", "nonfinite_steps", *(k for k, shape in spec.aux if shape == ())]
    keys += hist.validation_keys([s[0] for s in spec.val_sets], [m for m, _ in spec.metrics])
    if spec.plateau is not None:
        keys.append("lr_scale")
    return keys


class RunInfo:
    """What a callback sees of a run: settings, and the state and history so far.

    Reading ``params`` (or another array) waits for the programs that compute it and copies
    nothing; in a sweep every array has the members' axis first. The arrays are the run's own
    buffers, which the next compiled chunk takes over (donates): copy what you keep beyond the
    call (``np.array(x, copy=True)``).

    Attributes:
        caller: ``"fit"`` or ``"sweep"``.
        epochs: The number of epochs asked for.
        members: In a sweep, the indices (into the sweep's members) of the members the current
            program trains; ``None`` for ``fit``.
        hparams: In a sweep, those members' hyperparameters ``{name: array}``; ``{}`` for fit.
        error: In ``on_train_end``, the exception that ended training, else ``None``.
    """

    def __init__(
        self,
        run: Run,
        caller: str,
        epochs: int,
        members: np.ndarray | None = None,
        hparams: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._run = run
        self.caller = caller
        self.epochs = epochs
        self.members = members
        self.hparams = hparams or {}
        self.error: BaseException | None = None

    @property
    def epoch(self) -> int:
        """Epochs completed (the most any member completed, in a sweep)."""
        return int(np.max(np.asarray(self._run.state.epoch)))

    @property
    def batch_size(self) -> int:
        """The batch size of the current program."""
        return self._run.spec.batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch."""
        return self._run.spec.steps_per_epoch

    @property
    def checkpoint_dir(self) -> Any:
        """The run's ``checkpoint_dir`` option (for a sweep, the current program's folder)."""
        return self._run.options.checkpoint_dir

    @property
    def keys(self) -> list[str]:
        """The scalar history keys recorded every epoch (loss, aux, validation, lr_scale)."""
        return recorded_keys(self._run.spec)

    @property
    def params(self) -> Any:
        """The current parameters."""
        return self._run.state.params

    @property
    def model_state(self) -> Any:
        """The current model state (``None`` without one)."""
        return self._run.state.model_state if self._run.spec.loss.has_state else None

    @property
    def opt_state(self) -> Any:
        """The current optimizer state."""
        return self._run.state.opt_state

    @property
    def ema_params(self) -> Any:
        """The weights' moving average with ``ema=``, else ``None``."""
        return average_of(self._run.state.opt_state, self._run.state.params)

    @property
    def history(self) -> dict[str, np.ndarray]:
        """The history so far, stacked as in the result (members first in a sweep)."""
        return hist.stack(self._run.history, member_axis=self._run.members is not None)


class Hooks:
    """Calls a run's callbacks: what the driver and the entry points use.

    One ``Hooks`` serves one ``fit`` or ``sweep`` call; a sweep of ``programs`` batch-size
    groups calls :meth:`train_begin` and :meth:`train_end` once per group, and the callbacks'
    own ``on_train_begin`` / ``on_train_end`` run once for the call.
    """

    def __init__(
        self, callbacks: Sequence[Callback], caller: str, epochs: int, programs: int = 1
    ) -> None:
        self.callbacks = tuple(callbacks)
        self.caller = caller
        self.epochs = epochs
        self._programs_left = programs
        self._begun = False
        self._ended = False
        self._members: np.ndarray | None = None
        self._hparams: dict[str, np.ndarray] = {}

    def program(self, members: np.ndarray, hparams: dict[str, np.ndarray]) -> None:
        """Say which members the next program of a sweep trains, and their hyperparameters."""
        self._members, self._hparams = np.asarray(members), hparams

    def _info(self, run: Run) -> RunInfo:
        return RunInfo(run, self.caller, self.epochs, self._members, self._hparams)

    def _call(self, run: Run, cb: Callback, hook: str, *args: Any) -> Any:
        try:
            return getattr(cb, hook)(*args)
        except Exception as err:
            where = f" at the end of epoch {args[1]}" if hook == "on_epoch_end" else ""
            note = f"raised by callback {name_of(cb)} in {hook}{where}; training stopped"
            if run.checkpointer is not None:
                note += (
                    f". The checkpoints written in {run.options.checkpoint_dir} are intact: "
                    "call again with the same arguments to resume"
                )
            err.add_note(note)
            raise

    def train_begin(self, run: Run) -> None:
        """Call ``on_train_begin`` (the first time only)."""
        if self._begun:
            return
        self._begun = True
        info = self._info(run)
        for cb in self.callbacks:
            self._call(run, cb, "on_train_begin", info)

    def epoch_end(self, run: Run, epoch: int, stats: dict) -> bool:
        """Call ``on_epoch_end`` of every callback; return whether one asked to stop."""
        logs = {
            k: np.asarray(v) for k, v in jax.device_get(stats).items() if k not in hist.CONTROL_KEYS
        }
        info = self._info(run)
        asked = [
            name_of(cb)
            for cb in self.callbacks
            if self._call(run, cb, "on_epoch_end", info, epoch, logs)
        ]
        if asked and epoch < self.epochs:
            run.stop_request = f"stopped by callback {', '.join(asked)}"
        return bool(asked)

    def train_end(self, run: Run, error: BaseException | None) -> None:
        """Call ``on_train_end`` after the last program, or at once after an error.

        Every callback's ``on_train_end`` runs; the first one's exception is raised after all
        ran (when training itself failed, they are added to its notes instead).
        """
        self._programs_left -= 1
        if self._ended or (error is None and self._programs_left > 0):
            return
        self._ended = True
        info = self._info(run)
        info.error = error
        first: Exception | None = None
        for cb in self.callbacks:
            try:
                self._call(run, cb, "on_train_end", info)
            except Exception as err:
                if error is not None:
                    error.add_note(f"callback {name_of(cb)}'s on_train_end also raised: {err!r}")
                elif first is None:
                    first = err
        if first is not None:
            raise first


__all__ = ["Callback", "Hooks", "RunInfo", "check_callbacks", "recorded_keys"]
