"""A whole training call, as a user runs it: gdjax.fit against the strongest anchors, cold, warm
and steady. MLP 784-H-H-10 (ReLU), Adam 1e-3, batch 128, Fashion-MNIST's 60,000 training
images, the data given to every runner as the NumPy arrays a user holds after reading the files.

- **cold**: a fresh process's first and only call (imports and data loading not timed;
  compilation timed): 1 epoch and 10 epochs. gdjax runs twice: with its persistent compilation
  cache empty (``GDJAX_COMPILATION_CACHE=off``) and filled by an earlier process.
- **warm**: in one process, a second call after a first one compiled everything: gdjax with a
  new optimizer from the same factory (``gdjax.adam(3e-4)`` after ``gdjax.adam(1e-3)``),
  2 epochs. Its *fixed overhead* is the call's time minus its epochs' time.
- **steady**: the median epoch of a 4-epoch call, leaving out the first.

Anchors: the flax + optax loop (jitted step with ``donate_argnums``, NumPy-shuffled host
batches), a hand-written jitted ``lax.scan`` epoch over device data, and PyTorch with fused Adam,
eager and under ``torch.compile`` (2 threads; their own processes, no JAX). Runners take turns,
round after round, so that other load on the machine falls on all alike; medians and ranges
are reported, and the raw results are written as JSON.

    python experiments/benchmarks/bench_engine.py --rounds 3 --out docs/benchmarks/engine.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _engine_runners as r
import numpy as np

HERE = Path(__file__).resolve().parent
COLD_RUNNERS = [
    "gdjax.fit",
    "gdjax.fit (persistent cache)",
    "flax+optax loop",
    "lax.scan epoch",
    "torch-2 eager",
    "torch-2 compile",
]


def _cold(runner: str, hidden: int, epochs: int, synthetic: int | None, cache: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["GDJAX_COMPILATION_CACHE"] = cache if runner.endswith("(persistent cache)") else "off"
    name = runner.removesuffix(" (persistent cache)")
    cmd = [sys.executable, str(HERE / "_engine_runners.py"), "cold", name, str(hidden), str(epochs)]
    if synthetic:
        cmd += ["--synthetic", str(synthetic)]
    out = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise RuntimeError(f"{runner} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _in_process(hidden: int, steady_epochs: int, x, y, runners: list[str]) -> dict:
    """Warm calls and steady epochs of the JAX runners, in this process."""
    import jax

    out = {}
    for name in runners:
        run = r.JAX_RUNNERS[name]
        run(x, y, hidden, 1, lr=1e-3)  # compiles
        wall, seconds, _ = run(x, y, hidden, 2, lr=3e-4, seed=1)
        _, steady, loss = run(x, y, hidden, steady_epochs, lr=1e-3, seed=2)
        out[name] = {
            "warm_wall": wall,
            "warm_overhead": wall - float(np.sum(seconds)),
            "steady": list(map(float, steady[1:])),
            "loss": loss,
        }
    t = time.perf_counter()
    jax.block_until_ready(jax.device_put((x, y)))
    out["host_to_device_copy"] = time.perf_counter() - t
    return out


def _torch_steady(hidden: int, steady_epochs: int, synthetic: int | None, compiled: bool):
    run = r.torch_runner(2, compiled)
    _, seconds, loss = run(None, None, hidden, steady_epochs, synthetic_n=synthetic)
    return {"steady": list(map(float, seconds[1:])), "loss": loss}


def _med(values) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold-epochs", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--steady-epochs", type=int, default=4)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument(
        "--cold-runners", nargs="+", choices=COLD_RUNNERS, default=COLD_RUNNERS, metavar="RUNNER"
    )
    ap.add_argument(
        "--warm-runners",
        nargs="+",
        choices=list(r.JAX_RUNNERS),
        default=list(r.JAX_RUNNERS),
        metavar="RUNNER",
        help="JAX runners of the warm and steady parts (default: all; smoke runs take fewer)",
    )
    ap.add_argument("--synthetic", type=int, metavar="N", help="N random examples instead")
    ap.add_argument("--out", type=Path, help="write the raw results here (JSON)")
    args = ap.parse_args(argv)
    if "gdjax.fit" not in args.warm_runners or (args.skip_torch and len(args.warm_runners) < 2):
        ap.error("--warm-runners needs gdjax.fit and an anchor to compare it with")

    import jax

    import gdjax

    cold_runners = [c for c in args.cold_runners if not (args.skip_torch and c.startswith("torch"))]
    cached_runner = "gdjax.fit (persistent cache)"
    x, y = r.load(args.synthetic)
    results: dict = {"cold": {}, "warm": {}, "steady": {}}
    with tempfile.TemporaryDirectory() as cache:
        for h in args.hidden if cached_runner in cold_runners else ():
            _cold(cached_runner, h, 1, args.synthetic, cache)  # fill the cache once per size
        for rnd in range(args.rounds):
            for h in args.hidden:
                for e in args.cold_epochs:
                    for runner in cold_runners:
                        res = _cold(runner, h, e, args.synthetic, cache)
                        key = f"{h}/{e}/{runner}"
                        results["cold"].setdefault(key, []).append(res["wall"])
                        print(f"round {rnd} cold H={h} epochs={e} {runner}: {res['wall']:.2f} s",
                              flush=True)  # fmt: skip
                ip = _in_process(h, args.steady_epochs, x, y, args.warm_runners)
                for name, v in ip.items():
                    if name == "host_to_device_copy":
                        results["warm"].setdefault(f"{h}/copy", []).append(v)
                        continue
                    results["warm"].setdefault(f"{h}/{name}", []).append(v["warm_overhead"])
                    results["steady"].setdefault(f"{h}/{name}", []).extend(v["steady"])
                if not args.skip_torch:
                    for compiled in (False, True):
                        name = "torch-2 compile" if compiled else "torch-2 eager"
                        v = _torch_steady(h, args.steady_epochs, args.synthetic, compiled)
                        results["steady"].setdefault(f"{h}/{name}", []).extend(v["steady"])

    lines = [f"cpu cores: {os.cpu_count()}; jax {jax.__version__}; gdjax {gdjax.__version__}"]
    for h in args.hidden:
        lines.append(f"\nH = {h}: cold call (fresh process, compile included), median [range] s")
        for e in args.cold_epochs:
            for runner in cold_runners:
                v = results["cold"][f"{h}/{e}/{runner}"]
                lines.append(
                    f"  {e:>2} epoch(s)  {runner:<30} {_med(v):7.2f}  [{min(v):.2f}-{max(v):.2f}]"
                )
            anchors = {
                k: _med(results["cold"][f"{h}/{e}/{k}"])
                for k in cold_runners
                if not k.startswith("gdjax")
            }
            best = min(anchors, key=anchors.get)
            for runner in (r_ for r_ in cold_runners if r_.startswith("gdjax")):
                mine = _med(results["cold"][f"{h}/{e}/{runner}"])
                lines.append(
                    f"  {e:>2} epoch(s)  fastest anchor {best}: {runner} is "
                    f"{anchors[best] / mine:.2f}x its speed"
                )
        copy = _med(results["warm"][f"{h}/copy"])
        lines.append(f"H = {h}: warm call, fixed overhead (call minus its epochs), median ms")
        for name in args.warm_runners:
            v = results["warm"][f"{h}/{name}"]
            lines.append(
                f"  {name:<30} {1e3 * _med(v):8.1f}  [{1e3 * min(v):.1f}-{1e3 * max(v):.1f}]"
            )
        lines.append(f"  host-to-device copy of the data set: {1e3 * copy:.1f} ms")
        lines.append(f"H = {h}: steady epoch, median [range] s")
        steady = {
            k.split("/", 1)[1]: v for k, v in results["steady"].items() if k.startswith(f"{h}/")
        }
        for name, v in steady.items():
            lines.append(f"  {name:<30} {_med(v):7.3f}  [{min(v):.3f}-{max(v):.3f}]")
        anchors = {k: _med(v) for k, v in steady.items() if k != "gdjax.fit"}
        best = min(anchors, key=anchors.get)
        lines.append(
            f"  fastest anchor {best}: gdjax.fit is {anchors[best] / _med(steady['gdjax.fit']):.2f}x"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        r.write_result(args.out, args, results, text)


if __name__ == "__main__":
    main()
