"""One process of a data-parallel run over several JAX processes (CPU collectives: gloo).

Usage: python multihost_run.py PROCESS_ID NUM_PROCESSES PORT MEMMAP_DIR CHECKPOINT_DIR OUT_NPZ

Each process streams its share of every batch from the memmap directory (the rows its own
device holds), trains 2 epochs with step checkpoints into CHECKPOINT_DIR, then asks for 3
epochs with the same directory: every process restores the checkpoint and trains one more
epoch. It saves the parameters, history and how many rows it read. (Nothing here touches JAX's
backend at import: ``jax.distributed.initialize`` must come first.)
"""

import sys

import jax
import numpy as np
import optax


def loss_fn(p, batch):
    logits = batch[0] @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


PARAMS = {"w": np.full((6, 3), 0.1, np.float32), "b": np.zeros(3, np.float32)}
OPTIONS = dict(batch_size=16, record_steps=True)
KEY_IMPL = "rbg"  # rbg keys compile far faster on XLA:CPU than the default threefry ones


def main(pid: int, count: int, port: int, memmap_dir: str, ckpt_dir: str, out: str) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=count, process_id=pid)
    import gdjax
    from gdjax.train.sources import MemmapSource

    class Counting(MemmapSource):
        """Counts the rows this process reads."""

        rows = 0

        def __getitem__(self, indices):
            Counting.rows += len(indices)
            return super().__getitem__(indices)

    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    source = Counting(memmap_dir)
    kw = dict(
        OPTIONS,
        key=jax.random.key(0, impl=KEY_IMPL),
        checkpoint_dir=ckpt_dir,
        checkpoint_every_steps=2,
        mesh=mesh,
    )
    first = gdjax.fit(loss_fn, PARAMS, gdjax.adam(0.05), source, epochs=2, **kw)
    read_first = Counting.rows
    res = gdjax.fit(loss_fn, PARAMS, gdjax.adam(0.05), source, epochs=3, **kw)  # resumes
    local = {k: np.asarray(v.addressable_data(0)) for k, v in res.params.items()}
    np.savez(
        out,
        devices=jax.device_count(),
        rows_first=read_first,
        rows_total=Counting.rows,
        steps_first=first.steps,
        **{f"p_{k}": v for k, v in local.items()},
        **{f"h_{k}": v for k, v in res.history.items()},
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]), *sys.argv[4:7])
