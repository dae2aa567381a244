"""Study 8: depth vs training time — ResNet-20/32/44/56 on CIFAR-10-shaped batches.

The document's table: 75 / 110 / 140 / 180 minutes of training for 20 / 32 / 44 / 56 layers
on CIFAR-10 (epochs and hardware unstated). Here each depth's compiled training step
(``gdjax.models.ResNet``, batch norm, SGD + momentum, batch 32) is timed over a fixed number of
steps after compilation, and the time per epoch (50,000 images) is **extrapolated** from it.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._data import cifar10
from experiments._report import figure, fmt, table
from experiments.studies import init_variables
from gdjax.models import ResNet

SOURCE = "gradient-descent-for-neural-networks.md, 'Impact of Number of Layers on Training Time'"
DOC = {20: 75, 32: 110, 44: 140, 56: 180}
EPOCH_IMAGES = 50_000


def time_depth(
    depth: int,
    widths: tuple,
    batch: int,
    steps: int,
    x: np.ndarray,
    y: np.ndarray,
    ctx: Context,
    conv_implementation: str = "auto",
) -> dict:
    """Compile ``steps`` training steps as one scanned program, then time one run of it."""
    model = ResNet(depth=depth, widths=widths, conv_implementation=conv_implementation)
    # the initial weights (step time does not depend on them)
    variables = init_variables(ctx, model, x[:1])
    params, stats = variables["params"], variables["batch_stats"]
    opt = gdjax.chain(gdjax.add_decayed_weights(5e-4), gdjax.sgd(0.1, momentum=0.9))
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))

    def loss_fn(p, s, xb, yb):
        logits, upd = model.apply(
            {"params": p, "batch_stats": s}, xb, train=True, mutable=["batch_stats"]
        )
        return gdjax.losses.softmax_cross_entropy(logits, yb), upd["batch_stats"]

    def run(p, s, o, xs, ys):
        def step(carry, b):
            p, s, o = carry
            (loss, s), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s, *b)
            u, o = opt.update(g, o, p)
            return (gdjax.apply_updates(p, u), s, o), loss

        (p, s, o), losses = jax.lax.scan(step, (p, s, o), (xs, ys))
        return p, s, o, losses

    xs = jnp.asarray(x[: steps * batch].reshape(steps, batch, *x.shape[1:]))
    ys = jnp.asarray(y[: steps * batch].reshape(steps, batch))
    fn = jax.jit(run)
    t0 = time.perf_counter()
    compiled = fn.lower(params, stats, opt.init(params), xs, ys).compile()
    compile_s = time.perf_counter() - t0
    state = (params, stats, opt.init(params))
    t0 = time.perf_counter()
    out = compiled(*state, xs, ys)
    losses = np.asarray(out[3])
    elapsed = time.perf_counter() - t0
    per_step = elapsed / steps
    return {
        "parameters": n_params,
        "compile_seconds": compile_s,
        "measured_steps": steps,
        "measured_seconds": elapsed,
        "seconds_per_step": per_step,
        "extrapolated_seconds_per_epoch": per_step * int(np.ceil(EPOCH_IMAGES / batch)),
        "losses_finite": bool(np.all(np.isfinite(losses))),
    }


def run(ctx: Context) -> StudyResult:
    depths = ctx.pick((8, 14), (20, 32, 44, 56))
    widths = ctx.pick((4, 8, 16), (16, 32, 64))
    batch, steps = ctx.pick(8, 32), ctx.pick(2, 20)
    real = cifar10(ctx, steps * batch)
    if real is not None:
        x, y, data = real.x_train, real.y_train, real.description
    else:
        rng = np.random.default_rng(ctx.seed)
        x = rng.random((steps * batch, 32, 32, 3), np.float32)
        y = rng.integers(0, 10, steps * batch).astype(np.int32)
        data = (
            "CIFAR-10-shaped random images (32×32×3, 10 classes) — **for timing only**; "
            "CIFAR-10 was not found under `--data-dir` (cifar-10-batches-bin/). Step time "
            "does not depend on pixel values."
        )
    # quick: XLA's own convolution, whose training step compiles in about 60% of the patch
    # products' time and, at quick's widths and batch, runs as fast inside the scan
    conv = ctx.pick("xla", "auto")
    runs = {}
    for d in ctx.progress(depths, desc="ResNet depths"):
        runs[f"ResNet-{d}"] = time_depth(d, widths, batch, steps, x, y, ctx, conv)
    base = runs[f"ResNet-{depths[0]}"]["seconds_per_step"]
    # The same shallowest step with XLA's own convolution inside the scan, for comparison
    # (skipped under --quick: one more model to compile).
    xla_steps = 2
    xla = None if ctx.quick else time_depth(depths[0], widths, batch, xla_steps, x, y, ctx, "xla")
    rows = []
    for d in depths:
        r = runs[f"ResNet-{d}"]
        doc = DOC.get(d)
        rows.append(
            [
                f"ResNet-{d}",
                f"{r['parameters']:,}",
                f"{r['compile_seconds']:.1f}",
                f"{r['seconds_per_step']:.3f}",
                f"{r['extrapolated_seconds_per_epoch'] / 60:.1f}",
                f"{r['seconds_per_step'] / base:.2f}",
                f"{doc}" if doc else "—",
                f"{doc / DOC[20]:.2f}" if doc else "—",
            ]
        )
    fig, ax = figure()
    ax.plot(
        depths,
        [runs[f"ResNet-{d}"]["seconds_per_step"] / base for d in depths],
        "o-",
        label="measured (step time)",
    )
    if not ctx.quick:
        ax.plot(list(DOC), [v / DOC[20] for v in DOC.values()], "s--", label="document")
    ax.set(title="training time relative to the shallowest", xlabel="layers", ylabel="ratio")
    ax.legend()
    ratio = runs[f"ResNet-{depths[-1]}"]["seconds_per_step"] / base
    blocks = [(d - 2) // 6 for d in depths]
    deepest = runs[f"ResNet-{depths[-1]}"]
    reading = (
        "Reading: the document reports *total* training minutes without saying how many epochs "
        "or on what hardware, so only the ratios are comparable. Measured, the deepest model's "
        f"step costs {ratio:.2f}× the shallowest's; the ratio of residual blocks is "
        f"{blocks[-1]}/{blocks[0]} = {blocks[-1] / blocks[0]:.2f}. "
        + (
            "The document's ratio is 180/75 = 2.40×, "
            + ("close to" if abs(ratio - 2.4) < 0.4 else "not close to")
            + " the measured one. "
            if not ctx.quick
            else "(Quick settings use depths 8 and 14, not the document's.) "
        )
        + f"On this machine (2 shared CPU cores, no GPU) one epoch of ResNet-{depths[-1]} would "
        f"take about {fmt(deepest['extrapolated_seconds_per_epoch'] / 60, 1)} minutes "
        "(extrapolated); the document's absolute minutes cannot be compared without its "
        "hardware and epoch count."
        + (
            " By coincidence, one extrapolated epoch on this CPU takes about as many minutes as "
            "the document's *total* training time at every depth — which, if the document's "
            "run was longer than one epoch, means its hardware was faster than these two cores."
            if all(
                0.8 <= runs[f"ResNet-{d}"]["extrapolated_seconds_per_epoch"] / 60 / DOC[d] <= 1.25
                for d in depths
                if d in DOC
            )
            and not ctx.quick
            else ""
        )
    )
    if xla is None:
        xla_text = (
            " — except under `--quick`, which compiles XLA's own convolution instead (faster to "
            "compile) and skips the comparison of the two."
        )
    else:
        xla_text = (
            f": with XLA's own convolution inside the scan, the ResNet-{depths[0]} step took "
            f"{xla['seconds_per_step']:.2f} s instead of {base:.3f} s "
            f"({xla['seconds_per_step'] / base:.0f}× slower, {xla_steps} steps timed), since "
            "XLA:CPU runs the gradient convolutions of a loop body as naive loops "
            "(jax-ml/jax#12868)."
        )
    page = f"""
