"""Resuming is not starting over: a resumed call runs only what is left.

Each test counts the steps the engine's programs actually run (a spy on the compiled
programs), so a resume that silently retrained from the start, or trained a finished run
again, fails even when its final numbers happened to agree.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train import programs

X = np.linspace(-1, 1, 20, dtype=np.float32)[:, None]
Y = 3 * X[:, 0] + 1
P = {"w": np.zeros(1, np.float32), "b": np.zeros((), np.float32)}
STEPS_PER_EPOCH = 4  # 20 examples, batches of 6: three full batches and a remainder of 2


def _loss(p, batch):
    return jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)


@pytest.fixture
def ran(monkeypatch):
    """Steps run by the programs called during the test: full-batch steps and epoch ends."""
    count = {"steps": 0, "ends": 0}
    call = programs.Executable.__call__

    def spy(self, *args):
        if self.name in ("gdjax_steps", "gdjax_steps_guarded"):
            count["steps"] += int(args[-1])
        elif self.name in ("gdjax_end", "gdjax_end_guarded"):
            count["ends"] += 1
        return call(self, *args)

    monkeypatch.setattr(programs.Executable, "__call__", spy)
    return count


def _fit(ckpt, epochs, **kw):
    return gdjax.fit(
        _loss,
        P,
        optax.adam(0.1),
        (X, Y),
        batch_size=6,
        epochs=epochs,
        key=jax.random.key(0),
        checkpoint_dir=ckpt,
        record_steps=True,
        **kw,
    )


def _same(a, b):
    for k in ("w", "b"):
        np.testing.assert_array_equal(a.params[k], b.params[k])
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k])


def test_a_resumed_run_trains_only_the_remaining_epochs(tmp_path, ran):
    full = _fit(tmp_path / "full", 4)
    assert ran == {"steps": 4 * 3, "ends": 4}
    _fit(tmp_path / "part", 2)
    ran.update(steps=0, ends=0)
    resumed = _fit(tmp_path / "part", 4)
    assert ran == {"steps": 2 * 3, "ends": 2}  # epochs 3 and 4 only
    assert resumed.steps == 4 * STEPS_PER_EPOCH and resumed.epochs_run == 4
    _same(resumed, full)


def test_a_finished_run_returns_without_training(tmp_path, ran):
    done = _fit(tmp_path / "a", 3)
    ran.update(steps=0, ends=0)
    again = _fit(tmp_path / "a", 3)
    assert ran == {"steps": 0, "ends": 0}
    _same(again, done)


def test_a_resume_within_an_epoch_runs_only_its_remaining_steps(tmp_path, ran):
    full = _fit(tmp_path / "full", 2, checkpoint_every_steps=1)
    ckpt = tmp_path / "mid"
    _fit(ckpt, 2, checkpoint_every_steps=1)
    # keep only the checkpoint taken after step 2 of epoch 2 (run step 6 = 4 + 2)
    kept = ckpt / "gdjax-checkpoints"
    for path in kept.iterdir():
        if path.name.isdigit() and int(path.name) != 6:
            for f in sorted(path.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
            path.rmdir()
    ran.update(steps=0, ends=0)
    resumed = _fit(ckpt, 2, checkpoint_every_steps=1)
    assert ran == {"steps": 1, "ends": 1}  # the third full batch, then the epoch's end
    _same(resumed, full)


# orbax's reports of the failed reads it retries are silenced by the checkpointer
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, ran):
    full = _fit(tmp_path / "full", 3)
    ckpt = tmp_path / "b"
    _fit(ckpt, 3)
    steps = sorted(int(p.name) for p in (ckpt / "gdjax-checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4, 8, 12]  # one per epoch
    newest = ckpt / "gdjax-checkpoints" / "12"
    damaged = 0
    for f in (newest / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 64 and "d" in f.parent.name:
            data = bytearray(f.read_bytes())
            data[-64:] = bytes(64)
            f.write_bytes(bytes(data))
            damaged += 1
    assert damaged
    ran.update(steps=0, ends=0)
    with pytest.warns(RuntimeWarning, match=r"skipping corrupt checkpoint .*12"):
        resumed = _fit(ckpt, 3)
    assert ran == {"steps": 3, "ends": 1}  # resumed from step 8: the third epoch again
    _same(resumed, full)
