"""Study 12: the guide's best practices, each measured on a small real or labelled problem.

(a) normalise inputs vs raw; (b) batch norm on vs off in a deep network; (c) a CNN classifying
images with Adam and cross-entropy; (d) an RNN for sentiment; (e) a small Transformer pre-trained,
then fine-tuned with RMSprop and a dynamic learning rate on a toy translation task.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
import optax

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import images, sentiment_sequences
from experiments._history import epoch_loss, final
from experiments._report import claims_table, figure, fmt, pct, table
from experiments._toy import either
from experiments._translation import run_translation
from experiments.studies import init_variables, prng_key
from gdjax.data import fit_standardizer, load_sklearn, train_test_split
from gdjax.models import CNN, MLP, RNNClassifier

SOURCE = "gradient-descent-guide.md, 'Best Practices', 'Solutions', 'Examples' 1–3"


def normalization(ctx: Context) -> dict:
    """(a) Wine: features from ~0.1 to ~1000; the same MLP and rate grid, raw vs standardised.

    SGD and Adam run over the same grid (one ``gdjax.sweep`` per optimizer and input version),
    so the page can also say whether the choice of optimizer matters.
    """
    x, y = load_sklearn("wine")
    (xtr, ytr), (xte, yte) = train_test_split(x, y, test_fraction=0.3, seed=ctx.seed)
    scaler = fit_standardizer(xtr)
    model = MLP(features=(32, 3), activation="tanh")
    params = init_variables(ctx, model, xtr[:1])
    grid = np.logspace(-6, 2, 17)
    epochs = ctx.pick(20, 200)

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    def accuracy(p, b):
        return gdjax.metrics.accuracy(model.apply(p, b[0]), b[1])

    out = {
        "feature_scale_range": [float(np.abs(xtr).mean(0).min()), float(np.abs(xtr).mean(0).max())],
        "lr_grid": grid.tolist(),
        "epochs": epochs,
    }
    optimizers = {"": gdjax.sgd, " (Adam)": gdjax.adam}
    # optimizer name -> (hparams -> optimizer, the sweep's extra hparams)
    makers: dict[str, tuple[Callable, dict]] = {
        opt: (lambda h, make=make: make(h["lr"]), {}) for opt, make in optimizers.items()
    }
    if ctx.quick:  # SGD and Adam as one optimizer picked by a traced flag (both updates are
        # computed, one is kept): all four sweeps then run the same compiled programs

        def sgd_or_adam(h: dict) -> optax.GradientTransformation:
            return either(h["adam"], gdjax.sgd(h["lr"]), gdjax.adam(h["lr"]))

        makers = {
            opt: (sgd_or_adam, {"adam": np.full(len(grid), i, np.float32)})
            for i, opt in enumerate(optimizers)
        }
    for name, (a, b) in {
        "raw inputs": (xtr, xte),
        "standardised": (scaler(xtr), scaler(xte)),
    }.items():
        for opt, (make, flags) in makers.items():
            # one sweep per (input version, optimizer); both input versions share the programs
            res = gdjax.sweep(
                loss,
                params,
                make,
                (a, ytr),
                hparams={"lr": grid.astype(np.float32), **flags},
                seeds=ctx.seed,
                batch_size=16,
                epochs=epochs,
                # quick: a fixed order (each epoch's permutation is a program of its own to compile)
                shuffle=not ctx.quick,
                # quick: no smaller last batch, whose step would compile into a second program
                drop_last=ctx.quick,
                validation_data=(b, yte),
                metrics={"acc": accuracy},
                progress=ctx.show_progress,
            )
            losses = epoch_loss(res.history)
            final_loss = np.where(np.isfinite(losses[:, -1]), losses[:, -1], np.inf)
            best = int(np.argmin(final_loss))
            out[name + opt] = {
                "best_lr": float(grid[best]),
                "final_train_loss": float(final_loss[best]),
                "test_accuracy": float(final(res.history["val_acc"], res.epochs_run)[best]),
                "usable_rates": int(np.sum(final_loss < 0.5)),
                "final_train_loss_per_lr": losses[:, -1].tolist(),
                # runs whose loss diverged or ended above its first epoch's: the curve shows it
                "bad_curves": int(
                    np.sum(~np.all(np.isfinite(losses), 1) | (losses[:, -1] > losses[:, 0]))
                ),
                "_curve": losses[best],
            }
    return out


def batch_norm(ctx: Context) -> dict:
    """(b) A 10-layer ReLU MLP with and without batch norm, same SGD settings, `gdjax.fit`."""
    data = images(ctx, ctx.pick(1000, 10000), ctx.pick(300, 2000))
    depth, epochs = ctx.pick(4, 10), ctx.pick(2, 10)
    out = {"depth": depth, "epochs": epochs, "data": data.description}
    for bn in (False, True):
        model = MLP(features=(*[64] * depth, 10), activation="relu", batch_norm=bn)
        variables = init_variables(ctx, model, data.x_train[:1])
        params = {"params": variables["params"]}
        if bn:

            def loss(p, s, b, model=model):
                logits, upd = model.apply(
                    {**p, "batch_stats": s}, b[0], train=True, mutable=["batch_stats"]
                )
                return gdjax.losses.softmax_cross_entropy(logits, b[1]), upd["batch_stats"]

            state = variables["batch_stats"]
        else:

            def loss(p, b, model=model):
                return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

            state = None
        res = gdjax.fit(
            loss,
            params,
            gdjax.sgd(0.05, momentum=0.9),
            (data.x_train, data.y_train),
            batch_size=64,
            epochs=epochs,
            shuffle=not ctx.quick,
            key=prng_key(ctx),
            model_state=state,
            drop_last=True,
        )
        full = {**res.params, "batch_stats": res.model_state} if bn else res.params
        logits = jax.jit(model.apply)(full, data.x_test)
        out["with batch norm" if bn else "without batch norm"] = {
            "loss_epoch1": float(res.history["loss"][0]),
            "final_train_loss": float(res.history["loss"][-1]),
            "epochs_run": int(res.epochs_run),
            "diverged": res.stop_reason is not None,
            "test_accuracy": float(gdjax.metrics.accuracy(logits, data.y_test)),
            "_curve": np.asarray(res.history["loss"]),
        }
    return out


def cnn(ctx: Context) -> dict:
    """(c) CNN + Adam + cross-entropy, the guide's Example 1."""
    data = images(ctx, ctx.pick(1000, 20000), ctx.pick(300, 10000))
    model = CNN(
        num_classes=10,
        channels=ctx.pick((4, 8), (16, 32)),
        dense=ctx.pick(16, 64),
        # quick: XLA's own convolution, which compiles faster than the CPU default (patch
        # products) and at these widths runs about as fast inside the training loop
        conv_implementation=ctx.pick("xla", "auto"),
    )
    params = init_variables(ctx, model, data.x_train[:1])

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    def acc(p, b):
        return gdjax.metrics.accuracy(model.apply(p, b[0]), b[1])

    epochs = ctx.pick(1, 5)
    res = gdjax.fit(
        loss,
        params,
        gdjax.adam(1e-3),
        (data.x_train, data.y_train),
        batch_size=64,
        epochs=epochs,
        shuffle=not ctx.quick,
        key=prng_key(ctx),
        drop_last=True,
        validation_data=(data.x_test, data.y_test),
        metrics={"accuracy": acc},
        progress=ctx.show_progress,
    )
    return {
        "data": data.description,
        "epochs": epochs,
        "channels": list(model.channels),
        "val_loss_curve": np.asarray(res.history["val_loss"]).tolist(),
        "train_loss_curve": np.asarray(res.history["loss"]).tolist(),
        "test_accuracy": float(res.history["val_accuracy"][-1]),
        "test_loss": float(res.history["val_loss"][-1]),
        "train_loss": float(res.history["loss"][-1]),
        "_curve": np.asarray(res.history["val_accuracy"]),
    }


