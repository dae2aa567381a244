"""Study 1: learning rate vs convergence — a single-layer network on MNIST-format images.

The document's table: loss after each of 10 epochs for learning rates 0.01 / 0.005 / 0.001.
Here a softmax regression (one dense layer, 784→10) is trained with SGD and with Adam over a
wide grid of rates — one ``gdjax.sweep`` per optimizer, its rates vmapped in one program.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import images
from experiments._history import epoch_loss, final
from experiments._report import claims_table, figure, fmt, pct, table
from experiments._toy import either

DOC = {
    0.01: [0.56, 0.34, 0.23, 0.15, 0.10, 0.08, 0.07, 0.06, 0.05, 0.04],
    0.005: [0.50, 0.32, 0.20, 0.12, 0.08, 0.06, 0.05, 0.04, 0.03, 0.03],
    0.001: [0.45, 0.28, 0.17, 0.10, 0.06, 0.04, 0.03, 0.02, 0.02, 0.01],
}
SGD_RATES = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 20.0)
ADAM_RATES = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.5, 5.0)


def run(ctx: Context) -> StudyResult:
    data = images(ctx, ctx.pick(2000, 60000), ctx.pick(500, 10000))
    d = int(np.prod(data.x_train.shape[1:]))
    xtr, xte = data.x_train.reshape(-1, d), data.x_test.reshape(-1, d)
    epochs, batch = ctx.pick(3, 10), 32
    params = {"w": np.zeros((d, 10), np.float32), "b": np.zeros(10, np.float32)}

    def logits(p, x):
        return x @ p["w"] + p["b"]

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(logits(p, b[0]), b[1])

    def accuracy(p, b):
        return gdjax.metrics.accuracy(logits(p, b[0]), b[1])

    optimizers = {"SGD": (gdjax.sgd, SGD_RATES), "Adam": (gdjax.adam, ADAM_RATES)}

    def sweep(make: Callable, hparams: dict) -> gdjax.SweepResult:
        return gdjax.sweep(
            loss,
            params,
            make,
            (xtr, data.y_train),
            hparams=hparams,
            seeds=ctx.seed,
            batch_size=batch,
            epochs=epochs,
            # quick: a fixed order (each epoch's permutation is a program of its own to compile)
            shuffle=not ctx.quick,
            drop_last=True,  # equal batches, so the spread of the step losses compares steps
            validation_data=(xte, data.y_test),
            metrics={"acc": accuracy},
            record_steps=True,
            progress=ctx.show_progress,
        )

    names, sweeps = [], {}
    if ctx.quick:  # one sweep for both: SGD and Adam as one optimizer picked by a traced flag
        # (both updates are computed, one is kept) — one set of programs to compile, not two
        both = sweep(
            lambda h: either(h["adam"], gdjax.sgd(h["lr"]), gdjax.adam(h["lr"])),
            {
                "lr": np.asarray([*SGD_RATES, *ADAM_RATES], np.float32),
                "adam": np.repeat([0.0, 1.0], [len(SGD_RATES), len(ADAM_RATES)]),
            },
        )
        sweeps = {o: both for o in optimizers}
        names = [("SGD", r, i) for i, r in enumerate(SGD_RATES)]
        names += [("Adam", r, len(SGD_RATES) + i) for i, r in enumerate(ADAM_RATES)]
    else:
        for o, (make, rates) in optimizers.items():
            hparams = {"lr": np.asarray(rates, np.float32)}
            sweeps[o] = sweep(lambda h, make=make: make(h["lr"]), hparams)
            names += [(o, r, i) for i, r in enumerate(rates)]
    runs = {}
    for o, r, i in names:
        res = sweeps[o]
        steps = res.history["step_loss"][i]  # (epochs, steps per epoch)
        runs[f"{o} lr={r:g}"] = {
            "optimizer": o,
            "lr": r,
            "epoch_train_loss": epoch_loss(res.history)[i].tolist(),
            "test_loss": res.history["val_loss"][i].tolist(),
            "test_accuracy": float(final(res.history["val_acc"], res.epochs_run)[i]),
            "step_loss_std_last_epoch": float(np.std(steps[-1])),
            "diverged": bool(not np.all(np.isfinite(steps))),
        }
    seconds = {o: res.epoch_seconds[batch] for o, res in sweeps.items()}
    later = {o: float(np.median(v[1:] if len(v) > 1 else v)) for o, v in seconds.items()}
    # the document's three rates, side by side
    rows = []
    for r, doc in DOC.items():
        ours = runs[f"SGD lr={r:g}"]["epoch_train_loss"]
        rows.append([f"{r:g} (document)", *[f"{v:.2f}" for v in doc[:epochs]]])
        rows.append([f"{r:g} (measured, SGD)", *[f"{v:.2f}" for v in ours]])
    grid_rows = [
        [
            name,
            fmt(v["epoch_train_loss"][0]),
            fmt(v["epoch_train_loss"][-1]),
            fmt(v["test_loss"][-1]),
            pct(v["test_accuracy"]),
            fmt(v["step_loss_std_last_epoch"]),
        ]
        for name, v in runs.items()
    ]
    sgd_final = {r: runs[f"SGD lr={r:g}"]["epoch_train_loss"][-1] for r in SGD_RATES}
    best_sgd = min(sgd_final, key=lambda r: sgd_final[r] if np.isfinite(sgd_final[r]) else np.inf)
    worst_high = max(SGD_RATES)
    adam_final = {r: runs[f"Adam lr={r:g}"]["epoch_train_loss"][-1] for r in ADAM_RATES}
    best_adam = min(
        adam_final, key=lambda r: adam_final[r] if np.isfinite(adam_final[r]) else np.inf
    )
    doc_order = sgd_final[0.001] < sgd_final[0.005] < sgd_final[0.01]
    fig, axes = figure(ncols=2)
    for v in runs.values():
        ax = axes[0] if v["optimizer"] == "SGD" else axes[1]
        ax.plot(range(1, epochs + 1), v["epoch_train_loss"], label=f"lr {v['lr']:g}")
    for ax, o in zip(axes, ("SGD", "Adam"), strict=True):
        ax.set(
            title=f"{o}: mean training loss per epoch", xlabel="epoch", ylabel="loss", yscale="log"
        )
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    for doc in DOC.values():
        axes[0].plot(range(1, len(doc[:epochs]) + 1), doc[:epochs], "k:", lw=1)
    reading = (
        f"The document's table has the *smallest* rate (0.001) converging fastest (0.45 → 0.01). "
        f"Measured, the order is {'the same' if doc_order else 'the opposite'}: after {epochs} "
        f"epochs SGD reaches {fmt(sgd_final[0.01])} at 0.01, {fmt(sgd_final[0.005])} at 0.005 and "
        f"{fmt(sgd_final[0.001])} at 0.001 — "
        + (
            "a smaller rate takes smaller steps and so, on a convex problem like this, "
            "converges more slowly, which is also what the document's own prose says "
            "('a low learning rate may lead to slow convergence'). The table contradicts its "
            "prose; the run agrees with the prose."
            if not doc_order
            else "matching the table."
        )
        + f" Nor does a single-layer network reach a training loss of 0.01–0.04 on "
        f"{data.name}: its loss levels off far higher (a linear classifier cannot fit these "
        f"images that well). Over the wider grid the best SGD rate is {best_sgd:g}; at "
        f"lr {worst_high:g} the run "
        + (
            "diverged (non-finite loss)"
            if runs[f"SGD lr={worst_high:g}"]["diverged"]
            else f"overshoots: final loss {fmt(sgd_final[worst_high])} and a per-step loss spread of "
            f"{fmt(runs[f'SGD lr={worst_high:g}']['step_loss_std_last_epoch'])} in the last epoch "
            f"(vs {fmt(runs[f'SGD lr={best_sgd:g}']['step_loss_std_last_epoch'])} at {best_sgd:g})"
        )
        + f". Adam overshoots too: its best rate here is {best_adam:g} (final loss "
        f"{fmt(adam_final[best_adam])}), and at lr 0.5 it ends at {fmt(adam_final[0.5])}."
    )
    page_claims = claims_table(lr_claims(runs, data.name, d, epochs))
    n_sgd, n_adam = len(SGD_RATES), len(ADAM_RATES)
    sweep_text = (
        f"All {n_sgd + n_adam} runs ({n_sgd} SGD rates, {n_adam} Adam rates) ran as **one "
        "`gdjax.sweep`** (quick settings: SGD or Adam picked per run by a flag), vmapped in one "
        "compiled program per epoch."
        if ctx.quick
        else f"Each optimizer's rates ran as **one `gdjax.sweep`**: the {n_sgd} SGD rates (and "
        f"the {n_adam} Adam rates) vmapped in one compiled program per epoch."
    )
    page = f"""
