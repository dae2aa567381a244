"""The history contract: which keys a run records per epoch, and how they are stacked.

Keys (all per epoch):

- ``loss`` — mean training loss over the examples of the epoch's applied steps;
- ``nonfinite_steps`` — steps not applied because something they computed was not finite;
- the loss's ``aux`` entries, under their own names (means over examples);
- ``<set>_loss`` and ``<set>_<metric>`` for each validation set (``val`` by default);
- ``lr_scale`` — the reduce-on-plateau scale, when that rule is used;
- ``loss_scale`` and ``overflow_steps`` — the loss scale at the end of the epoch and the steps
  skipped for an overflow, under dynamic loss scaling (:mod:`gdjax.train.precision`);
- diagnostics (:mod:`gdjax.train.diagnostics`), when asked for;
- ``step_loss`` — every step's loss, shape ``(steps_per_epoch,)`` per epoch, when asked for.

``stopped`` and ``reason`` travel with the statistics of an epoch but are control flow, not
history. Names chosen by the user (aux entries, metrics, validation sets) must not collide
with these keys; :func:`check_names` says which one does.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: Keys the engine itself records.
ENGINE_KEYS = ("loss", "nonfinite_steps", "lr_scale", "step_loss", "loss_scale", "overflow_steps")
#: Per-epoch entries that steer the driver and are not kept in the history.
CONTROL_KEYS = ("stopped", "reason")
#: Prefixes of the diagnostics' keys.
DIAGNOSTIC_KEYS = (
    "grad_norm",
    "grad_norm_max",
    "vanishing",
    "exploding",
    "input_grad",
)


def validation_keys(set_names: Iterable[str], metric_names: Iterable[str]) -> list[str]:
    """History keys of the validation sets: ``<set>_loss`` and ``<set>_<metric>``."""
    metric_names = list(metric_names)
    keys = []
    for name in set_names:
        keys.append(f"{name}_loss")
        keys.extend(f"{name}_{m}" for m in metric_names)
    return keys


def check_names(
    aux_names: Iterable[str], set_names: Iterable[str], metric_names: Iterable[str]
) -> None:
    """Refuse user-chosen names that would collide with another history key."""
    set_names, metric_names = list(set_names), list(metric_names)
    reserved = {*ENGINE_KEYS, *CONTROL_KEYS, *DIAGNOSTIC_KEYS}
    if "loss" in metric_names:
        raise ValueError(
            "a metric named 'loss' would be recorded as '<set>_loss', the validation loss "
            "itself; name it differently (e.g. 'ce')"
        )
    seen: set[str] = set()
    for set_name in set_names:
        for key in validation_keys([set_name], metric_names):
            if key in reserved or key in seen:
                raise ValueError(
                    f"validation_data name {set_name!r} would record {key}, which is reserved; "
                    "rename the set"
                )
            seen.add(key)
    for name in aux_names:
        if name in reserved or name in seen or name.startswith(("grad_norm/", "update_ratio/")):
            raise ValueError(
                f"loss_fn aux entry {name!r} clashes with a history key the engine records; "
                "rename it"
            )


def append(history: dict[str, list], stats: dict) -> None:
    """Add one epoch's statistics (control entries left out)."""
    for key, value in stats.items():
        if key not in CONTROL_KEYS:
            history.setdefault(key, []).append(np.asarray(value))


def stack(history: dict[str, list], member_axis: bool = False) -> dict[str, np.ndarray]:
    """Stack the per-epoch values: shape ``(epochs, ...)``, or ``(members, epochs, ...)``."""
    out = {}
    for key, values in history.items():
        if values:
            arr = np.stack(values)
            out[key] = np.swapaxes(arr, 0, 1) if member_axis else arr
    return out
