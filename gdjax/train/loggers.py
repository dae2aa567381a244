"""Loggers: callbacks that write every epoch's history entries somewhere else.

- :class:`CSVLogger` — one CSV file, one row per epoch (per member and epoch in a sweep);
- :class:`TensorBoardLogger` — TensorBoard event files, one scalar per key and epoch (written
  with ``tensorboardX``: ``pip install 'gdjax[tensorboard]'``);
- :class:`MLflowLogger` — an MLflow run, one metric per key with the epoch as its step
  (``pip install 'gdjax[mlflow]'``).

They log the scalar entries of the history (``loss``, the loss's scalar ``aux`` entries,
``val_loss``, metrics, ``lr_scale``, ``nonfinite_steps``, scalar diagnostics); arrays such as
``step_loss`` are left out. In a sweep the entries of every member are logged: a ``member``
column (CSV), a run per member in ``logdir/member_<i>`` (TensorBoard), a child run per member
under one parent (MLflow). Values are written as they are in the history, NaN included (a
sweep member that stopped early has NaN entries for the epochs it did not run, and is not
logged for them).

Each logger checks its destination when ``fit``/``sweep`` check their options, before anything
is compiled or written: a path under a file, or a directory that cannot be written, is refused
with an error naming the path.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from gdjax.train.callbacks import Callback, RunInfo


def check_writable(what: str, path: str | os.PathLike, *, file: bool = False) -> Path:
    """Refuse a ``path`` that cannot be created and written, without writing anything.

    A ``file`` that exists must be writable; otherwise the nearest existing ancestor of the
    path (of its folder, for a file) must be a writable directory. Returns ``path`` as a
    ``Path``.
    """
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise TypeError(f"{what} must be a non-empty path (str or os.PathLike), got {path!r}")
    path = Path(path)
    if file and path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory; name a file in it")
    if not file and path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what} {path} exists and is not a directory")
    probe = path.absolute()
    while not probe.exists():
        if probe.is_symlink():
            raise FileNotFoundError(
                f"{what} {path} cannot be created: {probe} is a symbolic link to "
                f"{os.readlink(probe)}, which does not exist"
            )
        probe = probe.parent
    if probe.is_dir():
        if not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(f"{what} {path} cannot be written: {probe} is not writable")
    elif probe != path.absolute():
        raise NotADirectoryError(
            f"{what} {path} cannot be created: {probe} is a file, not a directory"
        )
    elif not os.access(probe, os.W_OK):
        raise PermissionError(f"{what} {path} cannot be written (no write permission)")
    return path


def scalar_rows(run: RunInfo, logs: dict[str, np.ndarray]) -> list[tuple[int | None, dict]]:
    """``(member, {key: value})`` for each member (``None`` for fit): the scalar entries.

    In a sweep, a member that has stopped (its epoch's entries are all NaN) is left out.
    """
    members = run.members
    if members is None:
        return [(None, {k: v.item() for k, v in logs.items() if np.ndim(v) == 0})]
    rows = []
    for j, member in enumerate(members):
        row = {k: v[j].item() for k, v in logs.items() if np.ndim(v) == 1}
        floats = [x for x in row.values() if isinstance(x, float)]
        if floats and all(math.isnan(x) for x in floats):
            continue
        rows.append((int(member), row))
    return rows


class CSVLogger(Callback):
    """Write the history to a CSV file as training goes (flushed after every epoch).

    Columns: ``epoch`` (1-based), ``member`` in a sweep, then the scalar history keys in the
    history's order. Floats are written with Python's ``repr``, so they read back exactly. The
    file is rewritten by each call; a resumed run first writes the epochs it restored, so the
    file always holds the run's whole history.

    Args:
        path: The CSV file (its folder is created if missing).
        separator: Field separator.

    Examples:
        >>> import csv, tempfile, os, jax, jax.numpy as jnp, optax, gdjax
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> x = jnp.linspace(-1, 1, 16); y = 2 * x
        >>> loss = lambda p, b: jnp.mean((b[0] * p - b[1]) ** 2)
        >>> res = gdjax.fit(loss, jnp.zeros(()), optax.sgd(0.5), (x, y), batch_size=8,
        ...                 epochs=3, key=jax.random.key(0), callbacks=[gdjax.CSVLogger(path)])
        >>> with open(path) as f:
        ...     rows = list(csv.DictReader(f))
        >>> last, losses = rows[-1], res.history["loss"]
        >>> len(rows), last.get("epoch"), bool(float(last.get("loss")) == losses[-1])
        (3, '3', True)
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",") -> None:
        self.path = path
        self.separator = separator
        self._file: Any = None
        self._writer: Any = None
        self._programs: set[tuple | None] = set()

    def check(self) -> None:
        check_writable("CSVLogger path", self.path, file=True)
        if not isinstance(self.separator, str) or len(self.separator) != 1:
            raise ValueError(f"CSVLogger separator must be one character, got {self.separator!r}")

    def on_train_begin(self, run: RunInfo) -> None:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", newline="")  # noqa: SIM115 - closed in on_train_end
        self._writer = None
        self._programs: set[tuple | None] = set()

    def on_epoch_end(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> None:
        program = None if run.members is None else tuple(run.members.tolist())
        if program not in self._programs:  # first epoch of this call: what a resume restored
            self._programs.add(program)
            history = run.history
            for e in range(1, epoch):
                self._write(run, e, {k: _epoch_of(v, e, run) for k, v in history.items()})
        self._write(run, epoch, logs)
        self._file.flush()

    def _write(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> None:
        for member, row in scalar_rows(run, logs):
            head = {"epoch": epoch} if member is None else {"epoch": epoch, "member": member}
            if self._writer is None:
                self._writer = csv.DictWriter(
                    self._file, [*head, *row], delimiter=self.separator, restval=""
                )
                self._writer.writeheader()
            self._writer.writerow({**head, **{k: repr(v) for k, v in row.items()}})

    def on_train_end(self, run: RunInfo) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _epoch_of(values: np.ndarray, epoch: int, run: RunInfo) -> np.ndarray:
    return values[epoch - 1] if run.members is None else values[:, epoch - 1]


class TensorBoardLogger(Callback):
    """Write the history as TensorBoard scalars (``tensorboard --logdir LOGDIR`` shows them).

    Each scalar key is a tag, logged at step ``epoch`` (1-based) after every epoch; in a sweep
    each member is a run of its own, ``logdir/member_<i>``, so TensorBoard overlays them. The
    event files are written by ``tensorboardX`` and flushed after every epoch.

    Args:
        logdir: The folder of the event files (created if missing).
    """

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = logdir
        self._writers: dict[int | None, Any] = {}

    def check(self) -> None:
        check_writable("TensorBoardLogger logdir", self.logdir)
        if importlib.util.find_spec("tensorboardX") is None:
            raise ImportError(
                "TensorBoardLogger writes with tensorboardX: pip install 'gdjax[tensorboard]'"
            )

    def _writer(self, member: int | None) -> Any:
        if member not in self._writers:
            from tensorboardX import SummaryWriter  # lazy: only when a logger is used

            folder = Path(self.logdir) if member is None else Path(self.logdir) / f"member_{member}"
            self._writers[member] = SummaryWriter(logdir=str(folder))
        return self._writers[member]

    def on_train_begin(self, run: RunInfo) -> None:
        Path(self.logdir).mkdir(parents=True, exist_ok=True)
        self._writers = {}

    def on_epoch_end(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> None:
        for member, row in scalar_rows(run, logs):
            writer = self._writer(member)
            for key, value in row.items():
                writer.add_scalar(key, float(value), global_step=epoch)
            writer.flush()

    def on_train_end(self, run: RunInfo) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class MLflowLogger(Callback):
    """Log the history to MLflow: one metric per scalar key, with the epoch as its step.

    ``fit`` makes one MLflow run; a ``sweep`` makes a parent run and one child run per member
    (named ``member <i>``, with the member's hyperparameters as its parameters). Runs end
    ``FINISHED``, or ``FAILED`` when training raised. A resumed run logs to a new MLflow run.

    Args:
        experiment: The MLflow experiment's name (created if missing).
        tracking_uri: Where MLflow stores runs (a local folder, ``sqlite:///mlflow.db``, a
            server's URL); ``None``: MLflow's own default (``MLFLOW_TRACKING_URI``).
        run_name: The (parent) run's name.
        params: Parameters to log on the (parent) run, e.g. ``{"lr": 0.1}``; the batch size and
            the number of epochs are logged too.

    Attributes:
        run_id: The (parent) MLflow run's id, once training began.
    """

    def __init__(
        self,
        experiment: str = "gdjax",
        *,
        tracking_uri: str | os.PathLike | None = None,
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.experiment = experiment
        self.tracking_uri = None if tracking_uri is None else os.fspath(tracking_uri)
        self.run_name = run_name
        self.params = dict(params or {})
        self.run_id: str | None = None
        self._client: Any = None
        self._children: dict[int, str] = {}

    def check(self) -> None:
        if not isinstance(self.experiment, str) or not self.experiment:
            raise ValueError(f"MLflowLogger experiment must be a name, got {self.experiment!r}")
        if importlib.util.find_spec("mlflow") is None:
            raise ImportError("MLflowLogger needs MLflow: pip install 'gdjax[mlflow]'")
        uri = self.tracking_uri
        if uri is not None and (uri.startswith("file:") or "://" not in uri):
            local = uri.removeprefix("file://") if uri.startswith("file://") else uri
            check_writable("MLflowLogger tracking_uri", local.removeprefix("file:"))

    def on_train_begin(self, run: RunInfo) -> None:
        from mlflow.tracking import MlflowClient  # lazy: MLflow is slow to import

        self._client = client = MlflowClient(tracking_uri=self.tracking_uri)
        found = client.get_experiment_by_name(self.experiment)
        self._experiment_id = (
            found.experiment_id if found else client.create_experiment(self.experiment)
        )
        self.run_id = client.create_run(self._experiment_id, run_name=self.run_name).info.run_id
        self._children = {}
        params = {"epochs": run.epochs, **self.params}
        if run.members is None:
            params["batch_size"] = run.batch_size
        for key, value in params.items():
            client.log_param(self.run_id, key, value)

    def _run_of(self, run: RunInfo, member: int | None) -> str:
        if member is None:
            return self.run_id
        if member not in self._children:
            child = self._client.create_run(
                self._experiment_id,
                run_name=f"member {member}",
                tags={"mlflow.parentRunId": self.run_id},
            ).info.run_id
            j = int(np.flatnonzero(run.members == member)[0])
            hparams = {k: np.asarray(v)[j].item() for k, v in run.hparams.items()}
            hparams.setdefault("batch_size", run.batch_size)
            for key, value in hparams.items():
                self._client.log_param(child, key, value)
            self._children[member] = child
        return self._children[member]

    def on_epoch_end(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        for member, row in scalar_rows(run, logs):
            metrics = [Metric(k, float(v), now, epoch) for k, v in row.items()]
            self._client.log_batch(self._run_of(run, member), metrics=metrics)

    def on_train_end(self, run: RunInfo) -> None:
        if self._client is None:
            return
        status = "FINISHED" if run.error is None else "FAILED"
        for run_id in [*self._children.values(), self.run_id]:
            self._client.set_terminated(run_id, status=status)
        self._client = None


__all__ = ["CSVLogger", "MLflowLogger", "TensorBoardLogger", "check_writable"]
