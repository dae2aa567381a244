"""The training options, declared once for ``fit`` and ``sweep`` and checked once.

:class:`TrainOptions` holds every keyword option the two entry points share; ``fit`` and
``sweep`` accept them as keyword arguments (``fit(..., batch_size=32, epochs=10)``) and build
one ``TrainOptions``, whose construction checks each value's type and range. Checks that need
the data (``batch_size <= N``, a monitored history key that exists) happen when the run's
:class:`~gdjax.train.spec.Spec` is built.

Options only one entry point has are its own arguments: ``fit`` takes ``key``, ``mesh`` and
``data_axis``; ``sweep`` takes ``hparams``, ``seeds`` and ``loss_takes_hparams``.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gdjax import _checks
from gdjax.train.callbacks import Callback, check_callbacks
from gdjax.train.diagnostics import Diagnostics
from gdjax.train.ema import EMA
from gdjax.train.precision import Precision, as_precision
from gdjax.train.stopping import EarlyStopping, ReduceOnPlateau

NONFINITE_POLICIES = ("stop", "skip", "raise")


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the keyword options of :func:`gdjax.fit` and :func:`gdjax.sweep`.

    Attributes:
        batch_size: ``None`` for batch gradient descent (all N examples each step), ``1`` for
            stochastic gradient descent, anything in between for mini-batches. Required.
        epochs: Number of passes over the data (``>= 1``). Required.
        validation_data: Held-out data with the layout of ``data``, evaluated after every
            epoch (history keys ``val_loss`` and ``val_<metric>``); or a dict ``{name: data}``
            of several sets, recorded as ``<name>_loss`` and ``<name>_<metric>``.
        metrics: ``{"name": fn}`` computed on ``validation_data``; ``fn(params, batch)``
            (``fn(params, model_state, batch)`` with a model state) returns the batch mean.
        eval_loss_fn: Loss used for validation (e.g. without dropout); same signature as
            the training loss; defaults to it.
        eval_batch_size: Validation batch size (default ``max(batch_size, 1024)``, capped by
            the set's size).
        takes_key: Pass a fresh PRNG key to the loss each step as ``key=``.
        shuffle: Reshuffle every epoch (else the data order is kept).
        drop_last: Drop the last, smaller batch of each epoch (else it is a step of its own).
        early_stopping: A :class:`~gdjax.EarlyStopping` rule.
        tol: Stop when the epoch's training loss changes by less than ``tol``.
        reduce_on_plateau: A :class:`~gdjax.ReduceOnPlateau` rule: the engine appends a
            :func:`~gdjax.reduce_on_plateau` transformation to the optimizer (its scale lives
            in the optimizer state) and feeds it the monitored value after every epoch.
        on_nonfinite: A step whose loss, new parameters, optimizer state or model state is not
            finite is never applied. ``"stop"`` ends training after that epoch with a warning
            and returns the last finite state; ``"skip"`` drops the step and goes on (counted
            in ``history["nonfinite_steps"]``); ``"raise"`` raises ``FloatingPointError``.
        diagnostics: ``True`` or a :class:`~gdjax.Diagnostics` for per-epoch gradient
            statistics in the history.
        record_steps: Also record every step's loss as ``history["step_loss"]``.
        checkpoint_dir: Save checkpoints here with orbax; if it already holds checkpoints of
            this run, resume from the newest valid one (bit-identical to an uninterrupted run).
        checkpoint_every: Save every this many epochs (and always at the end).
        checkpoint_every_steps: Also save every this many steps within an epoch.
        keep_checkpoints: How many recent checkpoints to keep.
        progress: Show a tqdm progress bar, updated between compiled chunks (after every
            epoch, and within one at step checkpoints and every ``progress_every_steps``).
            ``None`` (the default): shown when standard error is a terminal, and never under
            pytest.
        progress_every_steps: With ``progress``, also update the bar every this many steps.
        callbacks: :class:`~gdjax.Callback` objects run on the host between compiled chunks:
            at the start of training, after every epoch with its history entries (a callback
            may ask to stop there) and at the end (see :mod:`gdjax.train.callbacks`); built in:
            :class:`~gdjax.CSVLogger`, :class:`~gdjax.TensorBoardLogger`,
            :class:`~gdjax.MLflowLogger`, :class:`~gdjax.BestCheckpoints`. Each one's
            ``check()`` runs here, before anything is compiled or written.
        ema: An :class:`~gdjax.EMA`: keep an exponential moving average of the weights
            (returned as ``ema_params``; validated instead of the weights by default).
        stream_chunk_steps: When ``data`` is a source (:mod:`gdjax.train.sources`), the number
            of steps whose batches are read and sent to the device together (default: as many
            as fill 32 MiB, at most 256). Larger chunks wake Python less often; each costs
            two chunks of host memory (one training, one being read).
        precision: Mixed precision (:mod:`gdjax.train.precision`): ``"bfloat16"`` or
            ``"float16"`` computes the loss in that type with the parameters and optimizer
            state kept in float32; ``"float16"`` adds dynamic loss scaling (history keys
            ``loss_scale`` and ``overflow_steps``). A
            :class:`~gdjax.train.precision.Precision` sets each part.
    """

    batch_size: int | None
    epochs: int
    validation_data: Any = None
    metrics: Mapping[str, Callable[..., Any]] | None = None
    eval_loss_fn: Callable[..., Any] | None = None
    eval_batch_size: int | None = None
    takes_key: bool = False
    shuffle: bool = True
    drop_last: bool = False
    early_stopping: EarlyStopping | None = None
    tol: float | None = None
    reduce_on_plateau: ReduceOnPlateau | None = None
    on_nonfinite: Literal["stop", "skip", "raise"] = "stop"
    diagnostics: bool | Diagnostics | None = None
    record_steps: bool = False
    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int = 1
    checkpoint_every_steps: int | None = None
    keep_checkpoints: int = 3
    progress: bool | None = None
    progress_every_steps: int | None = None
    callbacks: Sequence[Callback] = ()
    ema: EMA | None = None
    stream_chunk_steps: int | None = None
    precision: str | Precision | None = None

    def __post_init__(self) -> None:
        c = _checks
        object.__setattr__(self, "precision", as_precision(self.precision))
        if self.batch_size is not None:
            c.python_int("batch_size", self.batch_size)
        c.python_int("epochs", self.epochs)
        if self.metrics is not None:
            if not isinstance(self.metrics, Mapping):
                raise TypeError(
                    "metrics must be a dict {name: fn(params, batch)}, got "
                    f"{type(self.metrics).__name__}: {self.metrics!r}"
                )
            for name, fn in self.metrics.items():
                if not isinstance(name, str) or not name.isidentifier():
                    raise ValueError(
                        f"metrics names must be identifiers (they name history keys such as "
                        f"'val_<name>'), got {name!r}"
                    )
                c.function(f"metrics[{name!r}]", fn)
        if self.eval_loss_fn is not None:
            c.function("eval_loss_fn", self.eval_loss_fn)
        c.optional_int("eval_batch_size", self.eval_batch_size)
        for name in ("takes_key", "shuffle", "drop_last", "record_steps"):
            c.flag(name, getattr(self, name))
        if self.progress is not None:
            c.flag("progress", self.progress)
        for name, cls in (
            ("early_stopping", EarlyStopping),
            ("reduce_on_plateau", ReduceOnPlateau),
        ):
            rule = getattr(self, name)
            if rule is not None:
                c.instance(name, rule, cls, f"a gdjax.{cls.__name__} or None")
        if self.tol is not None:
            object.__setattr__(self, "tol", c.non_negative_number("tol", self.tol))
        c.choice("on_nonfinite", self.on_nonfinite, NONFINITE_POLICIES)
        if self.diagnostics is not None and not isinstance(self.diagnostics, bool | Diagnostics):
            raise TypeError(
                f"diagnostics must be a bool or gdjax.Diagnostics, got {self.diagnostics!r}"
            )
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, str | os.PathLike):
                raise TypeError(
                    f"checkpoint_dir must be a path (str or os.PathLike), got "
                    f"{type(self.checkpoint_dir).__name__}"
                )
            if not os.fspath(self.checkpoint_dir).strip():
                raise ValueError(
                    "checkpoint_dir is empty; it would write into the current directory: give "
                    "a directory name such as 'runs/exp1'"
                )
        c.python_int("checkpoint_every", self.checkpoint_every)
        c.optional_int("checkpoint_every_steps", self.checkpoint_every_steps)
        c.python_int("keep_checkpoints", self.keep_checkpoints)
        c.optional_int("progress_every_steps", self.progress_every_steps)
        c.optional_int("stream_chunk_steps", self.stream_chunk_steps)
        object.__setattr__(self, "callbacks", check_callbacks(self.callbacks))
        if self.ema is not None:
            c.instance("ema", self.ema, EMA, "a gdjax.EMA or None")

    @property
    def show_progress(self) -> bool:
        """Whether to draw the bar: ``progress``, or when ``None`` whether standard error is a
        terminal outside pytest."""
        if self.progress is not None:
            return self.progress
        stream = sys.stderr
        terminal = stream is not None and stream.isatty()
        return terminal and "PYTEST_CURRENT_TEST" not in os.environ

    @property
    def diagnostics_rule(self) -> Diagnostics | None:
        """``diagnostics`` as a rule (``True`` is the default rule, ``False`` none)."""
        if self.diagnostics is True:
            return Diagnostics()
        return self.diagnostics or None


FIELDS = tuple(f.name for f in dataclasses.fields(TrainOptions))


def make_options(caller: str, options: dict[str, Any]) -> TrainOptions:
    """Build the options from ``caller``'s keyword arguments, naming an unknown one."""
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        raise TypeError(
            f"{caller}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"the training options are: {', '.join(FIELDS)}"
        )
    missing = [k for k in ("batch_size", "epochs") if k not in options]
    if missing:
        raise TypeError(f"{caller}() missing required keyword argument(s): {', '.join(missing)}")
    return TrainOptions(**options)


def with_option_signature(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show ``fn``'s ``**options`` as the keyword arguments of :class:`TrainOptions`.

    ``help(gdjax.fit)`` and ``inspect.signature`` then list every option with its default.
    """
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    taken = {p.name for p in own}
    extra = []
    for f in dataclasses.fields(TrainOptions):
        if f.name in taken:
            continue
        default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        extra.append(
            inspect.Parameter(
                f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type
            )
        )
    fn.__signature__ = sig.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
    return fn
