"""Study 0 (the README's main job): every gdjax optimizer on scikit-learn's digits.

Folded in from the lead's ``experiments/digits_optimizers.py``: a 64-64-10 tanh MLP
(``gdjax.models.MLP``) trained with ``gdjax.fit`` (one compiled program per epoch) and each
optimizer at a conventional learning rate; reports final training loss, test accuracy, seconds.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._report import bars, figure, pct, table
from gdjax.data import fit_standardizer, load_sklearn, train_test_split
from gdjax.models import MLP

OPTIMIZERS = {
    "sgd": lambda: gdjax.sgd(0.1),
    "momentum": lambda: gdjax.momentum(0.05, beta=0.9),
    "nesterov": lambda: gdjax.nesterov(0.05, beta=0.9),
    "adagrad": lambda: gdjax.adagrad(0.05),
    "rmsprop": lambda: gdjax.rmsprop(1e-3),
    "adam": lambda: gdjax.adam(1e-3),
    "adamw": lambda: gdjax.adamw(1e-3, weight_decay=1e-4),
    "nadam": lambda: gdjax.nadam(1e-3),
    "amsgrad": lambda: own_buffers(gdjax.amsgrad(1e-3)),
    "adadelta": lambda: gdjax.adadelta(1.0),
    "adamax": lambda: gdjax.adamax(2e-3),
}
QUICK = ("sgd", "momentum", "adam")


def own_buffers(opt: optax.GradientTransformation) -> optax.GradientTransformation:
    """Give every optimizer-state leaf its own buffer.

    gdjax.amsgrad's ``init`` returns one zeros array for both ``nu`` and ``nu_max``; ``gdjax.fit``
    donates the state, and XLA refuses to donate one buffer twice. Copying the leaves avoids it.
    """
    return optax.GradientTransformation(
        lambda p: jax.tree.map(lambda x: jnp.array(x, copy=True), opt.init(p)), opt.update
    )


def load_digits(seed: int):
    """Digits split 80/20 and standardised on the training statistics."""
    x, y = load_sklearn("digits")
    (xtr, ytr), (xte, yte) = train_test_split(x, y, test_fraction=0.2, seed=seed)
    scaler = fit_standardizer(xtr)
    return (scaler(xtr), ytr), (scaler(xte), yte)


def run(ctx: Context) -> StudyResult:
    (xtr, ytr), (xte, yte) = load_digits(ctx.seed)
    epochs, batch = ctx.pick(3, 20), 32
    model = MLP(features=(64, 64, 10), activation="tanh")
    params = model.init(jax.random.key(ctx.seed), xtr[:1])

    def loss_fn(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    predict = jax.jit(model.apply)
    names = QUICK if ctx.quick else tuple(OPTIMIZERS)
    rows, curves = {}, {}
    for name in ctx.progress(names, desc="optimizers"):
        t0 = time.perf_counter()
        res = gdjax.fit(
            loss_fn,
            params,
            OPTIMIZERS[name](),
            (xtr, ytr),
            batch_size=batch,
            epochs=epochs,
            key=jax.random.key(ctx.seed + 1),
        )
        seconds = time.perf_counter() - t0
        acc = float(gdjax.metrics.accuracy(predict(res.params, xte), yte))
        rows[name] = {
            "train_loss": float(res.history["loss"][-1]),
            "test_accuracy": acc,
            "seconds_incl_compile": seconds,
        }
        curves[name] = np.asarray(res.history["loss"])

    best = max(rows, key=lambda n: rows[n]["test_accuracy"])
    fig, (ax1, ax2) = figure(ncols=2)
    for name, ys in curves.items():
        ax1.plot(range(1, len(ys) + 1), ys, label=name)
    ax1.set(title="digits MLP: training loss", xlabel="epoch", ylabel="loss", yscale="log")
    ax1.legend(fontsize=7, ncol=2)
    bars(
        list(rows),
        [r["test_accuracy"] for r in rows.values()],
        title="test accuracy",
        ylabel="accuracy",
        ax=ax2,
    )
    ax2.set_ylim(0.8, 1.0)
    body_rows = [
        [n, r["train_loss"], pct(r["test_accuracy"]), f"{r['seconds_incl_compile']:.2f}"]
        for n, r in rows.items()
    ]
    adam, sgd = rows["adam"]["test_accuracy"], rows["sgd"]["test_accuracy"]
    verdict = (
        "Adam is ahead, in line with the document's 'very fast'"
        if adam > sgd
        else "plain SGD at lr 0.1 does as well as Adam here, so the document's ranking does not "
        "show on this small problem"
    )
    page = f"""
The documents rank optimizers only in words (gradient-descent-for-neural-networks.md's variants
table calls Adam "very fast"; the guide says "experiment with different optimizers"). This is
the README's main job: one small real problem, every optimizer gdjax ships, each at a
conventional learning rate (not tuned per optimizer), {epochs} epochs of mini-batches of {batch},
trained with `gdjax.fit` (one compiled XLA program per epoch).

{table(["optimizer", "final train loss", "test accuracy", "seconds (incl. compile)"], body_rows)}

Best test accuracy: **{best}** ({pct(rows[best]["test_accuracy"])}). Adam {pct(adam)} vs plain
SGD {pct(sgd)}: {verdict}. With learning rates not tuned per optimizer, differences of a point or two
are within what a different rate would change; the table shows that every optimizer trains,
not which is best in general.
"""
    headline = (
        f"best {best} {pct(rows[best]['test_accuracy'])} test acc; Adam {pct(adam)}, SGD "
        f"{pct(sgd)} (document: Adam 'very fast', no numbers)"
    )
    data = (
        f"scikit-learn digits (real, 1,797 8×8 images): {len(xtr):,} train / {len(xte):,} test, "
        "standardised"
    )
    return StudyResult(
        {"epochs": epochs, "batch_size": batch, "optimizers": rows},
        page,
        {"curves": fig},
        headline,
        data,
    )


STUDY = Study(
    "digits_optimizers",
    "Every optimizer on scikit-learn digits (main job)",
    "README main job; gradient-descent-for-neural-networks.md variants table",
    run,
)
