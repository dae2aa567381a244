"""What identifies a run, so that a checkpoint directory is resumed only by the same run.

A run's fingerprint (a JSON-able dict, compared field by field by the checkpointer) holds:

- the layouts (tree paths, shapes, dtypes) of the parameters, the training state, the data and
  the validation sets, and the batch size;
- the settings that change what is computed (shuffle, drop_last, stopping rules, ...);
- the run key;
- ``optimizer``: for a gdjax optimizer, the factories it was built from and every number it was
  given (so a loop over learning rates that reuses one directory is refused, not resumed); for
  another optimizer, a hash of its update as a jaxpr (Python numbers appear in it as literals);
- ``loss``: the loss function's name and a hash of its jaxpr on a batch;
- ``data_values``: a fingerprint of the values of every array of the data and validation sets
  (each array's sum and a few of its rows, computed on the device with the NaN check).
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np

from gdjax import _checks
from gdjax._recipes import Opaque
from gdjax.train.spec import Spec, abstract, abstract_batch


def _layout(tree: Any) -> list[str]:
    return [
        f"{p}: {tuple(x.shape)} {np.dtype(x.dtype)}"
        for p, x in zip(_checks.leaf_paths(tree), jax.tree.leaves(tree), strict=True)
    ]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe_key(key: Any) -> Any:
    """A JSON-able rendering of a recipe key (factories by qualified name)."""
    if isinstance(key, Opaque):
        return getattr(key.obj, "__qualname__", type(key.obj).__name__)
    if isinstance(key, tuple | list):
        return [_describe_key(k) for k in key]
    if isinstance(key, str | int | float | bool) or key is None:
        return key
    return repr(key)


def _number(x: Any) -> Any:
    arr = np.asarray(x)
    return arr.item() if arr.ndim == 0 else arr.tolist()


def optimizer_identity(spec: Spec, hp: Any, params: Any) -> dict:
    """The optimizer's factories and numbers, or a hash of its update for other optimizers."""
    kind, *_ = spec.optimizer_key
    if kind == "recipe" or (kind == "wrapped" and spec.optimizer_key[1][0] == "recipe"):
        return {
            "recipe": _describe_key(spec.optimizer_key),
            "numbers": [_number(x) for x in hp["optimizer"]],
            "member": {k: _number(v) for k, v in sorted(hp["member"].items())},
        }
    opt = spec.make_optimizer(hp)
    grads = abstract(params)
    state = jax.eval_shape(opt.init, grads)
    text = str(jax.make_jaxpr(lambda g, s, p: opt.update(g, s, p))(grads, state, grads))
    return {
        "update": _short_hash(text),
        "member": {k: _number(v) for k, v in sorted(hp["member"].items())},
    }


def loss_identity(spec: Spec, params: Any, model_state: Any, data: Any, hp: Any) -> dict:
    """The loss function's name and a hash of its jaxpr on one batch."""
    fn = spec.loss.fn
    batch = abstract_batch(data, spec.batch_size)
    text = str(
        jax.make_jaxpr(lambda p, ms, b: spec.loss(p, ms, b, jax.random.key(0), hp["member"])[0])(
            abstract(params), abstract(model_state), batch
        )
    )
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    return {"name": name, "jaxpr": _short_hash(text)}


def fingerprint(
    spec: Spec,
    *,
    state: Any,
    params: Any,
    model_state: Any,
    data: Any,
    val: Any,
    hp: Any,
    key: Any,
    data_prints: list[str],
    settings: list,
) -> dict:
    """The run's fingerprint (see the module docstring)."""
    key_data = (
        jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    )
    return {
        "params": _layout(params),
        "data": _layout(data),
        "validation_data": _layout(val) if val is not None else [],
        "batch_size": spec.batch_size,
        "settings": settings,
        "state": _layout(state),
        "key": hashlib.sha256(np.asarray(key_data).tobytes()).hexdigest()[:16],
        "optimizer": optimizer_identity(spec, hp, params),
        "loss": loss_identity(spec, params, model_state, data, hp),
        "data_values": data_prints,
    }
