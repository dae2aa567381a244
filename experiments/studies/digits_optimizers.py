"""Study 0 (the README's main job): every gdjax optimizer on scikit-learn's digits.

A 64-64-10 tanh MLP (``gdjax.models.MLP``). Every optimizer in ``gdjax.optimizers`` (the
registry, so new ones join automatically) is trained at the same four learning rates by one
``gdjax.sweep`` program (the rates are vmapped data, one compilation per optimizer); the table
gives each optimizer's best rate with its final training loss and test accuracy, and the test
accuracy at every rate.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._report import figure, pct, table
from experiments._toy import either
from experiments.studies import init_variables
from gdjax.data import fit_standardizer, load_sklearn, train_test_split
from gdjax.models import MLP

#: The same learning rates for every optimizer (the parameter-free ones read it as a multiplier).
GRID = (1e-3, 1e-2, 1e-1, 1.0)
QUICK = ("sgd", "adam")
QUICK_GRID = (1e-2, 1e-1)


def registry() -> dict[str, Callable[..., optax.GradientTransformation]]:
    """Every named optimizer of the library, in ``gdjax.optimizers.__all__`` order."""
    return {
        name: getattr(gdjax.optimizers, name)
        for name in gdjax.optimizers.__all__
        if inspect.isfunction(getattr(gdjax.optimizers, name))
    }


def own_buffers(opt: optax.GradientTransformation) -> optax.GradientTransformation:
    """Give every optimizer-state leaf its own buffer (``init`` may share one zeros array
    between two fields, which the training engine cannot donate twice)."""
    return optax.GradientTransformationExtraArgs(
        lambda p: jax.tree.map(lambda x: jnp.array(x, copy=True), opt.init(p)), opt.update
    )


def why_not_swept(name: str, factory: Callable, params) -> str | None:
    """``None`` if ``factory(learning_rate=...)`` trains inside ``gdjax.fit``/``sweep``; else why not.

    The engine calls ``update(grads, state, params)``; an optimizer that needs more (Polyak's
    step needs the loss) is reported, not run.
    """
    if "learning_rate" not in inspect.signature(factory).parameters:
        return "takes no learning_rate"
    opt = factory(learning_rate=0.1)
    try:
        jax.eval_shape(lambda p: opt.update(p, opt.init(p), p), params)
    except TypeError as err:
        return f"its update needs more than the gradients ({str(err).splitlines()[0]})"
    return None


def load_digits(seed: int):
    """Digits split 80/20 and standardised on the training statistics."""
    x, y = load_sklearn("digits")
    (xtr, ytr), (xte, yte) = train_test_split(x, y, test_fraction=0.2, seed=seed)
    scaler = fit_standardizer(xtr)
    return (scaler(xtr), ytr), (scaler(xte), yte)


def eval_params(state, params):
    """The parameters to evaluate at (schedule-free methods average theirs)."""
    if isinstance(state, gdjax.ScheduleFreeState):
        return gdjax.schedule_free_eval_params(state, params)
    return params


def run(ctx: Context) -> StudyResult:
    (xtr, ytr), (xte, yte) = load_digits(ctx.seed)
    epochs, batch = ctx.pick(2, 12), 32
    grid = ctx.pick(QUICK_GRID, GRID)
    model = MLP(features=(64, 64, 10), activation="tanh")
    params = init_variables(ctx, model, xtr[:1])

    def loss_fn(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    accuracy = jax.jit(
        jax.vmap(
            lambda s, p: gdjax.metrics.accuracy(model.apply(eval_params(s, p), xte), yte),
        )
    )
    factories = registry()
    names = [n for n in QUICK if n in factories] if ctx.quick else list(factories)

    def quick_pair(hp: dict) -> optax.GradientTransformation:
        """The two quick optimizers as one, picked by a traced flag (both updates are
        computed, one is kept): both sweeps then run the same compiled programs."""
        first, second = (
            own_buffers(factories[n](learning_rate=hp["learning_rate"])) for n in QUICK
        )
        return either(hp["second"], first, second)

    rows, curves, skipped = {}, {}, {}
    for name in ctx.progress(names, desc="optimizers"):
        reason = why_not_swept(name, factories[name], params)
        if reason:
            skipped[name] = reason
            continue
        hparams = {"learning_rate": np.asarray(grid, np.float32)}

        def make(hp: dict, f: Callable = factories[name]) -> optax.GradientTransformation:
            return own_buffers(f(learning_rate=hp["learning_rate"]))

        if ctx.quick and names == list(QUICK):  # both quick optimizers are in the registry
            hparams["second"] = np.full(len(grid), QUICK.index(name), np.float32)
        t0 = time.perf_counter()
        res = gdjax.sweep(
            loss_fn,
            params,
            quick_pair if "second" in hparams else make,
            (xtr, ytr),
            hparams=hparams,
            seeds=ctx.seed + 1,
            batch_size=batch,
            epochs=epochs,
            # quick: a fixed order (each epoch's permutation is a program of its own to compile)
            shuffle=not ctx.quick,
            # quick: no smaller last batch, whose step would compile into a second program
            drop_last=ctx.quick,
        )
        seconds = time.perf_counter() - t0
        acc = np.asarray(accuracy(res.opt_state, res.params), np.float64)
        final = np.asarray(res.history["loss"][:, -1], np.float64)
        ok = np.isfinite(final)
        best = int(np.nanargmax(np.where(ok, acc, np.nan))) if ok.any() else None
        rows[name] = {
            "best_learning_rate": None if best is None else grid[best],
            "train_loss": None if best is None else float(final[best]),
            "test_accuracy": None if best is None else float(acc[best]),
            "test_accuracy_by_learning_rate": {
                f"{lr:g}": (float(a) if f else None) for lr, a, f in zip(grid, acc, ok, strict=True)
            },
            "seconds_incl_compile": seconds,
        }
        if best is not None:
            curves[name] = np.asarray(res.history["loss"][best])
    return _report(rows, curves, skipped, grid, epochs, batch, len(xtr), len(xte))


def _report(rows, curves, skipped, grid, epochs, batch, n_train, n_test) -> StudyResult:
    trained = {n: r for n, r in rows.items() if r["test_accuracy"] is not None}
    order = sorted(trained, key=lambda n: -trained[n]["test_accuracy"])
    fig, (ax1, ax2) = figure(ncols=2, width=6.5, height=4.2)
    for i, (name, ys) in enumerate(curves.items()):
        ax1.plot(range(1, len(ys) + 1), ys, label=name, linestyle=("-", "--", ":")[i // 10 % 3])
    ax1.set(title="digits MLP: training loss at each best rate", xlabel="epoch", ylabel="loss")
    ax1.set_yscale("log")
    ax1.legend(fontsize=6, ncol=2)
    accs = [trained[n]["test_accuracy"] for n in order]
    ax2.barh(range(len(order)), accs, color="tab:blue")
    ax2.set_yticks(range(len(order)), order, fontsize=6)
    ax2.invert_yaxis()
    ax2.set(title="test accuracy at the best rate", xlabel="accuracy", xlim=(0.8, 1.0))
    ax2.grid(alpha=0.3, axis="x")
    body = [
        [
            n,
            f"{r['best_learning_rate']:g}" if r["best_learning_rate"] is not None else "—",
            r["train_loss"],
            pct(r["test_accuracy"]),
            *[pct(a) for a in r["test_accuracy_by_learning_rate"].values()],
            f"{r['seconds_incl_compile']:.1f}",
        ]
        for n, r in sorted(rows.items(), key=lambda kv: -(kv[1]["test_accuracy"] or 0.0))
    ]
    header = ["optimizer", "best lr", "final train loss", "test accuracy"]
    header += [f"acc. @ {lr:g}" for lr in grid] + ["seconds (incl. compile)"]
    best = order[0] if order else None
    adam, sgd = (trained.get(n, {}).get("test_accuracy") for n in ("adam", "sgd"))
    skipped_text = (
        "Not run: "
        + "; ".join(f"`{n}` ({why})" for n, why in skipped.items())
        + ". Use these in a training loop of your own."
        if skipped
        else "Every optimizer of the library ran."
    )
    spread = (
        f"The best rates' test accuracies span {pct(trained[order[-1]]['test_accuracy'])} "
        f"(`{order[-1]}`) to {pct(trained[best]['test_accuracy'])} (`{best}`)."
        if best
        else ""
    )
    page = f"""
