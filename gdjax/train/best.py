"""Best-k checkpoints: keep the weights of the k best epochs by a monitored history entry.

:class:`BestCheckpoints` is a callback. After every epoch it saves the parameters (and the
model state and the weights' moving average, when the run has them) with orbax, tagged with the
monitored value; orbax's own best-k retention (``CheckpointManagerOptions(best_fn=...,
best_mode=..., max_to_keep=k)``) then deletes every checkpoint but the k best. An epoch whose
monitored value is not finite is not saved.

These checkpoints are for using the best weights, not for resuming: resuming is
``checkpoint_dir``'s job (the newest state, with the optimizer and the clock). Keep the two in
different folders. A run that starts afresh refuses a directory that already holds best-k
checkpoints (they would be ranked with this run's); a resumed run continues them.

Layout: ``directory/<epoch>/`` for ``fit``; ``directory/member_<i>/<epoch>/`` for member ``i``
of a sweep (each member keeps its own k best).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gdjax import _checks
from gdjax.train.callbacks import Callback, RunInfo
from gdjax.train.diagnostics import layer_names
from gdjax.train.loggers import check_writable

PARTS = ("params", "model_state", "ema_params")


class BestCheckpoints(Callback):
    """Keep the ``k`` best epochs' weights by ``monitor`` (see :mod:`gdjax.train.best`).

    Args:
        directory: Where the checkpoints live (created if missing; keep it apart from
            ``checkpoint_dir``).
        monitor: The history entry that ranks the epochs, e.g. ``"val_loss"``, ``"val_acc"``.
        k: How many of the best epochs to keep.
        mode: ``"min"`` (lower is better) or ``"max"``.

    Examples:
        >>> import tempfile, jax, jax.numpy as jnp, optax, gdjax
        >>> x = jnp.linspace(-1, 1, 16); y = 2 * x
        >>> loss = lambda p, b: jnp.mean((b[0] * p - b[1]) ** 2)
        >>> best = gdjax.BestCheckpoints(tempfile.mkdtemp(), monitor="loss", k=2)
        >>> res = gdjax.fit(loss, jnp.zeros(()), optax.sgd(0.5), (x, y), batch_size=8,
        ...                 epochs=4, key=jax.random.key(0), callbacks=[best])
        >>> best.best_epochs()  # the loss falls every epoch here: the last two are best
        [4, 3]
        >>> float(best.restore(like=jnp.zeros(()))) == float(res.params)
        True
    """

    def __init__(
        self, directory: str | os.PathLike, monitor: str = "val_loss", k: int = 1, mode: str = "min"
    ) -> None:
        self.directory = directory
        self.monitor = monitor
        self.k = k
        self.mode = mode
        self._managers: dict[int | None, Any] = {}

    def check(self) -> None:
        check_writable("BestCheckpoints directory", self.directory)
        if not isinstance(self.monitor, str) or not self.monitor:
            raise TypeError(f"BestCheckpoints monitor must be a history key, got {self.monitor!r}")
        _checks.python_int("BestCheckpoints k", self.k)
        _checks.choice("BestCheckpoints mode", self.mode, ("min", "max"))

    # --- the folders ---------------------------------------------------------------------------

    def _folder(self, member: int | None) -> Path:
        root = Path(self.directory).absolute()
        return root if member is None else root / f"member_{member}"

    def _open(self, member: int | None) -> Any:
        import orbax.checkpoint as ocp  # lazy: orbax is slow to import

        monitor = self.monitor
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self.k,
            best_fn=lambda metrics: metrics[monitor],
            best_mode=self.mode,
            enable_async_checkpointing=False,
            create=True,
        )
        return ocp.CheckpointManager(self._folder(member), options=options)

    def _saved_somewhere(self) -> list[Path]:
        root = Path(self.directory)
        if not root.is_dir():
            return []
        folders = [root, *sorted(p for p in root.glob("member_*") if p.is_dir())]
        return [p for f in folders for p in f.iterdir() if p.is_dir() and p.name.isdigit()]

    # --- the hooks -----------------------------------------------------------------------------

    def on_train_begin(self, run: RunInfo) -> None:
        keys = run.keys
        if self.monitor not in keys:
            raise ValueError(
                f"BestCheckpoints monitor={self.monitor!r} is not recorded by this run; "
                f"available: {sorted(keys)}"
            )
        found = self._saved_somewhere()
        if run.epoch == 0 and found:
            raise ValueError(
                f"BestCheckpoints directory {self.directory} already holds checkpoints "
                f"({', '.join(sorted(str(p.relative_to(self.directory)) for p in found)[:4])}"
                f"{', ...' if len(found) > 4 else ''}) and this run starts afresh: they would be "
                "ranked with its epochs. Pass a new directory, or delete them"
            )
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        self._managers = {}

    def on_epoch_end(self, run: RunInfo, epoch: int, logs: dict[str, np.ndarray]) -> None:
        import orbax.checkpoint as ocp

        values = np.asarray(logs[self.monitor], np.float64)
        trees = {
            "params": run.params,
            "model_state": run.model_state,
            "ema_params": run.ema_params,
        }
        trees = jax.device_get({k: v for k, v in trees.items() if jax.tree.leaves(v)})
        members = [None] if run.members is None else run.members.tolist()
        for j, member in enumerate(members):
            value = float(values if member is None else values[j])
            if not math.isfinite(value):
                continue
            parts = trees if member is None else jax.tree.map(lambda a, j=j: a[j], trees)
            if member not in self._managers:
                self._managers[member] = self._open(member)
            manager = self._managers[member]
            if epoch in manager.all_steps():
                continue  # a resumed run redoing an epoch it saved before
            arrays = {
                part: {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}
                for part, tree in parts.items()
            }
            meta = {
                "epoch": epoch,
                "monitor": self.monitor,
                "value": value,
                "names": {part: layer_names(tree) for part, tree in parts.items()},
            }
            args = ocp.args.Composite(
                state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)
            )
            manager.save(epoch, args=args, metrics={self.monitor: value}, force=True)
            manager.wait_until_finished()

    def on_train_end(self, run: RunInfo) -> None:
        for manager in self._managers.values():
            manager.close()
        self._managers = {}

    # --- reading them back -----------------------------------------------------------------------

    def _meta(self, manager: Any, epoch: int) -> dict:
        import orbax.checkpoint as ocp

        out = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return json.loads(json.dumps(out["meta"]))

    def best_epochs(self, member: int | None = None) -> list[int]:
        """The epochs kept for ``member`` (``None`` for fit), best first."""
        manager = self._open(member)
        try:
            ranked = [(self._meta(manager, e)["value"], e) for e in manager.all_steps()]
        finally:
            manager.close()
        ranked.sort(reverse=self.mode == "max")
        return [e for _, e in ranked]

    def restore(
        self,
        epoch: int | None = None,
        *,
        member: int | None = None,
        like: Any = None,
        part: str = "params",
    ) -> Any:
        """The saved ``part`` of ``epoch`` (default: the best kept one).

        Args:
            epoch: A kept epoch (see :meth:`best_epochs`); ``None`` for the best.
            member: The sweep member (``None`` for fit).
            like: A tree with the layout of ``part`` (e.g. the initial parameters): the arrays
                come back in it. Without it, a dict ``{leaf path: array}``.
            part: ``"params"``, ``"model_state"`` or ``"ema_params"``.
        """
        import orbax.checkpoint as ocp

        _checks.choice("part", part, PARTS)
        kept = self.best_epochs(member)
        if not kept:
            raise FileNotFoundError(f"BestCheckpoints directory {self._folder(member)} is empty")
        epoch = kept[0] if epoch is None else epoch
        if epoch not in kept:
            raise ValueError(f"epoch {epoch} is not kept in {self._folder(member)}; kept: {kept}")
        manager = self._open(member)
        try:
            meta = self._meta(manager, epoch)
            if part not in meta["names"]:
                raise ValueError(f"epoch {epoch} holds no {part} (saved: {sorted(meta['names'])})")
            saved = manager.restore(
                epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore())
            )["state"][part]
        finally:
            manager.close()
        leaves = [np.asarray(saved[k]) for k in sorted(saved)]
        if like is None:
            return dict(zip(meta["names"][part], leaves, strict=True))
        treedef = jax.tree.structure(like)
        if treedef.num_leaves != len(leaves):
            raise ValueError(
                f"like has {treedef.num_leaves} leaves but epoch {epoch}'s {part} has "
                f"{len(leaves)}: pass a tree with the layout of the saved {part}"
            )
        return jax.tree.unflatten(treedef, leaves)


__all__ = ["BestCheckpoints"]
