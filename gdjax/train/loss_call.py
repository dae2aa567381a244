"""One calling convention for the user's loss function, whatever optional inputs it takes.

The engine calls every loss (and validation loss) through :class:`LossCall`, which passes the
optional inputs the user asked for and splits the output into ``(loss, new_model_state, aux)``.

Signatures (``key=`` and ``hparams=`` are keyword arguments, passed only when enabled)::

    loss_fn(params, batch)                        -> loss | (loss, aux)
    loss_fn(params, model_state, batch)           -> (loss, new_model_state)
                                                   | (loss, new_model_state, aux)
    loss_fn(..., key=key)                         # takes_key=True: a fresh PRNG key per step
    loss_fn(..., hparams=hparams)                 # sweep(..., loss_takes_hparams=True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

Output = tuple[jax.Array, Any, Any]


@dataclass(frozen=True)
class LossCall:
    """A loss function together with the optional inputs it takes.

    Attributes:
        fn: The user's loss function.
        has_state: Whether the loss takes and returns a model state (batch-norm statistics).
        takes_key: Whether the loss takes ``key=`` (dropout and other randomness).
        takes_hparams: Whether the loss takes ``hparams=`` (sweeps over loss hyperparameters).
        name: How the function is named in error messages.
    """

    fn: Callable[..., Any]
    has_state: bool = False
    takes_key: bool = False
    takes_hparams: bool = False
    name: str = "loss_fn"

    def __call__(
        self, params: Any, model_state: Any, batch: Any, key: Any = None, hparams: Any = None
    ) -> Output:
        """Call the loss and return ``(loss, new_model_state, aux)``, checked.

        The call goes through one ``jax.jit`` per ``LossCall``, so that the engine's programs
        (and its argument check) trace the user's function once per batch shape, not once per
        program: tracing a model is a large part of a first call's cost.
        """
        return self._traced(params, model_state, batch, key, hparams)

    @functools.cached_property
    def _traced(self) -> Callable[..., Output]:
        return jax.jit(self._call)

    def _call(self, params: Any, model_state: Any, batch: Any, key: Any, hparams: Any) -> Output:
        args = (params, model_state, batch) if self.has_state else (params, batch)
        kwargs: dict[str, Any] = {}
        if self.takes_key:
            kwargs["key"] = key
        if self.takes_hparams:
            kwargs["hparams"] = hparams
        loss, new_state, aux = self.split(self.fn(*args, **kwargs), model_state)
        if not isinstance(loss, jax.Array):
            raise TypeError(
                f"{self.name} must return a JAX scalar (e.g. jnp.mean(...)), got "
                f"{type(loss).__name__}: a Python number has no gradient"
            )
        return loss, new_state, aux_entries(aux, self.name)

    def split(self, out: Any, model_state: Any) -> Output:
        """Split a loss function's return value into ``(loss, new_model_state, aux)``."""
        if self.has_state:
            if isinstance(out, tuple) and len(out) in (2, 3):
                return out[0], out[1], (out[2] if len(out) == 3 else None)
            raise TypeError(
                f"{self.name} takes a model state, so it must return (loss, new_model_state) or "
                f"(loss, new_model_state, aux); got {type(out).__name__}"
                + (f" of length {len(out)}" if isinstance(out, tuple) else "")
            )
        if isinstance(out, tuple):
            if len(out) == 2:
                return out[0], model_state, out[1]
            raise TypeError(
                f"{self.name} must return a scalar loss or a pair (loss, aux); got a tuple of "
                f"length {len(out)}"
            )
        return out, model_state, None


def aux_entries(aux: Any, name: str = "loss_fn") -> dict[str, Any]:
    """The ``aux`` entries the engine averages per epoch (a dict of arrays), checked.

    ``None`` (no aux) gives no entries. Anything else must be a dict of JAX arrays with string
    keys: scalars, or arrays whose shape does not depend on the batch (the history then holds
    one such array per epoch). A list, a string or a non-dict aux is an error, not a silently
    dropped entry.
    """
    if aux is None:
        return {}
    if not isinstance(aux, dict):
        kind = "an array" if hasattr(aux, "shape") else f"a {type(aux).__name__}"
        raise TypeError(
            f"{name} returned an aux of type {kind}; the engine records aux as a dict of arrays "
            "{name: batch mean}, averaged per epoch into the history"
        )
    out = {}
    for key, value in aux.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} aux keys must be strings, got {key!r}")
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise TypeError(
                f"{name} aux entry {key!r} is a {type(value).__name__}; aux entries must be JAX "
                "arrays (a scalar batch mean, or an array of fixed shape)"
            )
        out[key] = value
    return out