Softmax regression (one dense layer, {d}→10, zero init), mini-batches of {batch}, {epochs}
epochs; "loss" is the mean training cross-entropy over the epoch's examples (the usual
per-epoch log). {sweep_text} The first epoch took
{seconds["SGD"][0]:.1f} s / {seconds["Adam"][0]:.1f} s (compilation included), the later ones
{later["SGD"]:.2f} s / {later["Adam"]:.2f} s (median) for all rates together.

## The document's rates (SGD), epoch by epoch

{table(["learning rate", *[f"epoch {e + 1}" for e in range(epochs)]], rows)}

## Wider grid, SGD and Adam

{
        table(
            [
                "run",
                "epoch-1 loss",
                f"epoch-{epochs} loss",
                "test loss",
                "test accuracy",
                "step-loss std (last epoch)",
            ],
            grid_rows,
        )
    }

## Reading

{reading}

## The document's qualitative claims, against this run

From the "Hyperparameter | Effect" table (learning-rate row; the batch-size row is on
[gd_variants](gd_variants.md) and [batch_size](batch_size.md)) and the "Advantages / Disadvantages
of Gradient Descent" table; each verdict is computed from the SGD grid above (final = epoch
{epochs} training loss).

{page_claims}
"""
    numbers = {
        "epochs": epochs,
        "batch_size": batch,
        "runs": runs,
        "document": {str(k): v for k, v in DOC.items()},
        "epoch_seconds": {o: v.tolist() for o, v in seconds.items()},
    }
    headline = (
        f"SGD epoch-{epochs} loss: {fmt(sgd_final[0.01], 2)} @0.01, {fmt(sgd_final[0.005], 2)} "
        f"@0.005, {fmt(sgd_final[0.001], 2)} @0.001 (document epoch 10: 0.04 / 0.03 / 0.01)"
    )
    return StudyResult(numbers, page, {"curves": fig}, headline, data.description)


def lr_claims(runs: dict, data_name: str, dim: int, epochs: int) -> list[tuple]:
    """The document's learning-rate and gradient-descent claims, each judged on the SGD grid."""
    final = {r: runs[f"SGD lr={r:g}"]["epoch_train_loss"][-1] for r in SGD_RATES}
    ok = {r: v for r, v in final.items() if np.isfinite(v)}
    best = min(ok, key=ok.get)
    below = [r for r in SGD_RATES if r <= best]
    above = [r for r in SGD_RATES if r > best]
    faster = all(final[a] > final[b] for a, b in itertools.pairwise(below))
    worse_above = [r for r in above if not np.isfinite(final[r]) or final[r] > 1.05 * final[best]]
    low = min(SGD_RATES)
    diverged = [r for r in SGD_RATES if not np.isfinite(final[r])]
    worst = max(ok.values())
    acc = max(v["test_accuracy"] for v in runs.values())

    def spread(r: float) -> float:
        return runs[f"SGD lr={r:g}"]["step_loss_std_last_epoch"]

    return [
        (
            "Learning rate — high value: faster convergence",
            f"from {low:g} up to the best rate {best:g}, every higher rate ends lower: "
            + ", ".join(f"{r:g} → {fmt(final[r])}" for r in below),
            faster,
        ),
        (
            "Learning rate — high value: risk of overshooting the optimal solution",
            (
                f"above {best:g}: "
                + ", ".join(f"{r:g} → {fmt(final[r])}" for r in above)
                + f" (per-step loss spread in the last epoch {fmt(spread(max(SGD_RATES)))} at "
                f"{max(SGD_RATES):g} vs {fmt(spread(best))} at {best:g})"
            )
            if above
            else f"the best rate is the grid's largest ({best:g}); no overshoot seen",
            bool(worse_above),
        ),
        (
            "Learning rate — low value: slow convergence",
            f"lr {low:g} ends at {fmt(final[low])} after {epochs} epochs vs {fmt(final[best])} at "
            f"{best:g}",
            final[low] > 1.2 * final[best],
        ),
        (
            "GD advantage — efficient optimization algorithm for training neural networks",
            "no non-gradient method was timed on this problem, so efficiency is not compared",
            None,
        ),
        (
            "GD advantage — can handle high-dimensional data",
            f"{dim}-dimensional {data_name} inputs ({10 * dim + 10:,} parameters): best test "
            f"accuracy {pct(acc)} vs 10% for guessing",
            acc > 0.3,
        ),
        (
            "GD disadvantage — may converge to suboptimal solutions if hyperparameters are not "
            "properly tuned",
            f"same model, data and epochs: final loss {fmt(final[best])} at the best rate, "
            f"{fmt(worst)} at the worst finite one"
            + (f"; diverged at {', '.join(f'{r:g}' for r in diverged)}" if diverged else ""),
            bool(diverged) or worst > 1.5 * final[best],
        ),
        (
            "GD disadvantage — may suffer from the vanishing gradient problem in deep networks",
            "a single-layer network cannot show it; measured in [activations](activations.md)",
            None,
        ),
    ]


STUDY = Study(
    "learning_rate",
    "Learning rate vs convergence",
    "gradient-descent-for-neural-networks.md, 'Impact of Learning Rate on Convergence'",
    run,
)
