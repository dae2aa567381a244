"""Study: federated learning — FedSGD vs FedAvg vs FedProx vs FedAdam on Fashion-MNIST clients.

The documents name federated learning as where gradient descent is heading ("adapted for
decentralized training across multiple devices") without a number. The number that made
federated averaging practical is McMahan et al.'s (2017): training locally for several epochs
between communications cuts the rounds needed to reach a target accuracy by an order of
magnitude or more against FedSGD (one gradient step per round). Here 100 clients hold 600
Fashion-MNIST training images each, split IID or pathologically non-IID (2 labels per
client); 10 clients take part in each round; every algorithm trains the same MLP
784-32-32-10 from the same start with its best learning rate from a small grid, and the
global model's test accuracy is measured after every round. Centralised ``gdjax.fit`` on all
60,000 images is the reference.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import images
from experiments._report import claims_table, figure, pct, table
from experiments.studies import init_variables, prng_key
from gdjax.models import MLP

SOURCE = (
    "gradient-descent-guide.md, 'Emerging Trends in Gradient Descent' (federated learning); "
    "McMahan et al. (2017), 'Communication-Efficient Learning of Deep Networks from "
    "Decentralized Data'"
)
DOC_CLAIM = (
    "Federated Learning: Gradient Descent is adapted for decentralized training across "
    "multiple devices."
)
PARTITIONS = ("IID", "non-IID (2 labels per client)")


def _settings(ctx: Context) -> dict[str, Any]:
    return {
        "clients": ctx.pick(10, 100),
        "per_client": ctx.pick(40, 600),
        "clients_per_round": ctx.pick(2, 10),
        "local_epochs": ctx.pick(2, 5),
        "batch_size": 10,
        "hidden": ctx.pick((), (32, 32)),
        "test_examples": ctx.pick(500, 10000),
        "target_accuracy": ctx.pick(0.5, 0.80),
        "high_target_accuracy": ctx.pick(0.6, 0.85),
        "fedsgd_rounds": ctx.pick(20, 1500),
        "fedavg_rounds": ctx.pick(8, 300),
        "prox_mu": 0.01,
        "centralised_epochs": ctx.pick(2, 20),
    }


def _algorithms(ctx: Context) -> dict[str, dict[str, Any]]:
    """Each algorithm's fixed settings and its learning-rate grid (client, or server for
    FedAdam); the optimizers are built once, so that both partitions run the same compiled
    programs."""
    sgd_grid = ctx.pick((0.3,), (0.1, 0.3, 1.0))
    avg_grid = ctx.pick((0.1,), (0.03, 0.1))
    adam_grid = ctx.pick((0.01,), (0.003, 0.01))
    algorithms = {
        "FedSGD": {
            "grid": sgd_grid,
            "make": [(gdjax.sgd(lr), gdjax.sgd(1.0)) for lr in sgd_grid],
            "kw": {"local_epochs": 1, "batch_size": None, "shuffle": False},
        },
        "FedAvg": {
            "grid": avg_grid,
            "make": [(gdjax.sgd(lr), gdjax.sgd(1.0)) for lr in avg_grid],
            # quick: a fixed order, which compiles faster (the full run reshuffles every epoch)
            "kw": {"shuffle": not ctx.quick},
        },
        "FedProx": {
            "grid": avg_grid,
            "make": [(gdjax.sgd(lr), gdjax.sgd(1.0)) for lr in avg_grid],
            "kw": {"prox_mu": 0.01},
        },
        "FedAdam": {
            "grid": adam_grid,
            # Reddi et al.'s FedAdam: adaptive server step, epsilon ("tau") 1e-3
            "make": [(gdjax.sgd(0.05), gdjax.adam(lr, eps=1e-3)) for lr in adam_grid],
            "kw": {},
        },
    }
    if ctx.quick:  # seconds in the test suite: the headline's two algorithms only
        return {k: algorithms[k] for k in ("FedSGD", "FedAvg")}
    return algorithms


def rounds_to(curve: np.ndarray, target: float) -> int | None:
    """1-based round at which ``curve`` first reaches ``target`` (``None`` if never)."""
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(hit[0] + 1) if hit.size else None


def _best(runs: list[dict]) -> int:
    """The grid entry reaching the target in fewest rounds, ties (and misses) by final accuracy."""
    keys = [(r["rounds_to_target"] or np.inf, -r["final_accuracy"]) for r in runs]
    return min(range(len(runs)), key=keys.__getitem__)


def measure(ctx: Context) -> dict[str, Any]:
    """Train every algorithm on both partitions and centrally; return the curves and counts."""
    s = _settings(ctx)
    n_train = s["clients"] * s["per_client"]
    data = images(ctx, 60000, s["test_examples"], prefer="fashion")
    y = data.y_train.astype(np.int32)
    # a class-balanced training set: every label-shard client then has the same size
    rng = np.random.default_rng(ctx.seed)
    per_class = n_train // 10
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in range(10)])
    )
    x = data.x_train[keep].reshape(len(keep), -1)
    y = y[keep]
    xte = data.x_test.reshape(len(data.x_test), -1)
    yte = data.y_test.astype(np.int32)
    model = MLP(features=(*s["hidden"], 10))
    params = init_variables(ctx, model, x[:1])

    def loss(p: Any, batch: tuple) -> jax.Array:
        return gdjax.losses.softmax_cross_entropy(model.apply(p, batch[0]), batch[1])

    def accuracy(p: Any, batch: tuple) -> jax.Array:
        return jnp.mean(jnp.argmax(model.apply(p, batch[0]), -1) == batch[1])

    splits = {
        PARTITIONS[0]: gdjax.federated.partition.iid(n_train, s["clients"], seed=ctx.seed),
        PARTITIONS[1]: gdjax.federated.partition.label_shards(y, s["clients"], 2, seed=ctx.seed),
    }
    common = dict(
        clients_per_round=s["clients_per_round"],
        key=prng_key(ctx),
        validation_data=(xte, yte),
        metrics={"accuracy": accuracy},
    )
    description = f"{data.description}; {len(keep):,} training images used, {per_class} per class"
    results: dict[str, Any] = {"settings": s, "data": description, "partitions": {}}
    algorithms = _algorithms(ctx)
    for part_name, parts in splits.items():
        clients = gdjax.federated.partition.split((x, y), parts)
        labels = [len(np.unique(y[p])) for p in parts]
        per_algo = {}
        for algo, spec in algorithms.items():
            rounds = s["fedsgd_rounds"] if algo == "FedSGD" else s["fedavg_rounds"]
            kw = {"local_epochs": s["local_epochs"], "batch_size": s["batch_size"], **spec["kw"]}
            runs = []
            for lr, (client_opt, server_opt) in zip(spec["grid"], spec["make"], strict=True):
                res = gdjax.federated.fit(
                    loss, params, client_opt, server_opt, clients, rounds=rounds, **common, **kw
                )
                acc = res.history["val_accuracy"]
                runs.append(
                    {
                        "learning_rate": lr,
                        "accuracy": acc.tolist(),
                        "train_loss": res.history["loss"].tolist(),
                        "rounds_to_target": rounds_to(acc, s["target_accuracy"]),
                        "rounds_to_high_target": rounds_to(acc, s["high_target_accuracy"]),
                        "final_accuracy": float(acc[-1]),
                        "seconds_per_round": float(np.median(res.round_seconds[1:])),
                    }
                )
            best = _best(runs)
            per_algo[algo] = {"rounds": rounds, "grid": runs, "best": best, **runs[best]}
        results["partitions"][part_name] = {
            "labels_per_client": [min(labels), max(labels)],
            "algorithms": per_algo,
        }
    central = gdjax.fit(
        loss,
        params,
        gdjax.sgd(0.05),
        (x, y),
        batch_size=s["batch_size"],
        epochs=s["centralised_epochs"],
        key=prng_key(ctx),
        shuffle=not ctx.quick,
        validation_data=(xte, yte),
        metrics={"accuracy": accuracy},
    )
    acc = central.history["val_accuracy"]
    results["centralised"] = {
        "learning_rate": 0.05,
        "accuracy": acc.tolist(),
        "epochs_to_target": rounds_to(acc, s["target_accuracy"]),
        "epochs_to_high_target": rounds_to(acc, s["high_target_accuracy"]),
        "final_accuracy": float(acc[-1]),
    }
    return results


def _ratio(a: int | None, b: int | None) -> float | None:
    return a / b if a and b else None


def _times(r: float | None) -> str:
    return f"{r:.1f}×" if r else "— (a target not reached)"


def run(ctx: Context) -> StudyResult:
    numbers = measure(ctx)
    s, central = numbers["settings"], numbers["centralised"]
    target, high = s["target_accuracy"], s["high_target_accuracy"]
    ratios, high_ratios = {}, {}
    sections = []
    fig, axes = figure(ncols=2, width=5.5)
    for ax, (part, res) in zip(axes, numbers["partitions"].items(), strict=True):
        algos = res["algorithms"]
        ratios[part] = _ratio(
            algos["FedSGD"]["rounds_to_target"], algos["FedAvg"]["rounds_to_target"]
        )
        high_ratios[part] = _ratio(
            algos["FedSGD"]["rounds_to_high_target"], algos["FedAvg"]["rounds_to_high_target"]
        )
        rows = []
        for name, a in algos.items():
            grid = ", ".join(
                f"{r['learning_rate']:g}: {r['rounds_to_target'] or '—'}" for r in a["grid"]
            )
            rows.append(
                [
                    name,
                    f"{a['learning_rate']:g}",
                    a["rounds_to_target"] or f"not in {a['rounds']}",
                    a["rounds_to_high_target"] or f"not in {a['rounds']}",
                    pct(a["final_accuracy"]),
                    a["rounds"],
                    grid,
                    f"{1e3 * a['seconds_per_round']:.1f}",
                ]
            )
            ax.plot(np.arange(1, len(a["accuracy"]) + 1), a["accuracy"], label=name)
        ax.axhline(central["final_accuracy"], color="k", ls="--", lw=1, label="centralised fit")
        ax.axhline(target, color="grey", ls=":", lw=1, label=f"target {pct(target)}")
        ax.set(title=part, xlabel="round", ylabel="test accuracy", xscale="log")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        sections.append(
            f"### {part}\n\nEach client holds {res['labels_per_client'][0]}–"
            f"{res['labels_per_client'][1]} labels.\n\n"
            + table(
                [
                    "algorithm",
                    "best lr",
                    f"rounds to {pct(target)}",
                    f"rounds to {pct(high)}",
                    "final accuracy",
                    "rounds run",
                    "rounds to target per lr",
                    "ms per round",
                ],
                rows,
            )
        )
    iid, non_iid = (ratios[p] for p in PARTITIONS)
    iid_algos = numbers["partitions"][PARTITIONS[0]]["algorithms"]
    best_fed = max(a["final_accuracy"] for a in iid_algos.values())
    claims = [
        (
            DOC_CLAIM,
            f"{s['clients']} clients that never share their images train one model: the best "
            f"federated "
            f"run reaches {pct(best_fed)} test accuracy (IID), centralised gdjax.fit on the "
            f"pooled data {pct(central['final_accuracy'])}",
            best_fed >= central["final_accuracy"] - 0.05,
        ),
        (
            "McMahan et al. (2017): several local epochs per round (FedAvg) cut the "
            "communication rounds to a target accuracy by an order of magnitude or more "
            "against FedSGD",
            f"FedSGD / FedAvg rounds to {pct(target)}: IID {_times(iid)}, non-IID "
            f"{_times(non_iid)}",
            None if iid is None else iid >= 10,
        ),
    ]
    headline = (
        f"FedSGD needs {_times(iid)} FedAvg's rounds to {pct(target)} (IID), {_times(non_iid)} "
        f"non-IID (McMahan et al.: 10× or more); best federated accuracy {pct(best_fed)} vs "
        f"centralised {pct(central['final_accuracy'])}"
    )
    layers = "-".join(str(h) for h in (784, *s["hidden"], 10))
    model = f"MLP {layers} (ReLU)" if s["hidden"] else "softmax regression 784-10"
    only = " (quick settings: FedSGD and FedAvg only)" if ctx.quick else ""
    page = f"""
