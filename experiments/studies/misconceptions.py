"""Study 9: five misconceptions about gradient descent, each checked on a problem built for it.

(a) local vs global minima: multi-start GD on the Rastrigin function, simulated annealing
(``gdjax.simulated_annealing``) beside it;
(b) fixed vs adaptive learning rates: SGD against AdaGrad / RMSprop / Adam on ill-conditioned
quadratics (axis-aligned and rotated), each with its best rate from a vmapped grid;
(c) saddle points: GD started on a saddle's stable manifold stays, perturbed GD escapes;
(d) ReLU's kink: a ReLU network trains with JAX's subgradient (relu'(0) = 0);
(e) exploding gradients: a ReLU RNN reading digits one pixel per step (64 steps, identity
recurrence), SGD with and without gradient clipping (vmapped).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._history import epoch_loss, final
from experiments._report import figure, fmt, pct, table
from experiments._toy import either, minimize_sweep
from experiments.studies import prng_key

SOURCE = "gradient-descent-for-neural-networks.md, 'Common Misconceptions' 1, 2, 4, 5"


# --- (a) local vs global minima ---------------------------------------------------------------
def sa_key_impl(ctx: Context) -> str | None:
    """The PRNG implementation of :func:`anneal`'s chains: JAX's default in the published runs;
    under ``--quick`` XLA's RngBitGenerator with its own key splitting ("unsafe_rbg"), since
    each chain splits its key every step and threefry's splits compile ~0.7 s slower."""
    return ctx.pick("unsafe_rbg", None)


def rastrigin(x: jax.Array) -> jax.Array:
    """2-D Rastrigin: global minimum 0 at the origin, a local minimum near every integer point."""
    return 10.0 * x.shape[-1] + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x), axis=-1)


def anneal(
    starts: np.ndarray,
    seed: int,
    steps: int,
    t0: float,
    t1: float,
    step: float,
    *,
    impl: str | None = None,
):
    """``gdjax.simulated_annealing`` from every row of ``starts`` (independent keyed chains, all
    in one vmapped program), temperature falling geometrically from ``t0`` to ``t1``; ``impl``
    is the chains' PRNG implementation (default: JAX's default).

    Returns the best point each chain saw.
    """
    cooling = gdjax.schedules.exponential_decay(t0, max(steps - 1, 1), t1 / t0)
    keys = jax.random.split(jax.random.key(seed, impl=impl), starts.shape[0])

    def chain(x0, key):
        sa = gdjax.simulated_annealing(cooling, step, key=key)
        return gdjax.minimize(rastrigin, x0, method=sa, max_steps=steps, history=False).params

    return jax.jit(jax.vmap(chain))(jnp.asarray(starts), keys)


def part_a(ctx: Context, seed: int) -> dict:
    n = ctx.pick(64, 1000)
    starts = np.random.default_rng(seed).uniform(-5.12, 5.12, (n, 2)).astype(np.float32)
    lr = {"learning_rate": np.full(n, 0.002)}
    _, gd_vals = minimize_sweep(
        rastrigin, starts, lambda h: gdjax.sgd(h["learning_rate"]), lr, steps=2000
    )
    sa_best = anneal(starts, seed, ctx.pick(2000, 20000), 10.0, 0.01, 0.3, impl=sa_key_impl(ctx))
    # polish SA's best point with the same gradient descent, so both end at a stationary point
    _, sa_vals = minimize_sweep(
        rastrigin, sa_best, lambda h: gdjax.sgd(h["learning_rate"]), lr, steps=2000
    )
    gd_final, sa_final = gd_vals[:, -1], sa_vals[:, -1]
    distinct = len(np.unique(np.round(gd_final, 2)))
    return {
        "starts": n,
        "gd_fraction_global": float(np.mean(gd_final < 1e-3)),
        "sa_fraction_global": float(np.mean(sa_final < 1e-3)),
        "gd_distinct_minima_values": distinct,
        "gd_mean_final": float(gd_final.mean()),
        "sa_mean_final": float(sa_final.mean()),
        "gd_final_histogram": np.round(gd_final, 2).tolist() if n <= 64 else None,
        "_gd_final": gd_final,
        "_sa_final": sa_final,
    }


