"""The epoch driver: one loop that runs ``fit`` and ``sweep`` alike.

A call hands the driver a :class:`Run` — compiled programs, the state, the inputs — and the
driver runs epochs of chunks: the fast steps program (falling back to the guarded one for a
chunk that met a non-finite value, and keeping the guarded programs from then on), the
end-of-epoch program (fast or guarded alike),
checkpoints at their cadence, the progress bar, and the stopping rules' verdict. ``fit`` is a
run whose state has no members' axis; a sweep's state has one, and its programs are vmapped.
Python wakes up once per chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from gdjax.train import history as hist
from gdjax.train.callbacks import Hooks
from gdjax.train.options import TrainOptions
from gdjax.train.programs import Programs
from gdjax.train.progress import Progress, running_loss
from gdjax.train.spec import Spec
from gdjax.train.state import TrainState
from gdjax.train.step import PART_NAMES
from gdjax.train.stopping import NONFINITE


@dataclass
class Run:
    """Everything one call trains with (built by ``fit`` or ``sweep``)."""

    spec: Spec
    programs: Programs
    options: TrainOptions
    state: TrainState
    key: Any  # one key, or the members' keys
    hp: dict
    data: Any
    val: Any
    members: int | None = None  # None: fit
    checkpointer: Any = None
    history: dict[str, list] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    desc: str = "fit"
    stop_request: str | None = None  # why a callback stopped the run
    stream: Any = None  # a streaming.Stream when data is a source (data is then None)


def chunk_plan(spec: Spec, pos: int, periods: tuple[int | None, ...]) -> list[int]:
    """Lengths of the chunks of full batches that take an epoch from step ``pos`` to its last
    full batch, breaking at the multiples of each period (step checkpoints, progress updates).

    A run resumed from a step checkpoint runs exactly the chunks an uninterrupted run would;
    splitting changes nothing else (one program serves every length).
    """
    periods = tuple(p for p in periods if p)
    nf = spec.num_full
    if not periods:
        return [nf - pos] if nf > pos else []
    plan = []
    while pos < nf:
        nxt = min(min((pos // p + 1) * p for p in periods), nf)
        plan.append(nxt - pos)
        pos = nxt
    return plan


def clock_of(state: TrainState, members: int | None) -> tuple[int, int]:
    """The epoch and step position a (possibly resumed) state is at."""
    epoch, pos = np.asarray(state.epoch), np.asarray(state.pos)
    if members is None:
        return int(epoch), int(pos)
    e = int(epoch.max())
    return e, int(pos[epoch == e].max())


def _all(x: Any) -> bool:
    return bool(np.all(np.asarray(x)))


def _any(x: Any) -> bool:
    return bool(np.any(np.asarray(x)))


def nonfinite_message(stop: Any, spec: Spec, members: int | None) -> str | None:
    """Say where and what went non-finite, from the stopping state; ``None`` if nothing did."""
    bad_step = np.atleast_1d(np.asarray(stop.bad_step))
    bad_parts = np.atleast_1d(np.asarray(stop.bad_parts))
    hit = np.flatnonzero(bad_step >= 0)
    if hit.size == 0:
        return None
    i = int(hit[0])
    parts = [name for bit, name in PART_NAMES.items() if int(bad_parts[i]) & bit]
    step = int(bad_step[i])
    epoch, within = divmod(step, spec.steps_per_epoch)
    who = "" if members is None else f"member {i} (and {hit.size - 1} other(s)): "
    what = " and ".join(parts) if parts else "the step"
    hint = (
        "the loss was finite, so the update itself was not: check the learning rate, a "
        "schedule's values, or an eps that rounds to 0 in the parameters' dtype"
        if parts and "the loss" not in parts
        else "lower the learning rate, or check the data and the loss"
    )
    return (
        f"{who}step {within + 1} of epoch {epoch + 1} (step {step + 1} of the run) made {what} "
        f"non-finite; {hint}"
    )


def drive(
    run: Run,
    epochs: int,
    on_epoch: Callable[[Run, dict], None] | None = None,
    hooks: Hooks | None = None,
) -> Run:
    """Train ``run`` until ``epochs`` epochs are done or its stopping rules (or a callback in
    ``hooks``, see :mod:`gdjax.train.callbacks`) stop it."""
    spec, programs, options = run.spec, run.programs, run.options
    members = run.members
    show = options.show_progress
    per_step = options.progress_every_steps if show else None
    periods = (options.checkpoint_every_steps, per_step)
    steps_per_epoch = spec.steps_per_epoch
    epoch0, pos0 = clock_of(run.state, members)
    count = members or 1
    bar = Progress(
        show,
        epochs,
        steps_per_epoch,
        initial_steps=epoch0 * steps_per_epoch + pos0,
        desc=run.desc,
    )
    calls = _Calls(programs, run.state, guarded=_any(run.state.stop.halted))
    ckpt = run.checkpointer
    every = options.checkpoint_every_steps

    # a streamed run reads the chunks ahead, on a background thread (gdjax.train.streaming)
    feed = None if run.stream is None else run.stream.feed(epoch0, pos0, epochs, periods)
    try:
        if hooks is not None:
            hooks.train_begin(run)
        stopped = _all(run.state.stop.stopped)
        order = programs.get("order")(run.key, np.int32(epoch0))
        for epoch in range(epoch0, epochs):
            if stopped:
                break
            pos = pos0 if epoch == epoch0 else 0
            t0 = time.perf_counter()
            plan = chunk_plan(spec, pos, periods)
            for n in plan if feed is None else feed.split(plan):
                clock = (np.int32(epoch), np.int32(pos))
                data = run.data if feed is None else feed.take(epoch, pos, n)
                args = (run.key, run.hp, data, order, clock, np.int32(n))
                (run.state,) = calls.run("steps", run.state, *args)
                pos += n
                save = ckpt is not None and every and (pos % every == 0 or pos == spec.num_full)
                # a streamed chunk is let go once it is known good (the device holds one or two)
                if save or bar.enabled or feed is not None:
                    (run.state,), _ = calls.settle((run.state,))
                    _raise_if_asked(run, calls)
                if save:
                    ckpt.save(int(np.max(run.state.step)), run.state, run.history)
                if bar.enabled:
                    loss = {"loss": running_loss(run.state.acc)}
                    bar.update(n, count * n * spec.batch_size, epoch + 1, loss)
            clock = (np.int32(epoch), np.int32(pos))
            data = run.data if feed is None else feed.take(epoch, pos, 0)
            out = calls.run("end", run.state, run.key, run.hp, data, run.val, order, clock)
            if epoch + 1 < epochs:  # the next epoch's order, drawn while this one is checked
                order = programs.get("order")(run.key, np.int32(epoch + 1))
            (run.state, stats), stats = calls.settle(out, fetch=out[1])
            run.epoch_seconds.append(time.perf_counter() - t0)
            _raise_if_asked(run, calls)
            hist.append(run.history, stats)
            stopped = _all(stats["stopped"])
            bar.update(
                int(spec.remainder > 0), count * spec.remainder, epoch + 1, _bar_losses(stats)
            )
            done = epoch + 1
            if ckpt is not None and (
                done % options.checkpoint_every == 0 or done == epochs or stopped
            ):
                ckpt.save(int(np.max(run.state.step)), run.state, run.history)
            if on_epoch is not None:
                on_epoch(run, stats)
            if hooks is not None and hooks.epoch_end(run, done, stats):
                stopped = True  # a callback asked; the epoch is saved as the run's last
                if ckpt is not None:
                    ckpt.save(int(np.max(run.state.step)), run.state, run.history)
    except BaseException as err:
        if hooks is not None:
            hooks.train_end(run, err)
        raise
    else:
        if hooks is not None:
            hooks.train_end(run, None)
    finally:
        bar.close()
        if feed is not None:
            feed.close()
    return run


class _Calls:
    """The fast programs run since the state was last known good, so they can be redone.

    The fast programs keep their input state and report whether their result may be kept;
    the driver checks those reports only when it must look at the state anyway (the end of an
    epoch, a checkpoint, a progress update), so the device never waits for Python in between.
    If a report says no, the calls since the last good state are run again from it with the
    guarded programs, which are used from then on.
    """

    def __init__(self, programs: Programs, state: TrainState, guarded: bool) -> None:
        self._programs = programs
        self._good = state
        self._log: list[tuple[str, tuple]] = []
        self._flags: list[Any] = []
        self.guarded = guarded

    def run(self, name: str, state: TrainState, *args: Any) -> tuple:
        """Run program ``name`` on ``state``; return its outputs without the report."""
        if self.guarded:
            new, *rest, _ = self._programs.get(f"{name}_guarded")(state, *args)
            self._good = new
            return new, *rest
        new, *rest, ok = self._programs.get(name)(state, *args)
        self._log.append((name, args))
        self._flags.append(ok)
        return new, *rest

    def settle(self, outputs: tuple, fetch: Any = None) -> tuple[tuple, Any]:
        """Check the reports of the calls since the last good state (fetching ``fetch`` from
        the device with them); return the last call's outputs, redone guarded if needed, and
        ``fetch`` on the host (from the redone call when it was redone)."""
        flags, fetched = jax.device_get((self._flags, fetch))
        if not self.guarded and not all(_all(f) for f in flags):
            self.guarded = True  # throw the results away; from now on every step is checked
            state = self._good
            for name, args in self._log:
                state, *rest, _ = self._programs.get(f"{name}_guarded")(state, *args)
            outputs = (state, *rest)
            fetched = jax.device_get(rest[0]) if fetch is not None else None
        self._good = outputs[0]
        self._log.clear()
        self._flags.clear()
        return outputs, fetched


def _raise_if_asked(run: Run, calls: _Calls) -> None:
    # only guarded steps meet non-finite values, so nothing to read before the first one
    if not calls.guarded or run.spec.stop.on_nonfinite != "raise":
        return
    msg = nonfinite_message(run.state.stop, run.spec, run.members)
    if msg is not None:
        raise FloatingPointError(f"training stopped (on_nonfinite='raise'): {msg}")


def _bar_losses(stats: dict) -> dict:
    """The members' mean of the losses, for the progress bar."""
    out = {}
    for k in ("loss", "val_loss"):
        if k in stats:
            x = np.atleast_1d(np.asarray(stats[k], np.float64))
            finite = x[np.isfinite(x)]
            out[k] = float(finite.mean()) if finite.size else float("nan")
    return out


def stop_reason_was_nonfinite(reason: Any, stopped: Any) -> bool:
    """Whether the stopping state says a run stopped on a non-finite step."""
    return _any(np.asarray(stopped) & (np.asarray(reason) == NONFINITE))