def rnn_sentiment(ctx: Context) -> dict:
    """(d) LSTM classifier on token sequences, the guide's Example 2."""
    data = sentiment_sequences(ctx, ctx.pick(500, 4000), vocab_size=1000, length=ctx.pick(30, 80))
    model = RNNClassifier(
        vocab_size=1000, num_classes=2, embed_dim=32, hidden_size=ctx.pick(16, 64)
    )
    params = init_variables(ctx, model, data.x_train[:1])

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    def acc(p, b):
        return gdjax.metrics.accuracy(model.apply(p, b[0]), b[1])

    epochs = ctx.pick(1, 10)
    res = gdjax.fit(
        loss,
        params,
        gdjax.adam(2e-3),
        (data.x_train, data.y_train),
        batch_size=32,
        epochs=epochs,
        shuffle=not ctx.quick,
        key=prng_key(ctx),
        drop_last=True,
        validation_data=(data.x_test, data.y_test),
        metrics={"accuracy": acc},
    )
    return {
        "data": data.description,
        "epochs": epochs,
        "test_accuracy": float(res.history["val_accuracy"][-1]),
        "best_test_accuracy": float(np.max(res.history["val_accuracy"])),
        "train_loss": float(res.history["loss"][-1]),
        "majority_baseline": float(max(data.y_test.mean(), 1 - data.y_test.mean())),
        "val_loss_curve": np.asarray(res.history["val_loss"]).tolist(),
        "train_loss_curve": np.asarray(res.history["loss"]).tolist(),
        "_curve": np.asarray(res.history["val_accuracy"]),
    }


