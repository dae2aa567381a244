"""Study 3: batch GD vs SGD (batch 1) vs mini-batch GD vs Adam on a sentiment task.

The document's table says: standard GD slow / low cost, SGD fast / high cost, mini-batch
moderate / medium, Adam very fast / high; its other tables give each variant's advantages and
disadvantages. Here each variant trains the same MLP on the same bag-of-words sentiment data
with its best learning rate from a grid (one ``gdjax.sweep`` per variant, the grid vmapped).
Convergence is epochs, optimizer steps, per-example gradient evaluations and seconds to a
target training loss; cost is seconds per epoch and per step, timed for the chosen rate alone;
noise is the exact variance of each variant's mini-batch gradient around the full gradient,
at the same parameters for every variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import sentiment
from experiments._report import claims_table, figure, fmt, pct, table
from experiments._toy import either
from experiments.studies import init_variables, prng_key
from gdjax.models import MLP

SOURCE = "gradient-descent-for-neural-networks.md, 'Comparing Gradient Descent Variants'"
DOC = {
    "batch GD": ("Slow", "Low"),
    "SGD (batch 1)": ("Fast", "High"),
    "mini-batch GD (32)": ("Moderate", "Medium"),
    "Adam (mini-batch 32)": ("Very Fast", "High"),
}
#: Learning-rate grids, wide enough that the chosen rate is inside (the page flags it if not).
GRIDS = {
    "batch GD": (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0),
    "SGD (batch 1)": (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1),
    "mini-batch GD (32)": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
    "Adam (mini-batch 32)": (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1),
}


def gradient_noise(
    loss_fn: Callable[[Any, tuple], jax.Array],
    params: Any,
    data: tuple[np.ndarray, ...],
    batch_sizes: Sequence[int],
    chunk: int = 250,
) -> dict[str, Any]:
    """Exact relative variance of the mini-batch gradient at ``params``, per batch size.

    For a batch of ``B`` examples drawn without replacement from ``n`` (as every epoch's
    shuffled batches are), ``E‖g_B − g‖² = (n − B) / (B (n − 1)) · σ²`` with ``g`` the full
    gradient and ``σ² = (1/n) Σ‖g_i − g‖²`` the spread of the per-example gradients. This
    returns ``E‖g_B − g‖² / ‖g‖²`` for each ``B`` (0 for ``B = n``), computed from all ``n``
    per-example gradients (in chunks), so it involves no sampling.

    Args:
        loss_fn: ``loss_fn(params, batch) -> mean loss`` over the batch's examples.
        params: where to measure.
        data: arrays with a common leading axis ``n``.
        batch_sizes: each in ``[1, n]``.
        chunk: examples per vmapped per-example-gradient call.
    """
    n = int(data[0].shape[0])
    bad = [b for b in batch_sizes if not 1 <= b <= n]
    if bad:
        raise ValueError(f"batch_sizes must lie in [1, {n}]; got {bad}")
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def chunk_stats(flat, batch, weight):
        def one(*example):
            return jax.grad(lambda f: loss_fn(unravel(f), tuple(a[None] for a in example)))(flat)

        g = jax.vmap(one)(*batch) * weight[:, None]  # padding rows have weight 0
        return g.sum(0), jnp.sum(g * g)

    chunk = min(chunk, n)
    pad = -n % chunk  # pad to whole chunks so that one program serves them all
    padded = tuple(np.concatenate([a, a[:pad]]) for a in data)
    weight = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    total, sq = np.zeros(flat.shape, np.float64), 0.0
    for i in range(0, n + pad, chunk):
        s, q = chunk_stats(
            flat, tuple(jnp.asarray(a[i : i + chunk]) for a in padded), weight[i : i + chunk]
        )
        total += np.asarray(s, np.float64)
        sq += float(q)
    mean = total / n
    full_sq = float(mean @ mean)
    sigma2 = sq / n - full_sq
    return {
        "full_gradient_norm": float(np.sqrt(full_sq)),
        "per_example_variance": sigma2,
        "relative_noise": {
            str(b): (n - b) / (b * (n - 1)) * sigma2 / full_sq if n > 1 else 0.0
            for b in batch_sizes
        },
    }


def pick_best(epochs_to_target: np.ndarray, final_loss: np.ndarray) -> int:
    """Index of the rate that reaches the target in fewest epochs, ties broken by final loss."""
    e = np.where(np.isfinite(epochs_to_target), epochs_to_target, np.inf)
    f = np.where(np.isfinite(final_loss), final_loss, np.inf)
    return int(np.lexsort((f, e))[0])


def first_epoch_at(curve: np.ndarray, target: float) -> float:
    """1-based epoch at which ``curve`` first is ≤ ``target`` (``inf`` if never)."""
    hit = np.nonzero(np.asarray(curve) <= target)[0]
    return float(hit[0] + 1) if hit.size else np.inf


def variant_claims(runs: dict[str, dict], noise: dict[str, dict]) -> list[tuple]:
    """The document's 'Variant | Advantages | Disadvantages' and batch-size rows, measured."""
    bgd, sgd, mb, adam = (runs[k] for k in DOC)
    mid, init = noise["mid-training"]["relative_noise"], noise["initialisation"]["relative_noise"]
    n = str(bgd["batch_size"])
    s = {k: r["seconds_per_step"] for k, r in runs.items()}
    tt = {k: r["seconds_to_target"] or np.inf for k, r in runs.items()}

    def secs(k: str) -> str:
        return fmt(runs[k]["seconds_to_target"]) + " s" if runs[k]["seconds_to_target"] else "never"

    sgd_cheap_step = s["SGD (batch 1)"] < min(s["batch GD"], s["mini-batch GD (32)"])
    sgd_fast_target = np.isfinite(tt["SGD (batch 1)"]) and tt["SGD (batch 1)"] <= min(
        tt["batch GD"], tt["mini-batch GD (32)"]
    )
    step_times = [s["SGD (batch 1)"], s["mini-batch GD (32)"], s["batch GD"]]
    return [
        (
            "Batch GD — advantage: precise gradient estimation",
            f"its gradient is the full gradient (relative noise {fmt(init[n])}); mini-batch 32: "
            f"{fmt(init['32'])} at initialisation, {fmt(mid['32'])} mid-training; batch 1: "
            f"{fmt(init['1'])} / {fmt(mid['1'])}",
            init[n] < min(init["1"], init["32"]) and mid[n] < min(mid["1"], mid["32"]),
        ),
        (
            "Batch GD — disadvantage: computationally expensive for large datasets",
            f"one update costs {fmt(s['batch GD'] * 1e3)} ms (all {bgd['batch_size']:,} "
            f"examples) vs {fmt(s['mini-batch GD (32)'] * 1e3)} ms for mini-batch 32; time to "
            f"target {secs('batch GD')} vs {secs('mini-batch GD (32)')}",
            s["batch GD"] > s["mini-batch GD (32)"]
            and np.isfinite(tt["mini-batch GD (32)"])
            and tt["batch GD"] > tt["mini-batch GD (32)"],
        ),
        (
            "SGD — advantage: computationally efficient",
            f"cheapest update ({fmt(s['SGD (batch 1)'] * 1e3)} ms) but "
            f"{sgd['steps_per_epoch']:,} updates per epoch ({fmt(sgd['seconds_per_epoch'])} s vs "
            f"{fmt(mb['seconds_per_epoch'])} s for mini-batch 32); time to target "
            f"{secs('SGD (batch 1)')} vs mini-batch {secs('mini-batch GD (32)')}, batch GD "
            f"{secs('batch GD')}",
            "holds"
            if sgd_cheap_step and sgd_fast_target
            else "holds per update only"
            if sgd_cheap_step
            else False,
        ),
        (
            "SGD — disadvantage: noisy convergence",
            f"relative gradient noise {fmt(init['1'])} at initialisation and {fmt(mid['1'])} "
            f"mid-training, {init['1'] / init['32']:.0f}× mini-batch 32's",
            init["1"] > init["32"] and mid["1"] > mid["32"],
        ),
        (
            "Mini-batch GD — advantage: balance between convergence speed and computational cost",
            f"epochs to target: SGD {fmt(sgd['epochs_to_target'])}, mini-batch "
            f"{fmt(mb['epochs_to_target'])}, batch GD {fmt(bgd['epochs_to_target'])}; "
            f"time to target {secs('mini-batch GD (32)')} vs SGD {secs('SGD (batch 1)')} and "
            f"batch GD {secs('batch GD')}",
            tt["mini-batch GD (32)"] <= min(tt["SGD (batch 1)"], tt["batch GD"])
            and np.isfinite(tt["mini-batch GD (32)"]),
        ),
        (
            "Mini-batch GD — disadvantage: batch size selection can be challenging",
            "one mini-batch size (32) is run here; choosing it is not measured (the time side "
            "of batch size is in [batch_size](batch_size.md))",
            None,
        ),
        (
            "Batch size — large: accurate gradient estimation but more resources; "
            "small: faster updates but noisy gradients",
            f"relative gradient noise falls with the batch (1: {fmt(mid['1'])}, 32: "
            f"{fmt(mid['32'])}, {n}: 0, mid-training); time per update rises with it "
            f"({', '.join(fmt(t * 1e3) + ' ms' for t in step_times)} for 1 / 32 / {n}); "
            "memory was not measured",
            mid["1"] > mid["32"] > mid[n] and step_times[0] < step_times[1] < step_times[2],
        ),
        (
            "Adam (document's table) — very fast convergence",
            f"epochs to target {fmt(adam['epochs_to_target'])} vs the fastest plain variant's "
            f"{fmt(min((r['epochs_to_target'] for r in (bgd, sgd, mb) if r['epochs_to_target']), default=None))}",
            (adam["epochs_to_target"] or np.inf)
            <= min(r["epochs_to_target"] or np.inf for r in runs.values()),
        ),
    ]


