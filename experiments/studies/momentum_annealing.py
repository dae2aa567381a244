"""Study 10: momentum and Nesterov in a ravine, learning-rate annealing, stopping rules.

From gradient-descent-in-deep-learning.md: momentum "reduces oscillations and improves
convergence"; annealing allows "large steps at the beginning and smaller steps later"; training
stops "when the change in loss becomes negligible" or by early stopping on validation loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._history import epoch_loss, final
from experiments._report import figure, fmt, pct, table
from experiments._toy import either, minimize_sweep
from experiments.studies import init_variables, prng_key
from gdjax import schedules
from gdjax.data import fit_standardizer, load_sklearn, train_test_split
from gdjax.models import MLP

SOURCE = "gradient-descent-in-deep-learning.md, 'Momentum', 'Learning Rate Scheduling', FAQ 10"
METHODS = ("GD", "momentum 0.9", "Nesterov 0.9")


# --- ravines -------------------------------------------------------------------------------
def ravine(x: jax.Array) -> jax.Array:
    """A rotated quadratic valley, curvatures 1 and 100 (condition number 100)."""
    c, s = np.cos(0.5), np.sin(0.5)
    u, v = c * x[0] + s * x[1], -s * x[0] + c * x[1]
    return 0.5 * (u**2 + 100.0 * v**2)


def rosenbrock(x: jax.Array) -> jax.Array:
    """Rosenbrock's banana valley, minimum 0 at (1, 1)."""
    return (1 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def ravines(ctx: Context) -> dict:
    out = {}
    problems = {
        "quadratic ravine (κ=100)": (
            ravine,
            np.array([-4.0, 3.0]),
            np.logspace(-3.5, -1.5, 9),
            1e-8,
        ),
        "Rosenbrock": (rosenbrock, np.array([-1.5, 2.0]), np.logspace(-4.5, -2.5, 9), 1e-6),
    }
    steps = ctx.pick(500, 5000)
    for pname, (f, x0, grid, tol) in problems.items():
        cfg = [(m, lr) for m in METHODS for lr in grid]
        hp = {
            "lr": [lr for _, lr in cfg],
            "beta": [0.0 if m == "GD" else 0.9 for m, _ in cfg],
            "nesterov": [float(m.startswith("Nesterov")) for m, _ in cfg],
        }

        def make(h):
            return either(
                h["nesterov"],
                gdjax.momentum(h["lr"], h["beta"]),
                gdjax.nesterov(h["lr"], h["beta"]),
            )

        traj, vals = minimize_sweep(f, np.tile(x0, (len(cfg), 1)), make, hp, steps=steps)
        f0 = float(vals[0, 0])
        rows = {}
        for m in METHODS:
            idx = [i for i, (mm, _) in enumerate(cfg) if mm == m]

            def hit(i, vals=vals, tol=tol, f0=f0):
                r = np.nonzero(vals[i] <= tol * max(f0, 1.0))[0]
                return int(r[0]) if r.size else None

            ranked = sorted(
                idx,
                key=lambda i: (hit(i) is None, hit(i) or 0, np.nan_to_num(vals[i, -1], nan=np.inf)),
            )
            best = ranked[0]
            rows[m] = {
                "best_lr": float(cfg[best][1]),
                "steps_to_tol": hit(best),
                "final_value": float(vals[best, -1]),
                "_traj": traj[best],
            }
        # one rate for all three in the trajectory plot: the smallest of their best rates,
        # so that none of them diverges there
        same_lr = min(v["best_lr"] for v in rows.values())
        same = int(np.argmin(np.abs(grid - same_lr)))
        out[pname] = {
            "tolerance": tol,
            "steps": steps,
            "start": x0.tolist(),
            "f0": f0,
            "lr_grid": grid.tolist(),
            "methods": rows,
            "plot_lr": float(grid[same]),
            "_same_lr": {m: traj[same + k * len(grid)] for k, m in enumerate(METHODS)},
            "_f": f,
        }
    return out


# --- annealing -------------------------------------------------------------------------------
SCHEDULES = ("constant", "step decay", "exponential decay", "cosine decay", "inverse-time decay")


def schedule(kind: jax.Array, lr: float, total: int):
    """A learning-rate schedule chosen by a traced index (all candidates evaluated, one kept)."""
    fns = [
        schedules.constant_schedule(lr),
        schedules.step_decay(lr, step_size=max(total // 3, 1), factor=0.1),
        schedules.exponential_decay(lr, transition_steps=total, decay_rate=0.01),
        schedules.cosine_decay_schedule(lr, decay_steps=total),
        schedules.inverse_time_decay(lr, decay_rate=10.0, decay_steps=total),
    ]
    return lambda step: jnp.select([kind == i for i in range(len(fns))], [f(step) for f in fns])


def digits_split(seed: int):
    x, y = load_sklearn("digits")
    (xtr, ytr), (xte, yte) = train_test_split(x, y, test_fraction=0.25, seed=seed)
    scaler = fit_standardizer(xtr)
    return scaler(xtr), ytr, scaler(xte), yte


def annealing(ctx: Context) -> dict:
    xtr, ytr, xte, yte = digits_split(ctx.seed)
    model = MLP(features=(128, 10), activation="relu")
    params = init_variables(ctx, model, xtr[:1])
    epochs, batch, lr = ctx.pick(3, 30), 32, 0.1
    # the last, smaller batch is dropped: every step's loss (whose spread is measured) is over
    # the same number of examples
    total = epochs * (len(xtr) // batch)

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    def accuracy(p, b):
        return gdjax.metrics.accuracy(model.apply(p, b[0]), b[1])

    res = gdjax.sweep(
        loss,
        params,
        lambda h: gdjax.sgd(schedule(h["kind"], lr, total)),
        (xtr, ytr),
        hparams={"kind": np.arange(len(SCHEDULES))},
        seeds=ctx.seed,
        batch_size=batch,
        epochs=epochs,
        # quick: a fixed order (each epoch's permutation is a program of its own to compile)
        shuffle=not ctx.quick,
        drop_last=True,
        validation_data=(xte, yte),
        metrics={"acc": accuracy},
        record_steps=True,
        progress=ctx.show_progress,
    )
    train_loss = epoch_loss(res.history)
    return {
        "epochs": epochs,
        "batch_size": batch,
        "initial_lr": lr,
        "total_steps": total,
        "runs": {
            name: {
                "final_train_loss": float(train_loss[i, -1]),
                "test_loss": float(res.history["val_loss"][i, -1]),
                "test_accuracy": float(final(res.history["val_acc"], res.epochs_run)[i]),
                "step_loss_std_last_epoch": float(np.std(res.history["step_loss"][i, -1])),
                "epoch_train_loss": train_loss[i].tolist(),
            }
            for i, name in enumerate(SCHEDULES)
        },
    }


# --- stopping rules --------------------------------------------------------------------------
def stopping(ctx: Context) -> dict:
    xtr, ytr, xte, yte = digits_split(ctx.seed)
    n_val = len(xte) // 2
    xval, yval, xte, yte = xte[:n_val], yte[:n_val], xte[n_val:], yte[n_val:]
    # a small training set, so that overfitting shows (quick: 12 whole batches of 32)
    n_train = ctx.pick(384, 400)
    xtr, ytr = xtr[:n_train], ytr[:n_train]
    model = MLP(features=(256, 256, 10), activation="relu")
    params = init_variables(ctx, model, xtr[:1])
    max_epochs = ctx.pick(8, 200)

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    rules = {
        f"run all {max_epochs} epochs": {},
        "loss change < 1e-3 (tol)": {"tol": 1e-3},
        "early stopping (val loss, patience 10, restore best)": {
            "early_stopping": gdjax.EarlyStopping("val_loss", patience=10, restore_best=True)
        },
    }
    out = {}
    predict = jax.jit(model.apply)
    for name, kw in ctx.progress(rules.items(), desc="stopping rules", total=len(rules)):
        res = gdjax.fit(
            loss,
            params,
            gdjax.adam(1e-3),
            (xtr, ytr),
            batch_size=32,
            epochs=max_epochs,
            shuffle=not ctx.quick,
            key=prng_key(ctx),
            validation_data=(xval, yval),
            **kw,
        )
        z = predict(res.params, xte)
        out[name] = {
            "epochs_run": int(res.epochs_run),
            "best_epoch": res.best_epoch,
            "stop_reason": res.stop_reason,
            "final_train_loss": float(res.history["loss"][-1]),
            "val_loss_at_end": float(res.history["val_loss"][-1]),
            "min_val_loss": float(np.min(res.history["val_loss"])),
            "test_loss": float(gdjax.losses.softmax_cross_entropy(z, yte)),
            "test_accuracy": float(gdjax.metrics.accuracy(z, yte)),
            "_val": np.asarray(res.history["val_loss"]),
            "_train": np.asarray(res.history["loss"]),
        }
    return {"train_examples": len(xtr), "max_epochs": max_epochs, "rules": out}


def strip(d):
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if not k.startswith("_")}
    return d


def plots(rav: dict, ann: dict, stop: dict):
    fig, axes = figure(ncols=4, width=4.3)
    for ax, (pname, r) in zip(axes[:2], rav.items(), strict=True):
        trajs = r["_same_lr"]
        pts = np.concatenate(list(trajs.values()))
        pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(np.abs(pts) < 1e3, axis=1)]
        lo, hi = pts.min(0) - 0.3, pts.max(0) + 0.3
        gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
        fz = np.asarray(jax.vmap(jax.vmap(lambda a, b, f=r["_f"]: f(jnp.stack([a, b]))))(gx, gy))
        ax.contour(gx, gy, np.log10(fz + 1e-3), levels=20, cmap="Greys", linewidths=0.5)
        for m, t in trajs.items():
            t = t[: min(len(t), 300)]
            ax.plot(t[:, 0], t[:, 1], ".-", ms=2, lw=0.8, label=m)
        ax.set(
            title=f"{pname}: first 300 steps, lr {r['plot_lr']:.2g}",
            xlim=(lo[0], hi[0]),
            ylim=(lo[1], hi[1]),
        )
        ax.legend(fontsize=7)
    for name, run in ann["runs"].items():
        axes[2].plot(
            range(1, len(run["epoch_train_loss"]) + 1), run["epoch_train_loss"], label=name
        )
    axes[2].set(
        title="annealing: digits MLP, SGD 0.1", xlabel="epoch", ylabel="train loss", yscale="log"
    )
    axes[2].legend(fontsize=7)
    for name, run in stop["rules"].items():
        axes[3].plot(range(1, len(run["_val"]) + 1), run["_val"], label=f"val: {name[:24]}")
    axes[3].set(title="stopping rules: validation loss", xlabel="epoch", ylabel="val loss")
    axes[3].legend(fontsize=6)
    return fig


def read_ravine(q: dict, speedup: float | None) -> str:
    if speedup is None:
        return "Not every method reached the tolerance within the step budget; see the table."
    nest = q["Nesterov 0.9"]["steps_to_tol"]
    verdict = (
        "the document's claim (momentum improves convergence) holds on this ravine"
        if speedup > 1
        else "momentum did **not** beat tuned plain GD here, against the document's claim"
    )
    return (
        f"On the quadratic ravine (condition number 100), momentum at its best rate reaches the "
        f"tolerance in {q['momentum 0.9']['steps_to_tol']} steps vs {q['GD']['steps_to_tol']} for "
        f"tuned plain GD ({speedup:.1f}×), Nesterov in {nest}: {verdict}. On Rosenbrock's curved "
        "valley compare the final values in the table. The trajectory plot runs all three at "
        "one rate (the smallest of their best rates, so none diverges), so the paths differ only "
        "by the momentum term."
    )


def read_annealing(ann: dict) -> str:
    runs = ann["runs"]
    const = runs["constant"]
    better_loss = [
        n
        for n, r in runs.items()
        if n != "constant" and r["final_train_loss"] < const["final_train_loss"]
    ]
    better_acc = [
        n
        for n, r in runs.items()
        if n != "constant" and r["test_accuracy"] > const["test_accuracy"]
    ]
    quieter = [
        n
        for n, r in runs.items()
        if n != "constant" and r["step_loss_std_last_epoch"] < const["step_loss_std_last_epoch"]
    ]
    verdict = "supported" if better_loss or better_acc else "not supported"
    return (
        (
            "Schedules ending below the constant rate's training loss: "
            + ", ".join(better_loss)
            + ". "
            if better_loss
            else "No annealed schedule ended below the constant rate's training loss. "
        )
        + (
            "Above its test accuracy: " + ", ".join(better_acc) + ". "
            if better_acc
            else "None beat its test accuracy. "
        )
        + (
            "Quieter last epoch (smaller step-loss spread, the document's 'smaller steps later'): "
            + ", ".join(quieter)
            + "."
            if quieter
            else "None had a quieter last epoch than the constant rate."
        )
        + f" The document's claim that annealing helps is {verdict} at this budget "
        f"({ann['epochs']} epochs from lr {ann['initial_lr']}): a schedule that decays early also gives up progress."
    )


def read_stopping(rules: list[dict]) -> str:
    full, tol, early = rules
    overfit = full["val_loss_at_end"] > full["min_val_loss"] * 1.05
    return (
        (
            f"Running all epochs drives the training loss to {fmt(full['final_train_loss'])} while the "
            f"validation loss climbs back from its minimum ({fmt(full['min_val_loss'])} → "
            f"{fmt(full['val_loss_at_end'])}): overfitting. "
            if overfit
            else "Within this budget the validation loss did not climb back noticeably, so there is "
            "little overfitting for early stopping to prevent. "
        )
        + f"The 'negligible change' rule (`tol=1e-3`) ran {tol['epochs_run']} epochs; early "
        f"stopping on validation loss ran {early['epochs_run']} and restored epoch "
        f"{early['best_epoch']}, test loss {fmt(early['test_loss'])} vs {fmt(full['test_loss'])} "
        f"for running to the end (test accuracy {pct(early['test_accuracy'])} vs "
        f"{pct(full['test_accuracy'])}). Both rules are the engine's own "
        "(`gdjax.fit(tol=...)`, `gdjax.EarlyStopping`)."
    )


def run(ctx: Context) -> StudyResult:
    rav, ann, stop = ravines(ctx), annealing(ctx), stopping(ctx)
    fig = plots(rav, ann, stop)
    rav_rows = []
    for pname, r in rav.items():
        for m, v in r["methods"].items():
            steps = v["steps_to_tol"] if v["steps_to_tol"] is not None else f"> {r['steps']}"
            rav_rows.append([pname, m, f"{v['best_lr']:.3g}", steps, v["final_value"]])
    q = rav["quadratic ravine (κ=100)"]["methods"]
    speedup = (
        q["GD"]["steps_to_tol"] / q["momentum 0.9"]["steps_to_tol"]
        if q["GD"]["steps_to_tol"] and q["momentum 0.9"]["steps_to_tol"]
        else None
    )
    ann_rows = [
        [
            n,
            r["final_train_loss"],
            r["test_loss"],
            pct(r["test_accuracy"]),
            r["step_loss_std_last_epoch"],
        ]
        for n, r in ann["runs"].items()
    ]
    stop_rows = [
        [
            n,
            r["epochs_run"],
            r["best_epoch"] or "—",
            r["final_train_loss"],
            r["val_loss_at_end"],
            r["test_loss"],
            pct(r["test_accuracy"]),
        ]
        for n, r in stop["rules"].items()
    ]
    rules = list(stop["rules"].values())
    stop_table = table(
        [
            "rule",
            "epochs run",
            "best epoch",
            "final train loss",
            "val loss at end",
            "test loss",
            "test accuracy",
        ],
        stop_rows,
    )
    page = f"""
The document gives the momentum rule v = γv + α∇J(θ), θ = θ − v and says it "reduces
oscillations and improves convergence"; it recommends annealing and two stopping rules. No
numbers are given, so each claim is measured.

## Momentum and Nesterov in ravines

Every (method, learning rate) pair — plain GD is momentum with γ = 0, Nesterov switched by a
traced flag — runs in **one vmapped program** (`gdjax.momentum` / `gdjax.nesterov`). Each method
gets its best rate from the grid; "steps" counts steps until f ≤ tolerance.

{table(["problem", "method", "best lr", "steps to tolerance", "f at the end"], rav_rows)}

{read_ravine(q, speedup)}

## Annealing schedules — digits MLP 64-128-10, SGD from lr 0.1, {ann["epochs"]} epochs

All five schedules in one `gdjax.sweep` (the schedule is picked by a traced index, so one
vmapped program runs them all).

{table(["schedule", "final train loss", "test loss", "test accuracy", "step-loss std (last epoch)"], ann_rows)}

{read_annealing(ann)}

## Stopping rules — {stop["train_examples"]} training digits, MLP 256-256, Adam 1e-3, `gdjax.fit`

{stop_table}

{read_stopping(rules)}
"""
    numbers = strip({"ravines": rav, "annealing": ann, "stopping": stop})
    headline = (
        f"ravine κ=100: GD {q['GD']['steps_to_tol'] or '>' + str(rav['quadratic ravine (κ=100)']['steps'])} steps, "
        f"momentum {q['momentum 0.9']['steps_to_tol'] or '—'}, Nesterov {q['Nesterov 0.9']['steps_to_tol'] or '—'}; "
        f"early stopping at epoch {rules[2]['best_epoch']} (document: 'momentum improves convergence', no numbers)"
    )
    data = (
        "toy functions (rotated quadratic ravine, Rosenbrock) and scikit-learn digits "
        "(real, 1,797 8×8 images; 75/25 split, standardised)"
    )
    return StudyResult(numbers, page, {"panels": fig}, headline, data)


STUDY = Study("momentum_annealing", "Momentum, annealing and stopping rules", SOURCE, run)