The documents rank optimizers only in words (gradient-descent-for-neural-networks.md's variants
table calls Adam "very fast"; the guide says "experiment with different optimizers"). This is
the README's main job: one small real problem and every optimizer gdjax ships
({len(rows)} trained), each at the same {len(grid)} learning rates
({", ".join(f"{lr:g}" for lr in grid)}; the parameter-free methods, Prodigy and DoG, read it as a
multiplier of their own estimate). Each optimizer's rates train together in one `gdjax.sweep`
program (the rate is vmapped data), {epochs} epochs of mini-batches of {batch}. The table sorts
by test accuracy at each optimizer's best rate; a diverged run shows as "—". Schedule-free
methods are evaluated at their averaged parameters (`gdjax.schedule_free_eval_params`).

{table(header, body)}

{spread} Adam {pct(adam)}, plain SGD {pct(sgd)} at their best rates. With a four-point grid and
one seed, differences of a point are within what a finer grid or another seed would change:
the table shows which optimizers train this model and at which rate, not a general ranking.
The seconds are wall time for all of an optimizer's rates together, compilation included; on
a machine shared with other work they measure its load as much as the optimizer.
{skipped_text}
"""
    headline = (
        f"{len(trained)} optimizers × {len(grid)} rates: best {best} "
        f"{pct(trained[best]['test_accuracy'])}; Adam {pct(adam)}, SGD {pct(sgd)} "
        "(document: Adam 'very fast', no numbers)"
        if best
        else "no optimizer trained"
    )
    data = (
        f"scikit-learn digits (real, 1,797 8×8 images): {n_train:,} train / {n_test:,} test, "
        "standardised"
    )
    numbers = {
        "epochs": epochs,
        "batch_size": batch,
        "learning_rates": list(grid),
        "optimizers": {n: _finite(r) for n, r in rows.items()},
        "loss_curves_at_best_rate": {n: [float(v) for v in ys] for n, ys in curves.items()},
        "not_run": skipped,
    }
    return StudyResult(numbers, page, {"curves": fig}, headline, data)


def _finite(row: dict) -> dict:
    """Drop the accuracies of diverged rates (the JSON keeps only finite numbers)."""
    by_lr = {k: v for k, v in row["test_accuracy_by_learning_rate"].items() if v is not None}
    clean = {k: v for k, v in row.items() if v is not None and not _nan(v)}
    return {**clean, "test_accuracy_by_learning_rate": by_lr}


def _nan(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


STUDY = Study(
    "digits_optimizers",
    "Every optimizer on scikit-learn digits (main job)",
    "README main job; gradient-descent-for-neural-networks.md variants table",
    run,
)