def run(ctx: Context) -> StudyResult:
    # quick: 576 examples, 18 whole batches of 32 (no smaller last batch to compile a step for)
    data = sentiment(ctx, ctx.pick(576, 4000), vocab_size=ctx.pick(300, 1000))
    n = len(data.x_train)
    model = MLP(features=(64, 2), activation="relu")
    params = init_variables(ctx, model, data.x_train[:1])
    epochs, timing_epochs = ctx.pick(3, 25), ctx.pick(1, 3)
    variants = {
        "batch GD": (n, lambda h: gdjax.sgd(h["lr"])),
        "SGD (batch 1)": (1, lambda h: gdjax.sgd(h["lr"])),
        "mini-batch GD (32)": (32, lambda h: gdjax.sgd(h["lr"])),
        "Adam (mini-batch 32)": (32, lambda h: gdjax.adam(h["lr"])),
    }
    target = float(0.5 * np.log(2.0))  # half the loss of guessing (ln 2, balanced classes)

    def loss(p, b):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, b[0]), b[1])

    def sgd_or_adam(h: dict) -> optax.GradientTransformation:
        return either(h["adam"], gdjax.sgd(h["lr"]), gdjax.adam(h["lr"]))

    train = (data.x_train, data.y_train)
    predict = jax.jit(model.apply)
    runs, curves, mid_params = {}, {}, None
    for name, (batch, make) in variants.items():
        grid = GRIDS[name]
        hparams = {"lr": np.asarray(grid, np.float32)}
        sweep_make = make
        if ctx.quick:  # every variant's optimizer as SGD or Adam picked by a traced flag (both
            # updates are computed, one is kept): the variants then share every compiled
            # program but the steps, and mini-batch GD and Adam (both batch 32) those too
            sweep_make = sgd_or_adam
            hparams["adam"] = np.full(len(grid), float(name.startswith("Adam")), np.float32)

        def grid_sweep(
            epochs: int, batch: int = batch, make: Callable = sweep_make, hparams: dict = hparams
        ) -> gdjax.SweepResult:
            # the full training loss after every epoch: the training set is the validation data
            return gdjax.sweep(
                loss,
                params,
                make,
                train,
                hparams=hparams,
                seeds=ctx.seed,
                batch_size=batch,
                epochs=epochs,
                # quick: a fixed order (each epoch's permutation is a program of its own to compile)
                shuffle=not ctx.quick,
                validation_data=train,
                progress=ctx.show_progress,
            )

        res = grid_sweep(epochs)
        full = res.history["val_loss"]
        hits = np.array([first_epoch_at(c, target) for c in full])
        best = pick_best(hits, full[:, -1])
        test_acc = gdjax.metrics.accuracy(
            predict(res.member(best)["params"], data.x_test), data.y_test
        )
        if ctx.quick:  # no re-run (one program less per variant): the whole grid's epochs
            per_epoch = float(np.median(res.epoch_seconds[batch][1:]))  # the first compiles
        else:  # cost of the chosen rate alone (the grid's program shares its time across rates)
            timing = gdjax.fit(
                loss,
                params,
                make({"lr": grid[best]}),
                train,
                batch_size=batch,
                epochs=timing_epochs + 1,
                key=prng_key(ctx, ctx.seed + 1),
            )
            per_epoch = float(np.median(timing.epoch_seconds[1:]))  # the first epoch compiles
        if name == "mini-batch GD (32)" and ctx.quick:
            # the common mid-training point for the noise: the chosen rate's member after one
            # epoch of the same sweep again, whose programs are compiled already (a fit would
            # compile its own)
            mid_params = grid_sweep(1).member(best)["params"]
        elif name == "mini-batch GD (32)":  # the common mid-training point for the noise
            mid_params = gdjax.fit(
                loss,
                params,
                make({"lr": grid[best]}),
                train,
                batch_size=batch,
                epochs=1,
                key=prng_key(ctx),
            ).params
        steps_per_epoch = -(-n // batch)  # the last, smaller batch is trained too
        e = None if np.isinf(hits[best]) else int(hits[best])
        runs[name] = {
            "batch_size": batch,
            "lr_grid": list(grid),
            "best_lr": grid[best],
            "best_lr_at_grid_edge": best in (0, len(grid) - 1),
            "epochs_to_target_per_lr": [None if np.isinf(h) else int(h) for h in hits],
            "final_train_loss_per_lr": full[:, -1].tolist(),
            "steps_per_epoch": steps_per_epoch,
            "train_loss_per_epoch": full[best].tolist(),
            "final_test_accuracy": float(test_acc),
            "seconds_per_epoch": per_epoch,
            "seconds_per_step": per_epoch / steps_per_epoch,
            "first_epoch_seconds_with_compile": float(res.epoch_seconds[batch][0]),
            "target_loss": target,
            "epochs_to_target": e,
            "steps_to_target": e * steps_per_epoch if e else None,
            "examples_to_target": e * n if e else None,
            "seconds_to_target": e * per_epoch if e else None,
        }
        curves[name] = full[best]

    sizes = sorted({b for b, _ in variants.values()})
    noise = {
        "initialisation": gradient_noise(loss, params, train, sizes),
        "mid-training": gradient_noise(loss, mid_params, train, sizes),
    }
    rows, noise_rows = [], []
    for name, r in runs.items():
        doc_speed, doc_cost = DOC[name]
        b = str(r["batch_size"])
        rows.append(
            [
                name,
                doc_speed,
                r["epochs_to_target"] or f"> {epochs}",
                f"{r['steps_to_target']:,}" if r["steps_to_target"] else "—",
                f"{r['examples_to_target']:,}" if r["examples_to_target"] else "—",
                fmt(r["seconds_to_target"]) if r["seconds_to_target"] else "—",
                doc_cost,
                fmt(r["seconds_per_epoch"]),
                fmt(r["seconds_per_step"] * 1e3),
                f"{r['best_lr']:g}" + (" (grid edge)" if r["best_lr_at_grid_edge"] else ""),
                pct(r["final_test_accuracy"]),
            ]
        )
        noise_rows.append(
            [
                name,
                r["batch_size"],
                noise["initialisation"]["relative_noise"][b],
                noise["mid-training"]["relative_noise"][b],
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
    ax2.bar(range(len(runs)), [r["seconds_per_epoch"] for r in runs.values()])
    ax2.set_xticks(range(len(runs)), list(runs), rotation=20, ha="right", fontsize=7)
    ax2.set(title="seconds per epoch (compiled, chosen rate alone)", yscale="log")
    fastest = min(runs, key=lambda k: runs[k]["seconds_to_target"] or np.inf)
    fewest_epochs = min(runs, key=lambda k: runs[k]["epochs_to_target"] or np.inf)
    fewest_examples = min(runs, key=lambda k: runs[k]["examples_to_target"] or np.inf)
    sgd, bgd = runs["SGD (batch 1)"], runs["batch GD"]
    se = {k: r["seconds_per_epoch"] for k, r in runs.items()}
    # the document's cost column: low (batch GD) < medium (mini-batch) < high (SGD, Adam)
    cost_match = (
        se["batch GD"]
        < se["mini-batch GD (32)"]
        < min(se["SGD (batch 1)"], se["Adam (mini-batch 32)"])
    )
    edges = [k for k, r in runs.items() if r["best_lr_at_grid_edge"]]
    per_epoch_text = ", ".join(f"{k.split(' (')[0]} {fmt(v)}" for k, v in se.items())
    spread = max(se.values()) / min(se.values())
    reading = (
        f"Reading. Fewest epochs to the target: **{fewest_epochs}**; fewest gradient "
        f"evaluations: **{fewest_examples}**; least wall time: **{fastest}**. "
        + f"Seconds per epoch: {per_epoch_text}"
        + (
            f" — within {spread:.1f}× of each other although SGD takes "
            f"{sgd['steps_per_epoch']:,}× more steps than batch GD: on this CPU every epoch does "
            "the same arithmetic (one gradient per example), and small steps are cheap. "
            if spread < 3
            else f" — {spread:.1f}× apart: per epoch, cost follows the number of sequential steps. "
        )
        + "The order "
        + (
            "matches the document's cost column (low / high / medium / high). "
            if cost_match
            else "differs from the document's cost column (low / high / medium / high). "
        )
        + (
            f"SGD needs fewer epochs than batch GD ({sgd['epochs_to_target']} vs "
            f"{bgd['epochs_to_target'] or '> ' + str(epochs)}), the document's 'fast'; "
            if (sgd["epochs_to_target"] or np.inf) < (bgd["epochs_to_target"] or np.inf)
            else "SGD does not need fewer epochs than batch GD here; "
        )
        + f"in wall-clock seconds the winner is {fastest}. Adam is "
        + (
            "among the fastest in epochs, as the document's 'very fast' says."
            if runs["Adam (mini-batch 32)"]["epochs_to_target"]
            == runs[fewest_epochs]["epochs_to_target"]
            else "not the fastest in epochs here, against the document's 'very fast'."
        )
        + (
            f" The chosen rate sits at the edge of its grid for: {', '.join(edges)} — a wider "
            "grid might do better there."
            if edges
            else " Every chosen rate lies inside its grid."
        )
    )
    if ctx.quick:
        cost_text = (
            "Cost (quick settings) is the sweep's median epoch time, the first epoch, which "
            f"compiles, left out: all {len(GRIDS['batch GD'])} rates of a grid together, not "
            "the chosen rate alone."
        )
    else:
        cost_text = (
            "Cost is timed by re-running the chosen rate alone with `gdjax.fit` for "
            f"{timing_epochs + 1} epoch(s) (median epoch time, the first epoch, which compiles, "
            "left out)."
        )
    grids = "; ".join(f"{k}: {', '.join(f'{v:g}' for v in GRIDS[k])}" for k in GRIDS)
    page = f"""
MLP {data.x_train.shape[1]}-64-2 (ReLU), softmax cross-entropy, {epochs} epochs for every
variant. Each variant's learning rate is chosen from a grid ({grids}; each grid is one
`gdjax.sweep`, its rates vmapped in one program) as the rate that reaches the target in the
fewest epochs, ties broken by the final loss. Target: full training loss ≤ {fmt(target)} (half
the loss of guessing, ½ ln 2), evaluated on the whole training set after each epoch. "Steps"
are optimizer updates (the last, smaller batch of an epoch included); "examples" are
per-example gradient evaluations ({n:,} per epoch). {cost_text}

{
        table(
            [
                "variant",
                "document: speed",
                "epochs to target",
                "steps to target",
                "examples to target",
                "seconds to target",
                "document: cost",
                "s / epoch",
                "ms / step",
                "chosen lr",
                "test accuracy",
            ],
            rows,
        )
    }

## Gradient noise, measured at the same parameters for every variant

The noise of a variant is how far its mini-batch gradient strays from the full gradient:
E‖g_B − g‖² / ‖g‖², computed exactly from all {n:,} per-example gradients (for batches drawn
without replacement, E‖g_B − g‖² = (n − B)/(B(n − 1)) · σ²). It is measured at two points shared
by all variants — the initial parameters, and the parameters after one epoch of mini-batch GD
(mid-training) — rather than along each variant's own run, where the fast variants have already
memorised the training set and every loss is near zero. Adam consumes the same mini-batch
gradients as mini-batch GD, so its gradient noise is the same; what differs is its step.

{
        table(
            [
                "variant",
                "batch",
                "relative gradient noise at initialisation",
                "mid-training",
            ],
            noise_rows,
        )
    }

{reading}

## The document's advantages and disadvantages, against these runs

From the document's tables "Variant | Advantages | Disadvantages" and "Hyperparameter | Effect"
(batch-size row; the learning-rate row is on [learning_rate](learning_rate.md)); each verdict is
computed from the numbers above.

{claims_table(variant_claims(runs, noise))}
"""
    headline = (
        f"epochs to loss {fmt(target, 2)}: "
        + ", ".join(
            f"{k.split(' (')[0]} {r['epochs_to_target'] or '>' + str(epochs)}"
            for k, r in runs.items()
        )
        + f"; s/epoch batch GD {fmt(runs['batch GD']['seconds_per_epoch'], 3)} vs "
        f"SGD {fmt(runs['SGD (batch 1)']['seconds_per_epoch'], 3)}; mid-training gradient "
        f"noise batch 1 {fmt(noise['mid-training']['relative_noise']['1'], 2)} vs 32 "
        f"{fmt(noise['mid-training']['relative_noise']['32'], 2)} "
        "(document: slow/fast/moderate/very fast)"
    )
    numbers = {
        "epochs": epochs,
        "target_loss": target,
        "document": DOC,
        "runs": runs,
        "gradient_noise": noise,
    }
    return StudyResult(numbers, page, {"curves": fig}, headline, data.description)


STUDY = Study("gd_variants", "Comparing gradient-descent variants", SOURCE, run)