Each depth's training step (forward, backward, SGD + momentum 0.9 with weight decay, batch
norm in training mode) is compiled as one `lax.scan` over {steps} steps of batch {batch}, compiled
ahead of time (compile time listed separately), then run once and timed. **Time per epoch is
extrapolated** from those {steps} measured steps to {int(np.ceil(EPOCH_IMAGES / batch))} steps
(50,000 images), not measured over a full epoch. Widths {widths}. The convolutions are
`gdjax.models.Conv` patch-matrix products (the CPU default){xla_text}

{
        table(
            [
                "model",
                "parameters",
                "compile (s)",
                "s / step",
                "min / epoch (extrapolated)",
                "relative",
                "document (min, total)",
                "document relative",
            ],
            rows,
        )
    }

{reading}
"""
    headline = (
        f"step time ResNet-{depths[-1]} / ResNet-{depths[0]} = {ratio:.2f}× "
        f"({fmt(runs[f'ResNet-{depths[-1]}']['extrapolated_seconds_per_epoch'] / 60, 1)} min/epoch "
        f"extrapolated; document 180/75 min = 2.40×)"
    )
    numbers = {
        "batch_size": batch,
        "widths": list(widths),
        "epoch_images": EPOCH_IMAGES,
        "document_minutes": {f"ResNet-{k}": v for k, v in DOC.items()},
        "runs": runs,
    }
    if xla is not None:
        numbers["xla_convolution"] = {f"ResNet-{depths[0]}": xla}
    return StudyResult(numbers, page, {"scaling": fig}, headline, data)


STUDY = Study(
    "resnet_depth", "Depth vs training time (ResNet-20/32/44/56)", SOURCE, run, default=False
)
