"""Streamed training against training in memory, and a data set larger than the memory allowed.

Part 1, throughput: the MLP 784-32-32-10 (ReLU), Adam 1e-3, batch 128, on Fashion-MNIST's 60,000
training images (float32), with three runners taking turns (``--rounds`` rounds of ``--epochs``
epochs, a fresh model each): ``gdjax.fit`` on arrays in device memory; streamed from the same
arrays in host memory (``ArraySource``); streamed from a memmap directory of them
(``MemmapSource``; the file sits in the operating system's cache). It prints seconds per epoch
(cold: the first epoch of the first round, compilation included; warm: the first epoch of later
rounds; steady: the median of the other epochs), throughput and the ratio to the in-memory
runner, and checks that the streamed runs end with the same bits.

Part 2, larger than memory: it writes ``--big-gb`` GB of synthetic 64x64 uint8 images (labels:
whether the left half is brighter than the right) as a memmap directory, then trains the MLP
4096-32-32-10 on it for one epoch in a child process whose private memory is capped at
``--limit-gb`` GB (``RLIMIT_DATA``: heap and anonymous mappings; the cap is checked by
allocating that much, which must fail), sampling the child's resident memory (anonymous and
file-backed) every 0.2 s. The directory is removed at the end.

    python experiments/benchmarks/bench_stream.py --rounds 3 --epochs 4 --big-gb 10

``--synthetic N`` replaces Fashion-MNIST with N random examples, ``--hidden`` sets the MLP's
width (32) and ``--big-gb`` may be a fraction (smoke runs); ``--json PATH`` writes the figures
with date, machine and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROW = (64, 64)


def _status(keys: tuple[str, ...] = ("VmRSS", "RssAnon", "RssFile", "VmHWM")) -> dict:
    text = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in text.splitlines())
    return {k: int(fields[k].split()[0]) / 1024 for k in keys if k in fields}  # MiB


def _mlp_loss(model):
    import optax

    def loss_fn(p, batch):
        x = batch[0]
        if x.dtype == np.uint8:
            x = x.reshape(x.shape[0], -1).astype("float32") / 255.0
        logits = model.apply(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    return loss_fn


# --- part 1 -----------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> dict:
    import _common as c
    import jax

    import gdjax
    from gdjax.data import write_memmap
    from gdjax.train.sources import ArraySource, MemmapSource

    x, y = c.load_data(args.synthetic)
    model = c.MLP(args.hidden)
    loss_fn = _mlp_loss(model)
    scratch = Path(tempfile.mkdtemp(prefix="gdjax-bench-stream-"))
    try:
        folder = write_memmap(scratch / "fmnist", (x, y))
        runners = {
            "in memory": lambda: (x, y),
            "streamed, host arrays": lambda: ArraySource((x, y)),
            "streamed, memmap": lambda: MemmapSource(folder),
        }
        seconds = {name: [] for name in runners}
        finals = {name: [] for name in runners}
        for r in range(args.rounds):
            for name, data in runners.items():
                params = model.init(jax.random.key(r), x[:1])
                res = gdjax.fit(
                    loss_fn,
                    params,
                    gdjax.adam(1e-3),
                    data(),
                    batch_size=128,
                    epochs=args.epochs,
                    key=jax.random.key(r),
                )
                seconds[name].append([float(s) for s in res.epoch_seconds])
                finals[name].append(jax.tree.leaves(res.params))
                print(f"  round {r + 1} {name}: {np.round(res.epoch_seconds, 3)}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = {}
    for name, runs in seconds.items():
        steady = float(np.median([s for run in runs for s in run[1:]]))
        rows[name] = {
            "cold_s": runs[0][0],
            "warm_s": float(np.median([run[0] for run in runs[1:]])) if len(runs) > 1 else None,
            "steady_s": steady,
            "examples_per_s": len(x) / steady,
            "epochs_s": runs,
        }
    base = rows["in memory"]["examples_per_s"]
    for name, row in rows.items():
        row["ratio_to_in_memory"] = row["examples_per_s"] / base
        row["identical_to_in_memory"] = all(
            all(np.array_equal(a, b) for a, b in zip(f, g, strict=True))
            for f, g in zip(finals[name], finals["in memory"], strict=True)
        )
    model = f"MLP 784-{args.hidden}-{args.hidden}-10"
    return {"n": len(x), "batch_size": 128, "model": model, "runners": rows}


# --- part 2 -----------------------------------------------------------------------------------


def write_big(folder: Path, gb: float) -> int:
    """Synthetic images and labels, ``gb`` GB in all, written chunk by chunk."""
    from gdjax.data import MemmapWriter

    row = int(np.prod(ROW))
    n = max(1024, int(gb * 1e9) // (row + 4))
    rng = np.random.default_rng(0)
    like = (np.zeros(ROW, np.uint8), np.int32(0))
    with MemmapWriter(folder, n, like) as w:
        for start in range(0, n, 16384):
            m = min(16384, n - start)
            images = np.frombuffer(rng.bytes(m * row), np.uint8).reshape(m, *ROW)
            half = ROW[1] // 2
            left = images[:, :, :half].sum(axis=(1, 2), dtype=np.int64)
            labels = (left > images[:, :, half:].sum(axis=(1, 2), dtype=np.int64)).astype(np.int32)
            w.append((images, labels))
    return n


def big_child(folder: str, limit_gb: float, batch: int, hidden: int) -> None:
    """Runs in a child process: cap private memory, train one epoch, print JSON."""
    limit = int(limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        np.ones(limit, np.uint8)
        enforced = False
    except MemoryError:
        enforced = True
    peaks = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            for k, v in _status().items():
                if k in peaks:
                    peaks[k] = max(peaks[k], v)

    threading.Thread(target=sample, daemon=True).start()
    import _common as c
    import jax

    import gdjax
    from gdjax.train.sources import MemmapSource

    source = MemmapSource(folder)
    model = c.MLP(hidden)
    params = model.init(jax.random.key(0), np.zeros((1, int(np.prod(ROW))), np.float32))
    t = time.perf_counter()
    res = gdjax.fit(
        _mlp_loss(model),
        params,
        gdjax.adam(1e-3),
        source,
        batch_size=batch,
        epochs=1,
        key=jax.random.key(0),
    )
    seconds = time.perf_counter() - t  # the call: compilation, checks and the epoch
    done.set()
    status = _status()
    print(
        json.dumps(
            {
                "examples": len(source),
                "call_seconds": seconds,
                "seconds": float(res.epoch_seconds[0]),
                "loss": float(res.history["loss"][0]),
                "limit_enforced": enforced,
                "peak_rss_mib": status["VmHWM"],
                "sampled_peaks_mib": peaks,
            }
        )
    )


def larger_than_memory(args: argparse.Namespace) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="gdjax-bench-big-", dir=args.scratch))
    try:
        free = shutil.disk_usage(scratch).free / 1e9
        if free < args.big_gb + 5:
            raise SystemExit(
                f"{free:.0f} GB free at {scratch}; --big-gb {args.big_gb} needs 5 more"
            )
        t = time.perf_counter()
        n = write_big(scratch / "big", args.big_gb)
        written = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (scratch / "big").iterdir()) / 1e9
        print(f"  wrote {n} images, {size:.2f} GB, in {written:.0f} s", flush=True)
        flags = ["--limit-gb", str(args.limit_gb), "--big-batch", str(args.big_batch)]
        flags += ["--hidden", str(args.hidden)]
        child = subprocess.run(
            [sys.executable, __file__, "--big-child", str(scratch / "big"), *flags],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
        if child.returncode != 0:
            raise SystemExit(child.stderr[-3000:])
        out = json.loads(child.stdout.strip().splitlines()[-1])
        out["child_maxrss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    h = args.hidden
    out.update(
        data_gb=size,
        limit_gb=args.limit_gb,
        write_seconds=written,
        batch_size=args.big_batch,
        model=f"MLP {int(np.prod(ROW))}-{h}-{h}-10 on uint8 {ROW[0]}x{ROW[1]} images",
        examples_per_s=out["examples"] / out["seconds"],
        mb_per_s=size * 1e3 / out["seconds"],
    )
    return out


def _versions() -> dict:
    import flax
    import jax
    import optax

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random examples")
    ap.add_argument("--hidden", type=int, default=32, help="width of the MLP's hidden layers")
    ap.add_argument("--big-gb", type=float, default=10.0, help="size of the synthetic data set")
    ap.add_argument("--limit-gb", type=float, default=2.0, help="the child's memory cap")
    ap.add_argument("--big-batch", type=int, default=256)
    ap.add_argument("--scratch", default=None, help="where to write it (default: the temp dir)")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--note", default="", help="a note for the JSON (e.g. other load)")
    ap.add_argument("--skip-big", action="store_true", help="part 1 only")
    ap.add_argument("--big-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.big_child:
        big_child(args.big_child, args.limit_gb, args.big_batch, args.hidden)
        return
    if args.epochs < 2 or args.rounds < 1:
        ap.error("--epochs must be >= 2 and --rounds >= 1")

    print(
        f"Fashion-MNIST, MLP 784-{args.hidden}-{args.hidden}-10, batch 128, "
        f"{args.epochs} epochs x {args.rounds} rounds"
    )
    part1 = throughput(args)
    print(
        f"{'runner':<24} {'cold s':>7} {'warm s':>7} {'steady s':>9} {'examples/s':>11} {'ratio':>6}  same bits"
    )
    for name, row in part1["runners"].items():
        warm = "-" if row["warm_s"] is None else f"{row['warm_s']:.3f}"
        print(
            f"{name:<24} {row['cold_s']:>7.3f} {warm:>7} {row['steady_s']:>9.3f} "
            f"{row['examples_per_s']:>11.0f} {row['ratio_to_in_memory']:>5.2f}x  "
            f"{'yes' if row['identical_to_in_memory'] else 'NO'}"
        )
    worst = min(r["ratio_to_in_memory"] for n, r in part1["runners"].items() if n != "in memory")
    print(f"streamed throughput vs in memory: worst {worst:.2f}x (target 0.9x)")

    if args.skip_big:
        return
    print(f"\nlarger than memory: {args.big_gb} GB, private memory capped at {args.limit_gb} GB")
    part2 = larger_than_memory(args)
    peaks = part2["sampled_peaks_mib"]
    head = f"{'data':>8} {'cap':>6} {'peak RSS':>9} {'anon':>7} {'file':>7} {'epoch s':>8}"
    print(f"{head} {'examples/s':>11} {'MB/s':>6}  cap enforced")
    print(
        f"{part2['data_gb']:>6.2f}GB {args.limit_gb:>4.1f}GB {part2['peak_rss_mib'] / 1024:>7.2f}GB "
        f"{peaks['RssAnon'] / 1024:>5.2f}GB {peaks['RssFile'] / 1024:>5.2f}GB {part2['seconds']:>8.1f} "
        f"{part2['examples_per_s']:>11.0f} {part2['mb_per_s']:>6.0f}  "
        f"{'yes' if part2['limit_enforced'] else 'NO'}"
    )
    print(
        f"data set {part2['data_gb'] / args.limit_gb:.1f}x the memory allowed; peak resident "
        f"{part2['peak_rss_mib'] / 1024:.2f} GB (target < 2 GB)"
    )
    if args.json:
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
            },
            "versions": _versions(),
            "command": " ".join(sys.argv if argv is None else [__file__, *argv]),
            "note": args.note,
            "throughput": part1,
            "larger_than_memory": part2,
        }
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
