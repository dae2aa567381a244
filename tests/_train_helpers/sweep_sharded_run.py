"""A sweep of 4 members over 4 simulated CPU devices: members split over the devices, then
members x batches on a 2 x 2 mesh, then on one device; saves all three and the layouts seen.

Usage: XLA_FLAGS=--xla_force_host_platform_device_count=4 python sweep_sharded_run.py OUT_NPZ
"""

import sys

import jax
import numpy as np
import optax

import gdjax
from gdjax.train import programs

SEEN = []  # (devices, rows per device) of the state's members' axis at each steps program


def spy(call):
    def wrapped(self, *args):
        if self.name == "gdjax_steps":
            leaf = jax.tree.leaves(args[0])[0]
            rows = {s.data.shape[0] for s in leaf.addressable_shards}
            SEEN.append((len(leaf.sharding.device_set), *rows))
        return call(self, *args)

    return wrapped


def loss_fn(p, batch):
    logits = batch[0] @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


def main(out: str) -> None:
    if jax.device_count() != 4:
        raise SystemExit(f"needs 4 devices (set XLA_FLAGS), found {jax.devices()}")
    programs.Executable.__call__ = spy(programs.Executable.__call__)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 6)).astype(np.float32)
    y = (x @ rng.normal(size=(6, 3))).argmax(-1).astype(np.int32)
    params = {"w": np.zeros((6, 3), np.float32), "b": np.zeros(3, np.float32)}
    kw = dict(
        hparams={"lr": np.array([0.01, 0.03, 0.1, 0.3])},
        seeds=[0, 1, 2, 3],
        batch_size=16,
        epochs=2,
        record_steps=True,
    )

    def opt(hp):
        return optax.adam(hp["lr"])

    results, seen = {}, {}
    meshes = {
        "members": (jax.make_mesh((4,), ("m",)), {}),
        "members_data": (jax.make_mesh((2, 2), ("m", "d")), {"data_axis": "d"}),
        "one": (None, {}),
    }
    for name, (mesh, extra) in meshes.items():
        SEEN.clear()
        results[name] = gdjax.sweep(loss_fn, params, opt, (x, y), mesh=mesh, **kw, **extra)
        seen[name] = sorted(set(SEEN))
    np.savez(
        out,
        **{f"seen_{k}": np.array(v) for k, v in seen.items()},
        **{f"{k}_{p}": np.asarray(v) for k, r in results.items() for p, v in r.params.items()},
        **{f"{k}_loss": r.history["step_loss"] for k, r in results.items()},
    )


if __name__ == "__main__":
    main(sys.argv[1])