## Setting

{s["clients"]} clients of {s["per_client"]} training images each; {s["clients_per_round"]} clients
drawn per round (without replacement, from the run's key); {model} from one
initialisation for every run; test accuracy of the global model on {s["test_examples"]:,}
test images after every round{only}. FedAvg, FedProx and FedAdam run {s["local_epochs"]} local
epochs of SGD on mini-batches of {s["batch_size"]}; FedSGD takes one full-batch gradient step
per client per round (``local_epochs=1, batch_size=None``) and is given
{s["fedsgd_rounds"]} rounds, the others {s["fedavg_rounds"]}. FedProx adds μ = {s["prox_mu"]};
FedAdam's server is Adam (ε = 10⁻³) on the averaged update, its clients SGD 0.05. Each
algorithm's learning rate (the server's for FedAdam) is the one of its grid that reaches
{pct(target)} in fewest rounds. Centralised: ``gdjax.fit`` on all {s["clients"] * s["per_client"]:,}
images, SGD 0.05, batch {s["batch_size"]}, {s["centralised_epochs"]} epochs: final accuracy
{pct(central["final_accuracy"])}, {pct(target)} after {central["epochs_to_target"] or "—"}
epoch(s), {pct(high)} after {central["epochs_to_high_target"] or "—"} (an epoch is
{s["clients"] * s["per_client"] // s["batch_size"]:,} steps).

## Rounds to {pct(target)} test accuracy

{(chr(10) * 2).join(sections)}

## FedSGD over FedAvg, measured

| partition | to {pct(target)} | to {pct(high)} |
|---|---|---|
| IID | {_times(iid)} | {_times(high_ratios[PARTITIONS[0]])} |
| non-IID | {_times(non_iid)} | {_times(high_ratios[PARTITIONS[1]])} |

A FedAvg round costs {s["local_epochs"]} local epochs of computation on each client where a
FedSGD round costs one gradient; what it saves is communication, the scarce resource on
phones. Every round above is one compiled program that trains all {s["clients_per_round"]}
clients at once (``gdjax.federated.fit``).

## Claims

{claims_table(claims)}
"""
    return StudyResult(numbers, page, {"accuracy": fig}, headline, numbers["data"])


STUDY = Study("federated", "Federated learning", SOURCE, run, default=False)
