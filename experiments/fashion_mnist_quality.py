"""Quality bar on real data: an MLP and a small CNN on Fashion-MNIST's official test split.

Trains with ``gdjax.fit`` and ``gdjax.adam`` on the 60,000 training images for a fixed number
of epochs (chosen in advance; the test split is never used for selection) and reports test
accuracy. One epoch is one compiled program.

Usage (from the repository root; ``python experiments/fashion_mnist_quality.py`` works too):

    python -m experiments.fashion_mnist_quality                     # both models
    python -m experiments.fashion_mnist_quality --models mlp --mlp-epochs 2   # quick look

Writes ``docs/results/fashion_mnist_quality.json`` and ``.md`` (use ``--out-dir`` to change),
with the date, machine and gdjax version of the run. ``--data-dir`` points at another folder
holding the four Fashion-MNIST IDX files (default: Debian's ``dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flax.linen as nn
import jax
import jax.numpy as jnp

import gdjax
from experiments._io import atomic_write_text, describe_machine, machine_info, write_json
from gdjax.data import load_fashion_mnist
from gdjax.losses import softmax_cross_entropy
from gdjax.metrics import accuracy
from gdjax.models import CNN, MLP

MODELS = {
    "mlp": lambda: MLP(features=(512, 256, 10), activation="relu", dropout_rate=0.2),
    "cnn": lambda: CNN(num_classes=10, channels=(32, 64), dense=128, dropout_rate=0.3),
}
DESCRIPTIONS = {
    "mlp": "MLP 784-512-256-10, ReLU, dropout 0.2",
    "cnn": "CNN conv3x3(32)-pool-conv3x3(64)-pool-dense(128)-10, ReLU, dropout 0.3",
}
TARGETS = {"mlp": 0.88, "cnn": 0.91}


def make_evaluate(model: nn.Module, batch_size: int = 1000):
    """Return ``(params, x, y) -> (accuracy, mean loss)`` over every example of ``x``.

    Batches of ``batch_size`` (the last may be smaller); batch means are weighted by size.
    """

    @jax.jit
    def batch_stats(params, xb, yb):
        logits = model.apply(params, xb)
        return accuracy(logits, yb), softmax_cross_entropy(logits, yb)

    def evaluate(params, x, y):
        n = x.shape[0]
        acc = loss = 0.0
        for i in range(0, n, batch_size):
            a, l_ = batch_stats(params, x[i : i + batch_size], y[i : i + batch_size])
            weight = min(batch_size, n - i) / n
            acc, loss = acc + weight * a, loss + weight * l_
        return acc, loss

    return evaluate


def run(name: str, epochs: int, batch_size: int, lr: float, seed: int, data) -> dict:
    """Train one model with ``gdjax.fit`` (the test split as validation data, for the per-epoch
    record only) and evaluate it on the full training and test splits."""
    (x_train, y_train), (x_test, y_test) = data
    model = MODELS[name]()
    key, init_key = jax.random.split(jax.random.key(seed))
    params = jax.jit(model.init)(init_key, x_train[:1])  # one program, not op by op

    def loss_fn(params, batch, key):
        xb, yb = batch
        logits = model.apply(params, xb, train=True, rngs={"dropout": key})
        return softmax_cross_entropy(logits, yb)

    def eval_loss_fn(params, batch, key):  # no dropout
        xb, yb = batch
        return softmax_cross_entropy(model.apply(params, xb), yb)

    def test_accuracy(params, batch):
        xb, yb = batch
        return accuracy(model.apply(params, xb), yb)

    print(f"[{name}] {DESCRIPTIONS[name]}: {epochs} epochs with gdjax.fit", flush=True)
    start = time.perf_counter()
    result = gdjax.fit(
        loss_fn,
        params,
        gdjax.adam(lr),
        (x_train, y_train),
        batch_size=batch_size,
        epochs=epochs,
        key=key,
        takes_key=True,
        drop_last=True,
        validation_data=(x_test, y_test),
        eval_loss_fn=eval_loss_fn,
        metrics={"accuracy": test_accuracy},
        progress=sys.stderr.isatty(),
    )
    total = time.perf_counter() - start
    params, h = result.params, result.history
    history = [
        {
            "epoch": epoch + 1,
            "train_loss": float(h["loss"][epoch]),
            "test_loss": float(h["val_loss"][epoch]),
            "test_accuracy": float(h["val_accuracy"][epoch]),
            "epoch_seconds": float(result.epoch_seconds[epoch]),
        }
        for epoch in range(len(h["loss"]))
    ]
    for r in history:
        print(
            f"[{name}] epoch {r['epoch']:2d}  train loss {r['train_loss']:.4f}  test loss "
            f"{r['test_loss']:.4f}  test acc {r['test_accuracy']:.4f}  ({r['epoch_seconds']:.1f}s)"
        )
    evaluate = make_evaluate(model)
    train_acc, _ = evaluate(params, x_train, y_train)
    test_acc, _ = evaluate(params, x_test, y_test)
    n_params = sum(p.size for p in jax.tree.leaves(params))
    return {
        "model": name,
        "description": DESCRIPTIONS[name],
        "parameters": int(n_params),
        "optimizer": "gdjax.adam",
        "learning_rate": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "trainer": "gdjax.fit",
        "seed": seed,
        "train_seconds": total,
        "final_train_accuracy": float(train_acc),
        "final_test_accuracy": float(test_acc),
        "target": TARGETS[name],
        "passed": float(test_acc) >= TARGETS[name],
        "history": history,
    }


def write_markdown(path: Path, report: dict) -> None:
    lines = [
        "# Fashion-MNIST quality bar",
        "",
        "MLP and small CNN trained with `gdjax.adam` on Fashion-MNIST's 60,000 training images;",
        "accuracy on the official 10,000-image test split after a fixed number of epochs (set",
        "before the run; the test split was not used to choose anything). Data: Debian's",
        "`dataset-fashion-mnist` via `gdjax.data.load_fashion_mnist`. Both models train with",
        "`gdjax.fit` (one compiled program per epoch, shuffled on the device, the last partial",
        "batch dropped); the CNN's convolutions are `gdjax.models.Conv` patch products, which",
        "stay fast inside the epoch's `lax.scan` on XLA:CPU.",
        "",
        "```bash",
        report["command"],
        "```",
        "",
        f"Run on {report['date']}; machine: {report['machine']}; gdjax "
        f"{report['gdjax_version']}, JAX {report['jax_version']} on {report['backend']}; "
        "wall time includes compilation.",
        "",
        "| model | params | epochs | batch | lr | trained with | train time (s) | train acc | test acc | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        mark = "pass" if r["passed"] else "FAIL"
        lines.append(
            f"| {r['description']} | {r['parameters']:,} | {r['epochs']} | {r['batch_size']} | "
            f"{r['learning_rate']:g} | {r['trainer']} | {r['train_seconds']:.0f} | "
            f"{r['final_train_accuracy']:.4f} | **{r['final_test_accuracy']:.4f}** | "
            f">= {r['target']} ({mark}) |"
        )
    lines += ["", "Test accuracy per epoch (for information only):", ""]
    for r in report["runs"]:
        accs = ", ".join(f"{h['test_accuracy']:.4f}" for h in r["history"])
        lines.append(f"- {r['model']}: {accs}")
    lines.append("")
    atomic_write_text(path, "\n".join(lines))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line; errors exit with status 2 before anything runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--cnn-epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the IDX files")
    parser.add_argument(
        "--train-limit", type=int, default=None, help="use only the first N training images"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent.parent / "docs/results"
    )
    args = parser.parse_args(argv)
    args.names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.names:
        parser.error("--models: give at least one of mlp, cnn")
    for m in args.names:
        if m not in MODELS:
            parser.error(f"--models: unknown model {m!r}; choose from {sorted(MODELS)}")
    for flag in ("mlp_epochs", "cnn_epochs", "batch_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1; got {getattr(args, flag)}")
    if not args.lr > 0:
        parser.error(f"--lr must be > 0; got {args.lr}")
    if args.train_limit is not None and args.train_limit < 1:
        parser.error(f"--train-limit must be >= 1; got {args.train_limit}")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not an existing folder")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        parser.error(f"--out-dir {args.out_dir} exists and is not a folder")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = tuple(load_fashion_mnist(s, args.data_dir) for s in ("train", "test"))
    if args.train_limit is not None:
        data = ((data[0][0][: args.train_limit], data[0][1][: args.train_limit]), data[1])
    if args.batch_size > len(data[0][0]):
        print(
            f"error: --batch-size {args.batch_size} exceeds the {len(data[0][0])} training images",
            file=sys.stderr,
        )
        return 2
    data = tuple((jnp.asarray(x), jnp.asarray(y)) for x, y in data)
    epochs = {"mlp": args.mlp_epochs, "cnn": args.cnn_epochs}
    runs = [run(m, epochs[m], args.batch_size, args.lr, args.seed, data) for m in args.names]
    info = machine_info()
    command = " ".join(["python -m experiments.fashion_mnist_quality", *(argv or sys.argv[1:])])
    report = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe_machine(info),
        "machine_info": info,
        "backend": jax.default_backend(),
        "gdjax_version": gdjax.__version__,
        "jax_version": jax.__version__,
        "runs": runs,
    }
    out = args.out_dir
    write_json(out / "fashion_mnist_quality.json", report)
    write_markdown(out / "fashion_mnist_quality.md", report)
    for r in runs:
        print(f"{r['model']}: test accuracy {r['final_test_accuracy']:.4f} (target {r['target']})")
    return 0 if all(r["passed"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