# --- (b) fixed vs adaptive learning rates ---------------------------------------------------
ADAPTIVE = {
    "SGD (fixed rate)": lambda h: gdjax.sgd(h["learning_rate"]),
    "AdaGrad": lambda h: gdjax.adagrad(h["learning_rate"]),
    "RMSprop": lambda h: gdjax.rmsprop(h["learning_rate"]),
    "Adam": lambda h: gdjax.adam(h["learning_rate"]),
}


def quadratic(dim: int, cond: float, rotate: bool, seed: int):
    """``f(x) = ½ xᵀ A x`` with eigenvalues log-spaced in [1, cond], optionally rotated."""
    eig = np.logspace(0.0, np.log10(cond), dim)
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.normal(size=(dim, dim)))[0] if rotate else np.eye(dim)
    a = ((q * eig) @ q.T).astype(np.float32)
    return lambda x: 0.5 * x @ a @ x


def part_b(ctx: Context, seed: int) -> dict:
    dim, cond, steps = 10, 1e3, ctx.pick(300, 2000)
    grid = np.logspace(-4, 1, ctx.pick(11, 26))
    x0 = np.ones((len(grid), dim), np.float32)
    out = {"dim": dim, "condition_number": cond, "steps": steps, "lr_grid": grid.tolist()}
    makers = list(ADAPTIVE.values())

    def any_adaptive(h: dict) -> optax.GradientTransformation:
        """Optimizer ``2·hi + lo`` of ``ADAPTIVE`` (traced flags; all four updates computed)."""
        low = either(h["lo"], makers[0](h), makers[1](h))
        return either(h["hi"], low, either(h["lo"], makers[2](h), makers[3](h)))

    for rotate in (False, True):
        f = quadratic(dim, cond, rotate, seed)
        f0 = float(f(x0[0].astype(np.float64)))
        rows = {}
        together = None
        if ctx.quick:  # the four optimizers' grids in one vmapped program, not four
            k = np.repeat(np.arange(len(ADAPTIVE)), len(grid))
            hp = {"learning_rate": np.tile(grid, len(ADAPTIVE)), "hi": k // 2, "lo": k % 2}
            x0s = np.tile(x0, (len(ADAPTIVE), 1))
            _, together = minimize_sweep(f, x0s, any_adaptive, hp, steps=steps)
        for i, (name, make) in enumerate(ADAPTIVE.items()):
            if together is not None:
                vals = together[i * len(grid) : (i + 1) * len(grid)]
            else:
                _, vals = minimize_sweep(f, x0, make, {"learning_rate": grid}, steps=steps)
            final = np.where(np.isfinite(vals[:, -1]), vals[:, -1], np.inf)
            best = int(np.argmin(final))
            reached = np.nonzero(vals[best] <= 1e-6 * f0)[0]
            rows[name] = {
                "best_lr": float(grid[best]),
                "final_relative_loss": float(final[best] / f0),
                "steps_to_1e-6": int(reached[0]) if reached.size else None,
                "_curve": vals[best] / f0,
            }
        out["rotated" if rotate else "axis_aligned"] = rows
    return out


# --- (c) saddle points ------------------------------------------------------------------------
def saddle(x: jax.Array) -> jax.Array:
    """``x² − y² + y⁴/4``: a saddle at the origin, minima −1 at (0, ±√2)."""
    return x[0] ** 2 - x[1] ** 2 + 0.25 * x[1] ** 4


def part_c(ctx: Context, seed: int) -> dict:
    n, steps = ctx.pick(16, 200), 500
    starts = np.tile(np.array([[1.0, 0.0]], np.float32), (n, 1))  # saddle's stable manifold y=0
    _, gd = minimize_sweep(
        saddle, starts, lambda h: gdjax.sgd(0.05), {"i": np.arange(n)}, steps=steps
    )
    i = {"i": np.arange(n)}

    def perturbed(h):
        key = jax.random.fold_in(jax.random.key(seed), h["i"].astype(jnp.int32))
        return gdjax.chain(gdjax.add_noise(1e-4, 0.0, key, below_norm=1e-3), gdjax.sgd(0.05))

    _, pgd = minimize_sweep(saddle, starts, perturbed, i, steps=steps)
    escaped = pgd[:, -1] < -0.99
    first = [int(np.argmax(v < -0.5)) for v, e in zip(pgd, escaped, strict=True) if e]
    return {
        "start": [1.0, 0.0],
        "seeds": n,
        "steps": steps,
        "gd_final_value": float(gd[0, -1]),
        "gd_fraction_escaped": float(np.mean(gd[:, -1] < -0.99)),
        "perturbed_fraction_escaped": float(escaped.mean()),
        "perturbed_median_steps_to_escape": float(np.median(first)) if first else None,
        "_gd_curve": gd[0],
        "_pgd_curve": pgd[0],
    }


# --- (d) ReLU's kink and (e) exploding gradients on digits -----------------------------------
def mlp_init(seed: int, sizes: list[int], gain: float) -> list[dict]:
    """Gaussian weights with std ``gain / sqrt(fan_in)``, zero biases (NumPy: no compiles)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "w": (gain * rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32),
            "b": np.zeros(b, np.float32),
        }
        for a, b in itertools.pairwise(sizes)
    ]


def mlp_apply(params: list[dict], x: jax.Array, act) -> jax.Array:
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def digits(ctx: Context):
    x, y = gdjax.data.load_sklearn("digits")
    x = x / 16.0
    return x[:1400], y[:1400], x[1400:], y[1400:]


def part_d(ctx: Context, seed: int) -> dict:
    xtr, ytr, xte, yte = digits(ctx)
    out = {"relu_grad_at_zero": float(jax.grad(jax.nn.relu)(0.0))}
    for name, act in (
        ("ReLU (subgradient at 0)", jax.nn.relu),
        ("softplus (smooth)", jax.nn.softplus),
    ):
        params = mlp_init(seed, [64, 64, 64, 10], np.sqrt(2.0))

        def loss(p, batch, act=act):
            return gdjax.losses.softmax_cross_entropy(mlp_apply(p, batch[0], act), batch[1])

        def accuracy(p, batch, act=act):
            return gdjax.metrics.accuracy(mlp_apply(p, batch[0], act), batch[1])

        res = gdjax.fit(
            loss,
            params,
            gdjax.sgd(0.05, momentum=0.9),
            (xtr, ytr),
            batch_size=32,
            epochs=ctx.pick(3, 30),
            # quick: a fixed order (each epoch's permutation is a program of its own to compile)
            shuffle=not ctx.quick,
            drop_last=True,
            key=prng_key(ctx, seed),
            validation_data=(xte, yte),
            metrics={"acc": accuracy},
            progress=ctx.show_progress,
        )
        w, b = np.asarray(res.params[0]["w"]), np.asarray(res.params[0]["b"])
        pre = xtr @ w + b
        out[name] = {
            "final_train_loss": float(epoch_loss(res.history)[-1]),
            "test_accuracy": float(res.history["val_acc"][-1]),
            "exact_zero_preactivations": int(np.sum(pre == 0.0)),
            "inactive_fraction_layer1": float(np.mean(pre <= 0.0)),
        }
    return out


#: (e) learning rates and clipping thresholds, every pair in one vmapped program.
E_RATES = (0.01, 0.03)
E_CLIPS = {"no clipping": 1e30, "clip_by_global_norm(1)": 1.0, "clip_by_global_norm(10)": 10.0}
E_HIDDEN = 64


def irnn_init(seed: int) -> dict:
    """A ReLU RNN with identity recurrence (Le et al.'s IRNN), NumPy arrays (no compiles)."""
    rng = np.random.default_rng(seed)
    h = E_HIDDEN
    return {
        "wx": (0.1 * rng.normal(size=(1, h))).astype(np.float32),
        "wh": np.eye(h, dtype=np.float32),
        "b": np.zeros(h, np.float32),
        "wo": (rng.normal(size=(h, 10)) / np.sqrt(h)).astype(np.float32),
        "bo": np.zeros(10, np.float32),
    }


def irnn_apply(p: dict, x: jax.Array) -> jax.Array:
    """Read each image one pixel per step (64 steps for digits) and classify the last state."""

    def step(h, xt):
        return jax.nn.relu(xt @ p["wx"] + h @ p["wh"] + p["b"]), None

    h, _ = jax.lax.scan(step, jnp.zeros((x.shape[0], E_HIDDEN)), x.T[..., None])
    return h @ p["wo"] + p["bo"]


def part_e(ctx: Context, seed: int) -> dict:
    """Exploding gradients: a ReLU RNN over 64-step pixel sequences, with and without clipping."""
    xtr, ytr, xte, yte = digits(ctx)
    params = irnn_init(seed)

    def loss(p, batch):
        return gdjax.losses.softmax_cross_entropy(irnn_apply(p, batch[0]), batch[1])

    def accuracy(p, batch):
        return gdjax.metrics.accuracy(irnn_apply(p, batch[0]), batch[1])

    grad_norm = float(
        jax.jit(lambda p, b: optax.tree.norm(jax.grad(loss)(p, b)))(params, (xtr[:256], ytr[:256]))
    )
    configs = [(c, lr) for lr in E_RATES for c in E_CLIPS]
    res = gdjax.sweep(
        loss,
        params,
        lambda h: gdjax.chain(gdjax.clip_by_global_norm(h["clip"]), gdjax.sgd(h["lr"])),
        (xtr, ytr),
        hparams={"clip": [E_CLIPS[c] for c, _ in configs], "lr": [lr for _, lr in configs]},
        seeds=seed,
        batch_size=32,
        epochs=ctx.pick(3, 20),
        shuffle=not ctx.quick,
        drop_last=True,
        validation_data=(xte, yte),
        metrics={"acc": accuracy},
        record_steps=True,
        progress=ctx.show_progress,
    )
    blow_up = 10 * float(np.log(10.0))  # ten times the loss of guessing among 10 classes
    train_loss = epoch_loss(res.history)
    test_acc = final(res.history["val_acc"], res.epochs_run)
    runs = {}
    for i, (c, lr) in enumerate(configs):
        sl = res.history["step_loss"][i].ravel()  # not finite from a diverging step on
        finite = np.isfinite(sl)
        largest = float(np.max(sl[finite])) if finite.any() else float("nan")
        runs[f"{c}, lr {lr:g}"] = {
            "clipping": c,
            "lr": lr,
            "final_train_loss": float(train_loss[i, -1]),
            "test_accuracy": float(test_acc[i]),
            "max_step_loss": largest,
            "diverged": bool(not finite.all()),
            "blew_up": bool(not finite.all() or largest > blow_up),
            "_curve": train_loss[i],
        }
    return {
        "model": f"ReLU RNN, {E_HIDDEN} units, identity recurrence, digits read one pixel per step",
        "sequence_length": int(xtr.shape[1]),
        "initial_gradient_norm": grad_norm,
        "blow_up_threshold": blow_up,
        "runs": runs,
    }


def strip(d):
    """Drop private (``_``-prefixed) entries used only for plots."""
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if not k.startswith("_")}
    return d


def read_a(a: dict) -> str:
    gd, sa = a["gd_fraction_global"], a["sa_fraction_global"]
    verdict = (
        "Simulated annealing reaches the global minimum more often, as the document suggests."
        if sa > gd
        else "Here simulated annealing did **not** beat plain multi-start GD: the document's "
        "suggestion is not borne out at these settings."
    )
    return (
        f"Gradient descent (lr 0.002, 2000 steps) stops in the minimum of the basin it starts in: "
        f"{a['gd_distinct_minima_values']} distinct final values (Rastrigin's local minima sit near "
        f"1, 2, 4, 5, 8, …), {pct(gd)} at the global one. Simulated annealing "
        f"(`gdjax.simulated_annealing`: Metropolis walk, temperature 10 → 0.01, then the same GD to "
        f"polish) ends there from {pct(sa)} of the same "
        f"starts. Mean final value: GD {fmt(a['gd_mean_final'])}, SA {fmt(a['sa_mean_final'])}. "
        f"{verdict}"
    )


def read_b(b: dict) -> str:
    def loss(geometry: str, name: str) -> float:
        return b[geometry][name]["final_relative_loss"]

    lines = []
    for geometry in ("axis_aligned", "rotated"):
        sgd = loss(geometry, "SGD (fixed rate)")
        better = [n for n in ADAPTIVE if n != "SGD (fixed rate)" and loss(geometry, n) < sgd]
        worse = [n for n in ADAPTIVE if n != "SGD (fixed rate)" and n not in better]
        lines.append(
            f"On the {geometry.replace('_', '-')} quadratic, "
            + (
                f"{', '.join(better)} end below the best fixed-rate SGD"
                if better
                else "no adaptive method beats the best fixed-rate SGD"
            )
            + (f"; {', '.join(worse)} do not" if worse and better else "")
            + "."
        )
    gain_aligned = loss("axis_aligned", "SGD (fixed rate)") / max(
        loss("axis_aligned", "Adam"), 1e-30
    )
    gain_rotated = loss("rotated", "SGD (fixed rate)") / max(loss("rotated", "Adam"), 1e-30)
    lines.append(
        f"Adam's advantage over SGD (ratio of final losses) is {gain_aligned:.3g}× axis-aligned and "
        f"{gain_rotated:.3g}× rotated: per-coordinate rates fit curvature that lies along the axes "
        "and help less when it does not. So the document's claim (adaptive rates converge faster) "
        "holds here, most clearly where the ill-conditioning is axis-aligned."
    )
    return " ".join(lines)


def read_c(c: dict) -> str:
    return (
        "Started at (1, 0), on the saddle's attracting manifold, plain gradient descent (lr 0.05) "
        f"ends at f = {fmt(c['gd_final_value'])}: the y-gradient is exactly zero on y = 0, so it "
        "converges to the saddle (0, 0) and stays. Perturbed gradient descent "
        "(`gdjax.add_noise(below_norm=1e-3)`: Gaussian noise only while the gradient is tiny) "
        f"reaches a minimum (f = −1) in {pct(c['perturbed_fraction_escaped'])} of {c['seeds']} "
        "seeds. Both halves of the document's point show: exact GD can be held by a saddle, and a "
        "small perturbation frees it."
    )


def read_d(d: dict) -> str:
    relu, soft = d["ReLU (subgradient at 0)"], d["softplus (smooth)"]
    gap = relu["test_accuracy"] - soft["test_accuracy"]
    return (
        f"Pre-activations hit the kink exactly {relu['exact_zero_preactivations']} times over the "
        "training set (they are sums of floats), and where they do, the subgradient 0 is a valid "
        f"choice. ReLU's test accuracy is {100 * gap:+.1f} points from smooth softplus: the "
        "non-differentiable point does not stop gradient descent, as the document says."
    )


def clipping_shown(e: dict) -> list[float]:
    """Learning rates at which the unclipped run blew up while clipping at 1 trained stably."""
    runs = e["runs"]
    shown = []
    for lr in E_RATES:
        none, one = runs[f"no clipping, lr {lr:g}"], runs[f"clip_by_global_norm(1), lr {lr:g}"]
        if (
            none["blew_up"]
            and not one["blew_up"]
            and (none["diverged"] or one["final_train_loss"] < none["final_train_loss"])
        ):
            shown.append(lr)
    return shown


def read_e(e: dict) -> str:
    runs = e["runs"]
    parts = [f"Initial global gradient norm {fmt(e['initial_gradient_norm'])}."]
    for lr in E_RATES:
        none, one = runs[f"no clipping, lr {lr:g}"], runs[f"clip_by_global_norm(1), lr {lr:g}"]
        if none["diverged"]:
            what = "the unclipped run diverged (non-finite loss)"
        elif none["blew_up"]:
            what = (
                f"the unclipped run blew up (largest step loss {fmt(none['max_step_loss'])}) and "
                f"ended at loss {fmt(none['final_train_loss'])}, test accuracy "
                f"{pct(none['test_accuracy'])}"
                + (
                    " — the loss of guessing (ln 10): the blow-up left the network predicting "
                    "the same for every image"
                    if abs(none["final_train_loss"] - np.log(10.0)) < 0.01
                    else ""
                )
            )
        else:
            what = (
                f"the unclipped run stayed below the blow-up threshold and ended at loss "
                f"{fmt(none['final_train_loss'])}"
            )
        what += (
            "; clipped at norm 1 it "
            + (
                "blew up too"
                if one["blew_up"]
                else f"stayed stable (largest step loss {fmt(one['max_step_loss'])})"
            )
            + f" and ended at loss {fmt(one['final_train_loss'])}, test accuracy "
            f"{pct(one['test_accuracy'])}"
        )
        parts.append(f"At lr {lr:g}, {what}.")
    shown = clipping_shown(e)
    parts.append(
        "So clipping tames the exploding gradients here, as the document says"
        + (
            f" (at lr {', '.join(f'{lr:g}' for lr in shown)})."
            if len(shown) < len(E_RATES)
            else "."
        )
        if shown
        else "So this run does **not** show clipping's benefit: no setting had an unclipped "
        "blow-up that clipping at 1 avoided."
    )
    return " ".join(parts)


def summary_table(a: dict, b: dict, c: dict, d: dict, e: dict, best_b: str) -> str:
    """One row per misconception: the document's claim and the measured figure."""
    relu, soft = d["ReLU (subgradient at 0)"], d["softplus (smooth)"]
    none_e = e["runs"][f"no clipping, lr {E_RATES[-1]:g}"]
    one_e = e["runs"][f"clip_by_global_norm(1), lr {E_RATES[-1]:g}"]
    rows = [
        [
            "1. GD always reaches the global minimum",
            "it can stop in a local minimum; simulated annealing can avoid that",
            f"{pct(a['gd_fraction_global'])} of {a['starts']} GD starts reach Rastrigin's global "
            f"minimum ({a['gd_distinct_minima_values']} distinct final values); SA then GD: "
            f"{pct(a['sa_fraction_global'])}",
        ],
        [
            "2. GD needs a fixed learning rate",
            "AdaGrad, RMSprop, Adam adapt it and can converge faster",
            f"rotated κ=10³ quadratic: lowest loss after {b['steps']} steps is {best_b}'s",
        ],
        [
            "4. GD gets stuck at saddle points",
            "small random perturbations let it escape",
            f"GD from (1, 0) ends at f = {fmt(c['gd_final_value'])} (the saddle); perturbed GD "
            f"escapes in {pct(c['perturbed_fraction_escaped'])} of {c['seeds']} seeds (median "
            f"{fmt(c['perturbed_median_steps_to_escape'], 0)} steps)",
        ],
        [
            "5. GD needs differentiable activations",
            "ReLU works with subgradients",
            f"relu'(0) = {d['relu_grad_at_zero']:g} in JAX; ReLU MLP {pct(relu['test_accuracy'])} "
            f"digits test accuracy vs softplus {pct(soft['test_accuracy'])}",
        ],
        [
            "exploding gradients (deep-learning doc)",
            "clipping keeps training stable",
            f"ReLU RNN over {e['sequence_length']} steps, lr {E_RATES[-1]:g}: largest step loss "
            f"{fmt(none_e['max_step_loss'])} unclipped vs {fmt(one_e['max_step_loss'])} with clip 1;"
            f" final loss {fmt(none_e['final_train_loss'])} vs {fmt(one_e['final_train_loss'])}; "
            + ("clipping tamed it" if clipping_shown(e) else "clipping's benefit not shown"),
        ],
    ]
    return table(["misconception (document)", "what the document says", "measured here"], rows)


def run(ctx: Context) -> StudyResult:
    s = ctx.seed
    a, b, c, d, e = (
        part_a(ctx, s),
        part_b(ctx, s + 1),
        part_c(ctx, s + 2),
        part_d(ctx, s + 3),
        part_e(ctx, s + 4),
    )

    fig, axes = figure(ncols=4, width=4.2)
    axes[0].hist([a["_gd_final"], a["_sa_final"]], bins=30, label=["GD", "SA + GD"])
    axes[0].set(title="(a) final Rastrigin value per start", xlabel="f at the end", ylabel="starts")
    axes[0].legend()
    for name, row in b["rotated"].items():
        axes[1].semilogy(
            np.maximum(row["_curve"], 1e-16), label=f"{name} (lr {row['best_lr']:.2g})"
        )
    axes[1].set(title="(b) rotated quadratic, κ=1e3", xlabel="step", ylabel="f / f0")
    axes[1].legend(fontsize=7)
    axes[2].plot(c["_gd_curve"], label="GD from (1, 0)")
    axes[2].plot(c["_pgd_curve"], label="perturbed GD")
    axes[2].set(title="(c) saddle x²−y²+y⁴/4", xlabel="step", ylabel="f")
    axes[2].legend()
    for name, r in e["runs"].items():
        ys = r["_curve"]
        axes[3].plot(range(1, len(ys) + 1), ys, label=name)
    axes[3].set(
        title="(e) ReLU RNN, 64 steps, SGD", xlabel="epoch", ylabel="train loss", yscale="log"
    )
    axes[3].legend(fontsize=7)

    b_rows = []
    for geometry in ("axis_aligned", "rotated"):
        for name, row in b[geometry].items():
            b_rows.append(
                [
                    geometry.replace("_", "-"),
                    name,
                    f"{row['best_lr']:.3g}",
                    row["final_relative_loss"],
                    row["steps_to_1e-6"] or f"> {b['steps']}",
                ]
            )
    best_b = min(b["rotated"].items(), key=lambda kv: kv[1]["final_relative_loss"])[0]
    summary = summary_table(a, b, c, d, e, best_b)
    d_rows = [
        [
            k,
            v["final_train_loss"],
            pct(v["test_accuracy"]),
            v["exact_zero_preactivations"],
            pct(v["inactive_fraction_layer1"]),
        ]
        for k, v in d.items()
        if isinstance(v, dict)
    ]
    d_table = table(
        [
            "activation",
            "final train loss",
            "test accuracy",
            "pre-activations exactly 0",
            "inactive units (layer 1)",
        ],
        d_rows,
    )
    e_rows = [
        [
            k,
            v["max_step_loss"],
            "yes" if v["blew_up"] else "no",
            v["final_train_loss"],
            pct(v["test_accuracy"]),
        ]
        for k, v in e["runs"].items()
    ]
    e_table = table(
        ["run", "largest step loss", "blew up", "final train loss", "test accuracy"], e_rows
    )
    reading_a, reading_b, reading_c = read_a(a), read_b(b), read_c(c)
    reading_d, reading_e = read_d(d), read_e(e)
    page = f"""
The document states five misconceptions in prose (no numbers); each is checked here on a problem
built to expose it. The toy functions (a)–(c) follow gdjax optimizers step by step, vmapped over
starts or configurations in one compiled program per part; the networks of (d) and (e) train
with `gdjax.fit` and `gdjax.sweep`.

{summary}

## (a) Local vs global minima — Rastrigin, {a["starts"]} uniform starts in [−5.12, 5.12]²

{reading_a}

## (b) Fixed vs adaptive rates — f(x) = ½xᵀAx, dim {b["dim"]}, eigenvalues 1…10³

Each optimizer gets its best learning rate from a {len(b["lr_grid"])}-point log grid (1e-4…10),
all rates in one vmapped program. "steps to 1e-6" counts steps until f/f0 ≤ 10⁻⁶.

{table(["geometry", "optimizer", "best lr", "f/f0 at the end", "steps to 1e-6"], b_rows)}

{reading_b}

## (c) Saddle points — f = x² − y² + y⁴/4

{reading_c}

## (d) ReLU's kink — digits MLP 64-64-64-10, SGD + momentum

{d_table}

{reading_d}

## (e) Exploding gradients — a ReLU RNN over long sequences, with and without clipping

{e["model"]} ({e["sequence_length"]} steps), SGD with batch 32 at learning rates
{", ".join(f"{lr:g}" for lr in E_RATES)}, each with no clipping and with `clip_by_global_norm` at
1 and 10 (all {len(e["runs"])} runs in one `gdjax.sweep`, one vmapped program). A ReLU recurrence started at the
identity multiplies the gradient by the recurrent weights once per step, so over
{e["sequence_length"]} steps it can grow without bound. "Blew up" means a non-finite loss or a
step loss above {fmt(e["blow_up_threshold"])} (ten times the loss of guessing).

{e_table}

{reading_e}
"""
    numbers = strip(
        {"a_local_minima": a, "b_adaptive": b, "c_saddle": c, "d_relu": d, "e_clipping": e}
    )
    headline = (
        f"GD reaches Rastrigin's global min from {pct(a['gd_fraction_global'])} of starts, SA "
        f"{pct(a['sa_fraction_global'])}; perturbed GD escapes the saddle "
        f"{pct(c['perturbed_fraction_escaped'])} vs GD {pct(c['gd_fraction_escaped'])} "
        "(document: prose claims, no numbers)"
    )
    return StudyResult(
        numbers,
        page,
        {"panels": fig},
        headline,
        "toy functions (Rastrigin, quadratics, a saddle) and scikit-learn digits (1,797 8×8 images, real)",
    )


STUDY = Study("misconceptions", "Misconceptions about gradient descent", SOURCE, run)