def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if not k.startswith("_")}
    return d


def overfit(r: dict) -> dict:
    """Where a run's validation loss bottomed out, and what happened to both losses after."""
    val, tr = np.asarray(r["val_loss_curve"]), np.asarray(r["train_loss_curve"])
    best = int(np.argmin(val))
    return {
        "best_epoch": best + 1,
        "epochs": len(val),
        "val_best": float(val[best]),
        "val_end": float(val[-1]),
        "rose": bool(val[-1] > 1.02 * val[best]),
        "train_kept_falling": bool(tr[-1] < tr[best]),
    }


def dos_and_donts(a: dict, b: dict, c: dict, d: dict) -> list[tuple]:
    """The guide's 'Do's / Don'ts' table, each row judged on this study's numbers."""
    raw, std = a["raw inputs"], a["standardised"]
    raw_adam, std_adam = a["raw inputs (Adam)"], a["standardised (Adam)"]
    nobn, bn = b["without batch norm"], b["with batch norm"]
    fits = {"(c) CNN": overfit(c), "(d) LSTM": overfit(d)}

    def fit_text(name: str, f: dict) -> str:
        return (
            f"{name}: validation loss lowest at epoch {f['best_epoch']} of {f['epochs']} "
            f"({fmt(f['val_best'])}), {fmt(f['val_end'])} at the end"
        )

    def differs(x: dict, y: dict) -> bool:
        """Two optimizers' best runs differ materially (not two losses that are both ~0)."""
        lo, hi = sorted((x["final_train_loss"], y["final_train_loss"]))
        return (
            abs(x["test_accuracy"] - y["test_accuracy"]) >= 0.05
            or abs(x["usable_rates"] - y["usable_rates"]) >= 3
            or (hi > 0.05 and hi > 2 * lo)
        )

    opt_matters = differs(raw, raw_adam) or differs(std, std_adam)
    grid = a["lr_grid"]

    def extremes(r: dict) -> tuple[bool, bool, str]:
        """(lowest rate too slow, highest rate too high, text) on one grid."""
        per_lr = np.asarray(r["final_train_loss_per_lr"], np.float64)
        best = r["final_train_loss"]
        bad = [not np.isfinite(v) or v > 2 * best for v in (per_lr[0], per_lr[-1])]
        text = (
            f"loss {fmt(per_lr[0])} at lr {grid[0]:.0e}, {fmt(best)} at the best "
            f"{r['best_lr']:.0e}, {fmt(per_lr[-1])} at {grid[-1]:.0e}"
        )
        return bad[0], bad[1], text

    low_sgd, high_sgd, text_sgd = extremes(std)
    low_adam, high_adam, text_adam = extremes(std_adam)
    too_low, too_high = low_sgd or low_adam, high_sgd or high_adam
    runs_a = len(grid) * 4
    bad = sum(a[k]["bad_curves"] for k in ("raw inputs", "standardised")) + sum(
        a[k]["bad_curves"] for k in ("raw inputs (Adam)", "standardised (Adam)")
    )
    return [
        (
            "Do: normalize input data for better convergence",
            f"wine, SGD: loss {fmt(raw['final_train_loss'])} raw vs {fmt(std['final_train_loss'])}"
            f" standardised; {raw['usable_rates']} vs {std['usable_rates']} of {len(grid)} rates "
            "reach loss < 0.5",
            std["usable_rates"] > raw["usable_rates"]
            or std["final_train_loss"] < raw["final_train_loss"],
        ),
        (
            "Do: experiment with different optimizers",
            f"best SGD vs best Adam run — raw inputs: loss {fmt(raw['final_train_loss'])} vs "
            f"{fmt(raw_adam['final_train_loss'])}, test {pct(raw['test_accuracy'])} vs "
            f"{pct(raw_adam['test_accuracy'])}, {raw['usable_rates']} vs "
            f"{raw_adam['usable_rates']} usable rates; standardised: loss "
            f"{fmt(std['final_train_loss'])} vs {fmt(std_adam['final_train_loss'])}, test "
            f"{pct(std['test_accuracy'])} vs {pct(std_adam['test_accuracy'])}, "
            f"{std['usable_rates']} vs {std_adam['usable_rates']} usable rates",
            "holds (the choice changes the result)" if opt_matters else False,
        ),
        (
            "Do: regularize the model to prevent overfitting",
            "no regularizer is varied on this page; see [regularization](regularization.md) "
            "and [dropout](dropout.md)",
            None,
        ),
        (
            "Do: use batch normalization for stability",
            f"{b['depth']}-layer MLP: final loss {fmt(nobn['final_train_loss'])} without vs "
            f"{fmt(bn['final_train_loss'])} with BN"
            + "".join(
                f"; {k} hit a non-finite loss"
                for k, v in (("without", nobn), ("with", bn))
                if v["diverged"]
            ),
            bn["final_train_loss"] < nobn["final_train_loss"]
            or (nobn["diverged"] and not bn["diverged"]),
        ),
        (
            "Do: monitor validation loss for early stopping",
            "; ".join(fit_text(k, f) for k, f in fits.items()),
            "holds (stopping at the best epoch keeps a better model)"
            if any(f["rose"] for f in fits.values())
            else "not shown (validation loss did not rise before the last epoch)",
        ),
        (
            "Don't: use a learning rate that is too high or too low",
            f"wine standardised — SGD: {text_sgd}; Adam: {text_adam}",
            "holds"
            if too_low and too_high
            else "holds for too low only (no rate in the grid was too high)"
            if too_low
            else "holds for too high only (no rate in the grid was too low)"
            if too_high
            else False,
        ),
        (
            "Don't: ignore the loss curve during training",
            f"{bad} of {runs_a} runs in (a) diverged or ended above their first-epoch loss; "
            + ("(b) without BN diverged" if nobn["diverged"] else "(b) ran without divergence")
            + " — failures the curve shows as they happen",
            bad > 0 or nobn["diverged"],
        ),
        (
            "Don't: overfit the model to training data",
            "; ".join(
                f"{k}: training loss "
                + ("kept falling" if f["train_kept_falling"] else "did not keep falling")
                + " after the best validation epoch while validation loss "
                + ("rose" if f["rose"] else "did not rise")
                for k, f in fits.items()
            ),
            "holds (overfitting raised the held-out loss)"
            if any(f["rose"] and f["train_kept_falling"] for f in fits.values())
            else "not shown (no run overfitted within its epochs)",
        ),
        (
            "Don't: stick to one batch size without testing alternatives",
            "one batch size per part here; see [batch_size](batch_size.md) and "
            "[gd_variants](gd_variants.md)",
            None,
        ),
        (
            "Don't: assume the global minimum is always achievable",
            "not measured here; see [misconceptions](misconceptions.md) (a)",
            None,
        ),
    ]


