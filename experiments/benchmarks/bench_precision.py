"""Mixed precision on this machine: seconds per epoch and test accuracy, float32 against
bfloat16 (and float16 with dynamic loss scaling) compute.

The MLP 784-H-H-10 (``--hidden``, default 256) on Fashion-MNIST's 60,000 training images, and
``gdjax.models.CNN`` (conv 3x3 32 - pool - conv 3x3 64 - pool - dense 128 - 10) on the first
``--cnn-n`` of them; Adam 1e-3, batch 128, the same initial parameters and key for every
policy. The policies take turns (``--rounds``); each trains a fresh model for ``--epochs``
epochs. It prints seconds per epoch (cold: the first epoch of the first round, compilation
included; steady: the median of the epochs after the first) and the accuracy of the returned
float32 parameters on the 10,000 test images.

    python experiments/benchmarks/bench_precision.py --rounds 2 --epochs 3

``--synthetic N`` uses N random examples (and N/5 random test examples) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import _common as c
import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from gdjax.models import CNN

POLICIES = {"float32": None, "bfloat16": "bfloat16", "float16 + loss scaling": "float16"}


def _data(synthetic: int | None):
    x, y = c.load_data(synthetic)
    if synthetic:
        xt, yt = c.load_data(max(synthetic // 5, 10))
    else:
        xt, yt = gdjax.data.load_fashion_mnist("test", flatten=True)
    return x, y, xt, yt.astype(np.int32)


def _train(model, x, y, xt, yt, epochs: int, seed: int, precision: str | None) -> dict:
    params = model.init(jax.random.key(seed), x[:1])

    def loss_fn(p, batch):
        logits = model.apply(p, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    res = gdjax.fit(
        loss_fn,
        params,
        gdjax.adam(1e-3),
        (x, y),
        batch_size=128,
        epochs=epochs,
        key=jax.random.key(seed),
        precision=precision,
    )
    predict = jax.jit(lambda p, xb: jnp.argmax(model.apply(p, xb), -1))
    correct = sum(
        int((np.asarray(predict(res.params, xt[i : i + 1000])) == yt[i : i + 1000]).sum())
        for i in range(0, len(xt), 1000)
    )
    out = {
        "epoch_seconds": [float(s) for s in res.epoch_seconds],
        "last_loss": float(res.history["loss"][-1]),
        "test_accuracy": correct / len(xt),
    }
    if "loss_scale" in res.history:
        out["overflow_steps"] = res.history["overflow_steps"].tolist()
        out["loss_scale"] = res.history["loss_scale"].tolist()
    return out


def run_model(name: str, model, data, epochs: int, rounds: int, policies: dict) -> dict:
    x, y, xt, yt = data
    runs = {p: [] for p in policies}
    for r in range(rounds):
        for label, policy in policies.items():
            out = _train(model, x, y, xt, yt, epochs, r, policy)
            runs[label].append(out)
            print(
                f"  {name} round {r + 1} {label}: {np.round(out['epoch_seconds'], 3)} "
                f"accuracy {out['test_accuracy']:.4f}",
                flush=True,
            )
    rows = {}
    for label, outs in runs.items():
        rows[label] = {
            "cold_s": outs[0]["epoch_seconds"][0],
            "steady_s": float(np.median([s for o in outs for s in o["epoch_seconds"][1:]])),
            "test_accuracy": float(np.mean([o["test_accuracy"] for o in outs])),
            "last_loss": float(np.mean([o["last_loss"] for o in outs])),
            "runs": outs,
        }
    base = rows["float32"]["steady_s"]
    for row in rows.values():
        row["speed_vs_float32"] = base / row["steady_s"]
    return {"n": len(x), "test_n": len(xt), "epochs": epochs, "policies": rows}


def _table(title: str, result: dict) -> None:
    print(f"\n{title}")
    print(f"{'compute':<24} {'cold s':>7} {'steady s':>9} {'vs float32':>11} {'test acc':>9}")
    for label, row in result["policies"].items():
        print(
            f"{label:<24} {row['cold_s']:>7.2f} {row['steady_s']:>9.3f} "
            f"{row['speed_vs_float32']:>10.2f}x {row['test_accuracy']:>9.4f}"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--cnn-n", type=int, default=6400)
    ap.add_argument("--synthetic", type=int, metavar="N")
    ap.add_argument("--models", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"])
    ap.add_argument("--json", default=None)
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    if args.epochs < 2 or args.rounds < 1:
        ap.error("--epochs must be >= 2 and --rounds >= 1")
    data = _data(args.synthetic)
    results = {}
    if "mlp" in args.models:
        title = f"MLP 784-{args.hidden}-{args.hidden}-10"
        mlp = run_model(title, c.MLP(args.hidden), data, args.epochs, args.rounds, POLICIES)
        results["mlp"] = (f"{title}, {mlp['n']} images, batch 128", mlp)
    if "cnn" in args.models:
        x, y, xt, yt = data
        images = (
            x[: args.cnn_n].reshape(-1, 28, 28, 1),
            y[: args.cnn_n],
            xt.reshape(-1, 28, 28, 1),
            yt,
        )
        policies = {k: v for k, v in POLICIES.items() if k != "float16 + loss scaling"}
        cnn = run_model("CNN", CNN(), images, args.epochs, args.rounds, policies)
        results["cnn"] = (f"CNN, {cnn['n']} images, batch 128", cnn)
    for title, result in results.values():
        _table(title, result)
    if args.json:
        record = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
                "device": str(jax.devices()[0]),
            },
            "versions": {
                "python": platform.python_version(),
                "jax": jax.__version__,
                "optax": optax.__version__,
                "numpy": np.__version__,
            },
            "command": " ".join(sys.argv if argv is None else [__file__, *argv]),
            "note": args.note,
            **{name: result for name, (_, result) in results.items()},
        }
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
