"""Study: automated tuning — what a tuned learning rate is worth, and what random search and
successive halving buy over a grid, for an MLP on Fashion-MNIST (``gdjax.tune``).

``measure`` trains and returns numbers; ``report`` renders them with the shared report code.

1. *Learning rate.* SGD with momentum 0.9 at 12 log-spaced rates (one program, ``tune.Grid``,
   weight decay at 1e-6), validation accuracy after the full budget; beside it the learning-rate range test
   (``tune.lr_range_test``, one epoch per rate, the same rates) and its suggestion.
2. *Search.* Learning rate and weight decay (log-uniform): a 4 x 4 grid, 16 random
   configurations (three seeds), 16 Sobol configurations, and successive halving of 48 random
   configurations (rungs at 1 and 3 epochs and the budget, eta 3), each one ``tune.search``
   (``--quick``: 4 of each, halving 4 to 1, 2 epochs, 512 training images: three programs).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments._core import Context, Study, StudyResult
from experiments._data import images
from experiments._report import claims_table, figure, fmt, pct, table
from experiments.studies import prng_key
from gdjax import tune

SOURCE = (
    "gradient-descent-for-neural-networks.md, 'Hyperparameters in Gradient Descent'; "
    "gradient-descent-guide.md, 'Solutions to Common Gradient Descent Problems' and "
    "'Emerging Trends'"
)
ADVICE = {
    "rate": "A high learning rate may overshoot the optimal solution; a low one converges slowly.",
    "tuned": "Gradient descent may converge to suboptimal solutions if hyperparameters are not "
    "properly tuned.",
    "experiment": "Hyperparameter tuning: experiment with learning rates, batch sizes and "
    "regularization techniques.",
    "automated": "Automated hyperparameter tuning: using AI to optimize learning rates and other "
    "parameters.",
}
LR_RANGE = (1e-3, 3.0)
SPACE = {"lr": tune.LogUniform(1e-3, 1.0), "wd": tune.LogUniform(1e-6, 1e-2)}


class _Problem:
    """The MLP, its loss and accuracy, and the data, shared by every search of the study."""

    def __init__(self, ctx: Context) -> None:
        n_train, n_val = ctx.pick(512, 12800), ctx.pick(256, 6400)
        data = images(ctx, n_train + n_val, ctx.pick(256, 10000))
        flat = data.x_train.reshape(len(data.x_train), -1)
        self.description = data.description
        self.train = (flat[:n_train], data.y_train[:n_train])
        self.val = (flat[n_train:], data.y_train[n_train:])
        self.hidden = ctx.pick(16, 32)
        sizes = (flat.shape[1], self.hidden, self.hidden, 10)
        keys = jax.random.split(prng_key(ctx), 3)
        self.params = [
            {
                "w": jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a),
                "b": jnp.zeros(b),
            }
            for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]
        self.epochs = ctx.pick(2, 8)
        # one bound method for every search: the engine finds compiled programs by identity
        self.loss_fn = self.loss
        self.options = {
            "validation_data": self.val,
            "metrics": {"acc": self.accuracy},
            "batch_size": 128,
            "drop_last": True,
            # quick: a fixed order (each epoch's permutation is a program of its own to compile)
            "shuffle": not ctx.quick,
            "epochs": self.epochs,
            "objective": "val_acc",
            "mode": "max",
            "seed": ctx.seed,
        }

    @staticmethod
    def logits(params: list, x: jax.Array) -> jax.Array:
        for layer in params[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    def loss(self, params: list, batch: tuple) -> jax.Array:
        logits = self.logits(params, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    def accuracy(self, params: list, batch: tuple) -> jax.Array:
        return jnp.mean(jnp.argmax(self.logits(params, batch[0]), -1) == batch[1])

    @staticmethod
    def sgd(hp: dict) -> optax.GradientTransformation:
        decay = optax.add_decayed_weights(hp["wd"]) if "wd" in hp else optax.identity()
        return optax.chain(decay, optax.sgd(hp["lr"], momentum=0.9))

    def search(self, **kwargs: object) -> tune.TuneResult:
        return tune.search(
            self.loss_fn, self.params, self.sgd, self.train, **(self.options | kwargs)
        )


def _summary(res: tune.TuneResult) -> dict:
    return {
        "best_val_acc": res.best.objective,
        "best_config": res.best_config,
        "member_epochs": res.member_epochs,
        "seconds": res.seconds,
        "trials": len(res.trials),
        "distinct_lr": len({t.config["lr"] for t in res.trials}),
        "timeline": res.timeline,
    }


def measure(ctx: Context) -> dict:
    """Train everything; return plain numbers."""
    p = _Problem(ctx)
    num, n = ctx.pick(4, 12), ctx.pick(4, 16)
    # the rate alone (weight decay at its smallest value): the 2-D searches' program shape
    lr_space = {"lr": tune.LogUniform(*LR_RANGE), "wd": SPACE["wd"]}
    lr_grid = p.search(space=lr_space, sampler=tune.Grid(points={"lr": num, "wd": 1}))
    rates = [t.config["lr"] for t in lr_grid.trials]
    rt = tune.lr_range_test(
        p.loss_fn,
        p.params,
        lambda lr: optax.sgd(lr, momentum=0.9),
        p.train,
        min_lr=LR_RANGE[0],
        max_lr=LR_RANGE[1],
        num=num,
        batch_size=128,
        drop_last=True,
        shuffle=not ctx.quick,
        seed=ctx.seed,
    )
    side = math.isqrt(n)
    search = {"grid": _summary(p.search(space=SPACE, sampler=tune.Grid(points=side)))}
    for seed in range(ctx.pick(1, 3)):
        res = p.search(space=SPACE, sampler=tune.Random(n), seed=ctx.seed + seed)
        search[f"random (seed {seed})"] = _summary(res)
    search["Sobol"] = _summary(p.search(space=SPACE, sampler=tune.Sobol(n)))
    halving = p.search(
        space=SPACE,
        sampler=tune.Random(ctx.pick(n, 3 * n)),
        scheduler=tune.SuccessiveHalving(min_epochs=1, eta=ctx.pick(n, 3)),
    )
    search["halving"] = _summary(halving)
    return {
        "data": p.description,
        "hidden": p.hidden,
        "epochs": p.epochs,
        "learning_rate": {
            "rates": rates,
            "val_acc": [t.objective for t in lr_grid.trials],
            "curves": [t.history["val_acc"].tolist() for t in lr_grid.trials],
            "range_test": {
                "rates": rt.learning_rates.tolist(),
                "final_loss": rt.final_loss.tolist(),
                "diverged": rt.diverged.tolist(),
                "suggested": rt.suggested,
                "max_stable": rt.max_stable,
                "step_losses": rt.step_losses.tolist(),
            },
        },
        "search": search,
        "halving_rungs": halving.rungs,
    }


def report(d: dict) -> StudyResult:
    """The page, figures and headline from ``measure``'s numbers."""
    lr = d["learning_rate"]
    rates, acc = np.asarray(lr["rates"]), np.asarray(lr["val_acc"], float)
    acc = np.where(np.isfinite(acc), acc, np.nan)
    best = int(np.nanargmax(acc))
    rt = lr["range_test"]
    sug = int(np.argmin(np.abs(np.log(rates) - math.log(rt["suggested"]))))
    off = {k: best + k for k in (-2, 2) if 0 <= best + k < len(rates)}  # 100x apart on the grid
    lowest, highest = float(acc[0]), float(np.nanmin(acc[-2:])) if len(acc) > 1 else math.nan
    rate_rows = [
        [f"{r:.3g}", pct(a), "diverged" if dv else fmt(fl), "← best" if i == best else ""]
        for i, (r, a, fl, dv) in enumerate(
            zip(rates, acc, rt["final_loss"], rt["diverged"], strict=True)
        )
    ]
    s = d["search"]
    randoms = [v for k, v in s.items() if k.startswith("random")]
    grid = s["grid"]
    search_rows = [
        [
            name,
            v["trials"],
            v["distinct_lr"],
            v["member_epochs"],
            pct(v["best_val_acc"]),
            f"{v['best_config']['lr']:.3g}",
            f"{v['best_config']['wd']:.2g}",
            f"{v['seconds']:.0f}",
        ]
        for name, v in s.items()
    ]
    rand_mean = float(np.mean([v["best_val_acc"] for v in randoms]))
    halving = s["halving"]
    gap_tuned = float(acc[best] - np.nanmin([acc[i] for i in off.values()])) if off else math.nan
    best2d = max(v["best_val_acc"] for v in s.values())
    claims = [
        (
            ADVICE["rate"],
            f"after {d['epochs']} epochs, {pct(lowest)} at lr {rates[0]:.3g} and "
            f"{pct(highest)} at the largest rates vs {pct(acc[best])} at {rates[best]:.3g}",
            bool(lowest < acc[best] - 0.01 and not highest > acc[best] - 0.01),
        ),
        (
            ADVICE["tuned"],
            f"a rate 100x off the best loses up to {100 * gap_tuned:.1f} points of validation "
            "accuracy",
            bool(gap_tuned > 0.01),
        ),
        (
            ADVICE["experiment"],
            f"tuning weight decay with the rate (best of the 2-D searches, "
            f"{pct(best2d)}) vs the rate alone ({pct(acc[best])}): "
            f"{100 * (best2d - acc[best]):+.1f} points",
            "measured: the rate is what matters here"
            if best2d - acc[best] < 0.005
            else "holds: weight decay adds accuracy",
        ),
        (
            "(gdjax) A one-epoch learning-rate range test points at a good rate.",
            f"it suggests {rt['suggested']:.3g}; trained the full budget that rate reaches "
            f"{pct(acc[sug])} vs the grid's best {pct(acc[best])}",
            bool(acc[sug] >= acc[best] - 0.01),
        ),
        (
            ADVICE["automated"],
            f"{grid['trials']} random trials: {pct(rand_mean)} (mean best of {len(randoms)} "
            f"seeds) vs grid {pct(grid['best_val_acc'])}; halving of {halving['trials']} trials: "
            f"{pct(halving['best_val_acc'])} with {halving['member_epochs']} member-epochs vs "
            f"the grid's {grid['member_epochs']}",
            "measured, not claimed by the documents",
        ),
    ]
    fig, (a1, a2) = figure(ncols=2)
    a1.plot(rates, acc, "o-", label="full budget (grid)")
    a1.axvline(rt["suggested"], color="tab:green", ls="--", label="range test suggestion")
    a1.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy")
    a1.set_title("SGD momentum 0.9: accuracy vs rate")
    a1.legend(fontsize=7)
    a1.grid(alpha=0.3)
    for name, v in s.items():
        t = v["timeline"]
        a2.plot([p["member_epochs"] for p in t], [p["best"] for p in t], label=name)
    a2.set(xlabel="member-epochs spent", ylabel="best validation accuracy so far")
    a2.set_title("searches over (lr, weight decay)")
    a2.legend(fontsize=7)
    a2.grid(alpha=0.3)
    page = f"""
An MLP 784-{d["hidden"]}-{d["hidden"]}-10 trained with SGD (momentum 0.9, batch 128) for
{d["epochs"]} epochs; validation accuracy on held-out training images. The documents advise
tuning (table below) but give no numbers: every number here is measured.

## Advice beside measurement

{claims_table(claims)}

## How much the learning rate matters

{len(rates)} rates in one `tune.search` program (grid), and the learning-rate range test
(`tune.lr_range_test`: the same rates, one epoch each, per-step losses; its final loss is the
mean of the last 10% of steps).

{table(["learning rate", "val accuracy (full budget)", "range test loss (1 epoch)", ""], rate_rows)}

## What random search and halving buy over a grid

Learning rate log-uniform 1e-3..1 and weight decay log-uniform 1e-6..1e-2, {grid["trials"]}
trials each. The grid tries only {grid["distinct_lr"]} distinct learning rates; random or Sobol
trials try {grid["trials"]} (Bergstra and Bengio 2012: when one hyperparameter matters much
more than the other, a grid wastes its trials on the other). Successive halving trains
{halving["trials"]} random trials, ranks them at each rung and keeps the best (rungs:
{", ".join(f"{len(r['entered'])} trials at epoch {r['epoch']}" for r in d["halving_rungs"])}).

{table(["search", "trials", "distinct rates", "member-epochs", "best val acc", "lr", "wd", "seconds"], search_rows)}
"""
    headline = (
        f"tuned lr {rates[best]:.2g}: {pct(acc[best])} vs {pct(lowest)} at {rates[0]:.2g}; "
        f"random {pct(rand_mean)} vs grid {pct(grid['best_val_acc'])}; halving "
        f"{pct(halving['best_val_acc'])} at {halving['member_epochs']} member-epochs "
        f"(grid {grid['member_epochs']})"
    )
    numbers = {k: v for k, v in d.items() if k != "data"}
    return StudyResult(numbers, page, {"panels": fig}, headline, d["data"])


def run(ctx: Context) -> StudyResult:
    return report(measure(ctx))


STUDY = Study("tuning", "Automated tuning", SOURCE, run, default=False)