def run(ctx: Context) -> StudyResult:
    a, b, c, d = normalization(ctx), batch_norm(ctx), cnn(ctx), rnn_sentiment(ctx)
    e = run_translation(ctx)
    raw, std = a["raw inputs"], a["standardised"]
    nobn, bn = b["without batch norm"], b["with batch norm"]
    ft, scratch = e["pre-trained, then fine-tuned"], e["from scratch (control)"]
    fig, axes = figure(ncols=4, width=4.2)
    axes[0].plot(raw["_curve"], label=f"raw (best lr {raw['best_lr']:.0e})")
    axes[0].plot(std["_curve"], label=f"standardised (best lr {std['best_lr']:.0e})")
    axes[0].set(title="(a) wine MLP: train loss", xlabel="epoch", yscale="log")
    axes[0].legend(fontsize=7)
    axes[1].plot(range(1, len(nobn["_curve"]) + 1), nobn["_curve"], label="without BN")
    axes[1].plot(range(1, len(bn["_curve"]) + 1), bn["_curve"], label="with BN")
    axes[1].set(title=f"(b) {b['depth']}-layer MLP: train loss", xlabel="epoch", yscale="log")
    axes[1].legend(fontsize=7)
    axes[2].plot(range(1, len(c["_curve"]) + 1), c["_curve"], "o-", label="(c) CNN + Adam")
    axes[2].plot(range(1, len(d["_curve"]) + 1), d["_curve"], "s-", label="(d) LSTM sentiment")
    axes[2].set(title="test accuracy per epoch", xlabel="epoch")
    axes[2].legend(fontsize=7)
    axes[3].plot(ft["val_loss_curve"], label="pre-trained → fine-tuned")
    axes[3].plot(scratch["val_loss_curve"], label="from scratch")
    axes[3].set(title="(e) toy translation: test loss", xlabel="fine-tuning epoch", yscale="log")
    axes[3].legend(fontsize=7)
    rows = [
        [
            "Normalize input data (improves convergence and stability)",
            f"wine, MLP, SGD, best of {len(a['lr_grid'])} rates each",
            f"raw: loss {fmt(raw['final_train_loss'])}, test {pct(raw['test_accuracy'])}, "
            f"{raw['usable_rates']} rates reach loss < 0.5; standardised: loss "
            f"{fmt(std['final_train_loss'])}, test {pct(std['test_accuracy'])}, "
            f"{std['usable_rates']} rates",
        ],
        [
            "Batch normalization (stabilises training)",
            f"{b['depth']}-layer ReLU MLP, SGD 0.05 + momentum",
            f"epoch-1 loss {fmt(nobn['loss_epoch1'])} → {fmt(bn['loss_epoch1'])} with BN; final "
            f"{fmt(nobn['final_train_loss'])} → {fmt(bn['final_train_loss'])}; test "
            f"{pct(nobn['test_accuracy'])} → {pct(bn['test_accuracy'])}"
            + "".join(
                f"; {k} hit a non-finite loss in epoch {v['epochs_run']} (training stopped, "
                "last finite parameters kept)"
                for k, v in (("without BN", nobn), ("with BN", bn))
                if v["diverged"]
            ),
        ],
        [
            "CNN with Adam and cross-entropy achieves high accuracy",
            "Example 1",
            f"test accuracy {pct(c['test_accuracy'])} after {c['epochs']} epochs",
        ],
        [
            "RNN for sentiment",
            "Example 2",
            f"test accuracy {pct(d['test_accuracy'])} (majority class {pct(d['majority_baseline'])})",
        ],
        [
            "Pre-trained Transformer fine-tuned with RMSprop + dynamic rate",
            "Example 3",
            f"greedy exact match {pct(ft['test_exact_match_greedy'])} vs "
            f"{pct(scratch['test_exact_match_greedy'])} from scratch; token accuracy "
            f"{pct(ft['test_token_accuracy_greedy'])} vs {pct(scratch['test_token_accuracy_greedy'])}",
        ],
    ]
    verdicts = [
        "holds"
        if std["usable_rates"] > raw["usable_rates"]
        or std["final_train_loss"] < raw["final_train_loss"]
        else "not shown here",
        "holds" if bn["final_train_loss"] < nobn["final_train_loss"] else "not shown here",
        "holds" if c["test_accuracy"] > 0.85 else f"{pct(c['test_accuracy'])} only",
        "trains"
        if d["test_accuracy"] > d["majority_baseline"] + 0.05
        else "does not beat the majority baseline here",
        "pre-training helps"
        if ft["test_token_accuracy_greedy"] > scratch["test_token_accuracy_greedy"] + 0.02
        else "pre-training did not help here",
    ]
    rows = [[*r, v] for r, v in zip(rows, verdicts, strict=True)]
    raw_adam, std_adam = a["raw inputs (Adam)"], a["standardised (Adam)"]
    a_reading = (
        f"Best SGD rate: {raw['best_lr']:.0e} on raw inputs, {std['best_lr']:.0e} standardised"
        + (
            " — the large feature forces a smaller step on raw inputs. "
            if raw["best_lr"] < std["best_lr"]
            else ". "
        )
        + f'"Usable rates" counts grid rates whose final training loss is below 0.5: '
        f"{raw['usable_rates']} raw vs {std['usable_rates']} standardised with SGD, "
        f"{raw_adam['usable_rates']} vs {std_adam['usable_rates']} with Adam (best Adam loss "
        f"{fmt(raw_adam['final_train_loss'])} raw, {fmt(std_adam['final_train_loss'])} "
        "standardised)."
    )
    page = f"""
The guide gives advice without numbers; each piece is measured once here.

{table(["guide says", "setup", "measured", "verdict"], rows)}

## The guide's "Do's and Don'ts", against this run

Each verdict is computed from the numbers of parts (a)–(e) below; advice this study does not
exercise is marked "not tested" with the page that does.

{claims_table(dos_and_donts(a, b, c, d))}

## (a) Normalising inputs — scikit-learn wine

Feature magnitudes range from {fmt(a["feature_scale_range"][0])} to {
        fmt(a["feature_scale_range"][1])
    }
(proline). MLP 13-32-3 (tanh), SGD and Adam, batch 16, {a["epochs"]} epochs, learning rates
1e-6…100 ({len(a["lr_grid"])} per optimizer; each optimizer's grid is one `gdjax.sweep` per
input version, its rates vmapped in one program). {a_reading}

## (b) Batch normalisation — {b["data"]}

{b["depth"]} hidden layers of 64 ReLU units, SGD 0.05 + momentum 0.9, batch 64, {b["epochs"]}
epochs, `gdjax.fit` with the batch statistics as `model_state`; test accuracy uses the running
statistics.

## (c) CNN with Adam and cross-entropy — {c["data"]}

`gdjax.models.CNN` (channels {c["channels"]}), Adam 1e-3, {c["epochs"]} epochs: test accuracy
{pct(c["test_accuracy"])}, test loss {fmt(c["test_loss"])}.

## (d) RNN for sentiment — {d["data"]}

`gdjax.models.RNNClassifier` (LSTM), Adam 2e-3, {d["epochs"]} epochs: test accuracy
{pct(d["test_accuracy"])} (best epoch {pct(d["best_test_accuracy"])}).

## (e) Pre-training then fine-tuning a Transformer — synthetic toy translation

Two artificial "language pairs" over {e["words"]} words, sentences of {e["length"]} words: task A
translates word by word keeping the order ({e["pretrain_examples"]:,} pairs, Adam,
{e["pretrain_epochs"]} epochs); task B uses a dictionary that differs on half the words and
reverses the order ({e["finetune_examples"]} training pairs). Fine-tuning uses RMSprop with a
warm-up + cosine schedule (`gdjax.schedules.warmup_cosine_decay_schedule`, peak 1e-3),
{e["finetune_epochs"]} epochs; the control runs the same fine-tuning from a fresh
initialisation. Scores on {e["test_examples"]} held-out task-B sentences, greedy decoding:

{
        table(
            [
                "start",
                "exact match (greedy)",
                "token accuracy (greedy)",
                "token accuracy (teacher forced)",
                "final train loss",
            ],
            [
                [
                    k,
                    pct(v["test_exact_match_greedy"]),
                    pct(v["test_token_accuracy_greedy"]),
                    pct(v["test_token_accuracy_teacher_forced"]),
                    v["final_train_loss"],
                ]
                for k, v in (
                    ("pre-trained, then fine-tuned", ft),
                    ("from scratch (control)", scratch),
                )
            ],
        )
    }
"""
    headline = (
        f"standardised vs raw wine: {std['usable_rates']} vs {raw['usable_rates']} usable rates; "
        f"BN final loss {fmt(bn['final_train_loss'], 2)} vs {fmt(nobn['final_train_loss'], 2)}; "
        f"CNN {pct(c['test_accuracy'])}; fine-tuned vs scratch exact match "
        f"{pct(ft['test_exact_match_greedy'])} vs {pct(scratch['test_exact_match_greedy'])} "
        "(guide: advice, no numbers)"
    )
    numbers = strip(
        {
            "a_normalization": a,
            "b_batch_norm": b,
            "c_cnn": c,
            "d_rnn_sentiment": d,
            "e_transformer_finetune": e,
        }
    )
    data = (
        f"scikit-learn wine (real); {b['data']}; {d['data']}; synthetic toy translation "
        "(labelled stand-in)"
    )
    return StudyResult(numbers, page, {"panels": fig}, headline, data)


STUDY = Study("best_practices", "Best practices from the guide", SOURCE, run, default=False)
