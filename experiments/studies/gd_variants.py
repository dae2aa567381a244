"""Study 3: batch GD vs SGD (batch 1) vs mini-batch GD vs Adam on a sentiment task.

The document's table says: standard GD slow / low cost, SGD fast / high cost, mini-batch
moderate / medium, Adam very fast / high. Here each variant trains the same MLP on the same
bag-of-words sentiment data with its best learning rate from a small grid (the grid vmapped in
one program per variant); convergence is measured as epochs, optimizer steps, examples
processed and seconds to reach a target training loss, cost as seconds per epoch, noise as the
spread of the per-step loss.
"""

from __future__ import annotations

import jax
import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import sentiment
from experiments._report import figure, fmt, pct, table
from experiments._train import accuracy, softmax_xent, train_sweep
from gdjax.models import MLP

SOURCE = "gradient-descent-for-neural-networks.md, 'Comparing Gradient Descent Variants'"
DOC = {
    "batch GD": ("Slow", "Low"),
    "SGD (batch 1)": ("Fast", "High"),
    "mini-batch GD (32)": ("Moderate", "Medium"),
    "Adam (mini-batch 32)": ("Very Fast", "High"),
}


def run(ctx: Context) -> StudyResult:
    data = sentiment(ctx, ctx.pick(600, 4000), vocab_size=ctx.pick(300, 1000))
    n = len(data.x_train)
    model = MLP(features=(64, 2), activation="relu")
    params = model.init(jax.random.key(ctx.seed), data.x_train[:1])
    epochs = ctx.pick(3, 25)
    variants = {
        "batch GD": (n, (0.3, 1.0, 3.0), lambda h: gdjax.sgd(h["lr"])),
        "SGD (batch 1)": (1, (0.001, 0.003, 0.01), lambda h: gdjax.sgd(h["lr"])),
        "mini-batch GD (32)": (32, (0.03, 0.1, 0.3), lambda h: gdjax.sgd(h["lr"])),
        "Adam (mini-batch 32)": (32, (3e-4, 1e-3, 3e-3), lambda h: gdjax.adam(h["lr"])),
    }

    def loss(p, b, k, h):
        return softmax_xent(model.apply(p, b[0]), b[1])

    def evaluate(p, h, ev):
        z_tr, z_te = model.apply(p, ev[0]), model.apply(p, ev[2])
        return {"train_loss": softmax_xent(z_tr, ev[1]), "test_acc": accuracy(z_te, ev[3])}

    ev = (data.x_train, data.y_train, data.x_test, data.y_test)
    runs, curves = {}, {}
    for name, (batch, grid, make) in variants.items():
        res = train_sweep(
            ctx,
            loss,
            params,
            make,
            {"lr": list(grid)},
            (data.x_train, data.y_train),
            batch_size=batch,
            epochs=epochs,
            key=jax.random.key(ctx.seed),
            evaluate=evaluate,
            eval_data=ev,
            desc=name,
        )
        full = res.evals["train_loss"]
        best = int(np.nanargmin(np.where(np.isfinite(full[:, -1]), full[:, -1], np.inf)))
        per_epoch = float(np.median(res.epoch_seconds)) / len(grid)
        runs[name] = {
            "batch_size": batch,
            "lr_grid": list(grid),
            "best_lr": grid[best],
            "steps_per_epoch": res.steps_per_epoch,
            "train_loss_per_epoch": full[best].tolist(),
            "final_test_accuracy": float(res.evals["test_acc"][best, -1]),
            "seconds_per_epoch_per_config": per_epoch,
            "compile_seconds": res.compile_seconds,
            "step_loss_std_last_epoch": float(np.std(res.step_loss[best, -res.steps_per_epoch :])),
            "epoch_loss_change_std": float(np.std(np.diff(full[best][len(full[best]) // 2 :]))),
        }
        curves[name] = full[best]
    # half the loss of guessing (ln 2 for two balanced classes)
    target = float(0.5 * np.log(2.0))
    for r in runs.values():
        hit = np.nonzero(np.asarray(r["train_loss_per_epoch"]) <= target)[0]
        e = int(hit[0]) + 1 if hit.size else None
        r["target_loss"] = target
        r["epochs_to_target"] = e
        r["steps_to_target"] = e * r["steps_per_epoch"] if e else None
        r["examples_to_target"] = e * r["steps_per_epoch"] * r["batch_size"] if e else None
        r["seconds_to_target"] = e * r["seconds_per_epoch_per_config"] if e else None
    rows = []
    for name, r in runs.items():
        doc_speed, doc_cost = DOC[name]
        rows.append(
            [
                name,
                doc_speed,
                r["epochs_to_target"] or f"> {epochs}",
                f"{r['steps_to_target']:,}" if r["steps_to_target"] else "—",
                fmt(r["seconds_to_target"]) if r["seconds_to_target"] else "—",
                doc_cost,
                fmt(r["seconds_per_epoch_per_config"]),
                f"{r['best_lr']:g}",
                r["step_loss_std_last_epoch"],
                pct(r["final_test_accuracy"]),
            ]
        )
    fig, (ax1, ax2) = figure(ncols=2)
    for name, ys in curves.items():
        ax1.plot(range(1, len(ys) + 1), ys, label=name)
    ax1.axhline(target, color="k", ls=":", label="target")
    ax1.set(
        title="full training loss after each epoch", xlabel="epoch", ylabel="loss", yscale="log"
    )
    ax1.legend(fontsize=7)
    ax2.bar(range(len(runs)), [r["seconds_per_epoch_per_config"] for r in runs.values()])
    ax2.set_xticks(range(len(runs)), list(runs), rotation=20, ha="right", fontsize=7)
    ax2.set(title="seconds per epoch (compiled)", yscale="log")
    fastest = min(runs, key=lambda k: runs[k]["seconds_to_target"] or np.inf)
    fewest_epochs = min(runs, key=lambda k: runs[k]["epochs_to_target"] or np.inf)
    cheapest = min(runs, key=lambda k: runs[k]["seconds_per_epoch_per_config"])
    dearest = max(runs, key=lambda k: runs[k]["seconds_per_epoch_per_config"])
    noisiest = max(runs, key=lambda k: runs[k]["step_loss_std_last_epoch"])
    sgd, bgd = runs["SGD (batch 1)"], runs["batch GD"]
    cost_match = cheapest == "batch GD" and dearest == "SGD (batch 1)"
    reading = (
        f"Reading. Fewest epochs to the target: **{fewest_epochs}**; least wall time: "
        f"**{fastest}**. Cheapest epoch: **{cheapest}**; most expensive: **{dearest}**. "
        + (
            "Per epoch, cost follows the number of sequential steps: batch GD takes one step "
            f"per epoch, SGD {sgd['steps_per_epoch']:,}, matching the document's cost column "
            "(low for batch GD, high for SGD). "
            if cost_match
            else "The per-epoch cost order differs from the document's cost column at this size. "
        )
        + (
            f"SGD needs fewer epochs than batch GD ({sgd['epochs_to_target']} vs "
            f"{bgd['epochs_to_target'] or '> ' + str(epochs)}), the document's 'fast'; "
            if (sgd["epochs_to_target"] or np.inf) < (bgd["epochs_to_target"] or np.inf)
            else "SGD does not need fewer epochs than batch GD here; "
        )
        + f"in wall-clock seconds the winner is {fastest}. Noisiest per-step loss: "
        f"**{noisiest}**. Adam is "
        + (
            "among the fastest in epochs, as the document's 'very fast' says."
            if runs["Adam (mini-batch 32)"]["epochs_to_target"]
            == runs[fewest_epochs]["epochs_to_target"]
            else "not the fastest in epochs here, against the document's 'very fast'."
        )
    )
    page = f"""
MLP {data.x_train.shape[1]}-64-2 (ReLU), softmax cross-entropy, {epochs} epochs for every
variant; each variant's learning rate is the best of a 3-point grid (the grid runs in one
vmapped program, so "seconds per epoch" is that program's time divided by 3). Target: full
training loss ≤ {
        fmt(target)
    } (half the loss of guessing, ½ ln 2). "Steps" are optimizer updates; examples processed = steps × batch.

{
        table(
            [
                "variant",
                "document: speed",
                "epochs to target",
                "steps to target",
                "seconds to target",
                "document: cost",
                "s / epoch",
                "best lr",
                "per-step loss std (last epoch)",
                "test accuracy",
            ],
            rows,
        )
    }

{reading}
"""
    headline = (
        f"epochs to loss {fmt(target, 2)}: "
        + ", ".join(
            f"{k.split(' (')[0]} {r['epochs_to_target'] or '>' + str(epochs)}"
            for k, r in runs.items()
        )
        + f"; s/epoch batch GD {fmt(runs['batch GD']['seconds_per_epoch_per_config'], 3)} vs "
        f"SGD {fmt(runs['SGD (batch 1)']['seconds_per_epoch_per_config'], 3)} "
        "(document: slow/fast/moderate/very fast)"
    )
    numbers = {"epochs": epochs, "target_loss": target, "document": DOC, "runs": runs}
    return StudyResult(numbers, page, {"curves": fig}, headline, data.description)


STUDY = Study("gd_variants", "Comparing gradient-descent variants", SOURCE, run)
