"""Study: second-order methods and global search.

The guide says Newton's method "offers faster convergence but is computationally expensive" and
that gradient descent "may struggle with local minima and saddle points"; the misconceptions
document says simulated annealing helps with local minima and random perturbations with
saddles. Measured here: steps and wall time of GD, momentum, Newton, Hessian-free and L-BFGS
(and Gauss-Newton / Levenberg-Marquardt on least squares) to scikit-learn's / SciPy's optimum,
on an MLP where Newton's Hessian does not fit, a saddle with its Hessian eigenvalues, and
Rastrigin's local minima. ``measure`` returns data; ``report`` renders it with the shared code.

The problem builders are shared with ``experiments/benchmarks/bench_second_order.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from experiments._core import Context, Study, StudyResult
from experiments._report import claims_table, figure, fmt, pct, table
from experiments._toy import minimize_sweep
from experiments.studies import init_variables
from experiments.studies.misconceptions import anneal, rastrigin, sa_key_impl
from gdjax.data import load_sklearn

SOURCE = (
    "gradient-descent-guide.md 'Second-Order Methods' and FAQ; gradient-descent-for-neural-"
    "networks.md misconceptions 1 and 4"
)
TARGET = 1e-8  # relative gap in the objective that counts as "reached the optimum"


# --- problems (float64: call under jax.enable_x64) ---------------------------------------------
class Problem(NamedTuple):
    """An objective, a start, the reference optimum value, and residuals for least squares."""

    name: str
    fun: Callable[[Any], jax.Array]
    start: Any
    optimum: float
    residuals: Callable[[Any], jax.Array] | None = None


def _standardize(x: np.ndarray) -> np.ndarray:
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


def logistic_data() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer, standardised, float64 features and 0/1 targets."""
    x, y = load_sklearn("breast_cancer")
    return _standardize(x.astype(np.float64)), y.astype(np.float64)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """Digits, standardised (constant pixels left at 0), float64 features and int labels."""
    x, y = load_sklearn("digits")
    return _standardize(x.astype(np.float64)), np.asarray(y)


def exponential_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, y, start)``: 60 noisy points of 2 exp(-1.3 t) + 0.5 exp(-0.2 t), and a start."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 4.0, 60)
    y = 2.0 * np.exp(-1.3 * t) + 0.5 * np.exp(-0.2 * t) + 0.01 * rng.normal(size=t.size)
    return t, y, np.array([1.0, 1.0, 1.0, 0.1])


def breast_cancer_logistic() -> Problem:
    """Binary logistic regression, standardised features, L2 = 1/N (scikit-learn's C = 1)."""
    from sklearn.linear_model import LogisticRegression

    x, y = logistic_data()
    n = len(y)
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def fun(p):
        z = xj @ p["w"] + p["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - yj * z) + 0.5 / n * jnp.sum(p["w"] ** 2)

    clf = LogisticRegression(C=1.0, tol=1e-14, max_iter=100_000).fit(x, y)
    best = {"w": jnp.asarray(clf.coef_[0]), "b": jnp.asarray(clf.intercept_[0])}
    start = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}
    return Problem("logistic regression, breast cancer", fun, start, float(fun(best)))


def digits_multinomial() -> Problem:
    """Multinomial logistic regression on digits (650 parameters), L2 = 1/N on the weights."""
    from sklearn.linear_model import LogisticRegression

    x, y = digits_data()
    n, classes = len(y), 10
    xj, onehot = jnp.asarray(x), jax.nn.one_hot(jnp.asarray(y), classes, dtype=jnp.float64)

    def fun(p):
        logits = xj @ p["w"] + p["b"]
        nll = jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(onehot * logits, axis=1))
        return nll + 0.5 / n * jnp.sum(p["w"] ** 2)

    clf = LogisticRegression(C=1.0, tol=1e-14, max_iter=100_000).fit(x, y)
    best = {"w": jnp.asarray(clf.coef_.T), "b": jnp.asarray(clf.intercept_)}
    start = {"w": jnp.zeros((x.shape[1], classes)), "b": jnp.zeros(classes)}
    return Problem("multinomial logistic regression, digits", fun, start, float(fun(best)))


def exponential_fit(seed: int = 0) -> Problem:
    """Nonlinear least squares: y = a exp(-b t) + c exp(-d t) + noise, 60 points."""
    from scipy.optimize import least_squares

    t, y, start = exponential_data(seed)

    def residuals_np(p):
        return p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t) - y

    ref = least_squares(residuals_np, start, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    tj, yj = jnp.asarray(t), jnp.asarray(y)

    def residuals(p):
        return p[0] * jnp.exp(-p[1] * tj) + p[2] * jnp.exp(-p[3] * tj) - yj

    def fun(p):
        return 0.5 * jnp.sum(residuals(p) ** 2)

    return Problem("two-exponential least squares", fun, jnp.asarray(start), ref.cost, residuals)


def first_order_methods(problem: Problem) -> dict[str, Any]:
    """GD at 1/L and heavy-ball momentum 0.9 at 1/L, L the top Hessian eigenvalue at the start
    (measured with gdjax.curvature)."""
    top = gdjax.curvature.top_hessian_eigenvalue(
        problem.fun, problem.start, key=jax.random.key(0), num_iters=30
    )
    lr = float(1.0 / top)
    return {"GD": gdjax.sgd(lr), "momentum": gdjax.sgd(lr, momentum=0.9)}


def second_order_methods(problem: Problem) -> dict[str, Any]:
    methods = {
        "Newton": gdjax.newton(),
        "Hessian-free": gdjax.hessian_free(1e-3),
        "L-BFGS": gdjax.lbfgs(),
    }
    if problem.residuals is not None:
        methods["Gauss-Newton"] = gdjax.gauss_newton(problem.residuals)
        methods["Levenberg-Marquardt"] = gdjax.levenberg_marquardt(problem.residuals)
    return methods


def timed_minimize(problem: Problem, method, max_steps: int, repeats: int = 3) -> dict:
    """One cold call (compilation included) and the best of ``repeats`` warm calls."""
    kwargs = {"method": method, "tol": 1e-9, "max_steps": max_steps}
    t0 = time.perf_counter()
    res = gdjax.minimize(problem.fun, problem.start, **kwargs)
    jax.block_until_ready(res.value)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(gdjax.minimize(problem.fun, problem.start, **kwargs).value)
        warm.append(time.perf_counter() - t0)
    gaps = (np.asarray(res.history["value"]) - problem.optimum) / abs(problem.optimum)
    hit = np.nonzero(gaps <= TARGET)[0]
    return {
        "steps_to_target": int(hit[0]) if hit.size else None,
        "steps_run": int(res.steps),
        "stop_reason": res.reason,
        "final_relative_gap": float(max(gaps[int(res.steps)], 0.0)),
        "cold_seconds": cold,
        "warm_seconds": min(warm),
        "_curve": np.maximum(gaps[: int(res.steps) + 1], 1e-17),
    }


# --- measurements ------------------------------------------------------------------------------
def convex(ctx: Context) -> dict:
    """Every method on the three deterministic problems, float64, to the reference optimum."""
    budget = ctx.pick(100, 20_000)
    out = {}
    with jax.enable_x64(True):
        builders = (
            [breast_cancer_logistic]
            if ctx.quick
            else [
                breast_cancer_logistic,
                digits_multinomial,
                exponential_fit,
            ]
        )
        for build in builders:
            problem = build()
            methods = {**first_order_methods(problem), **second_order_methods(problem)}
            if ctx.quick:
                methods = {k: methods[k] for k in ("GD", "Newton")}
            rows = {}
            for name, method in ctx.progress(methods.items(), desc=problem.name):
                steps = budget if name in ("GD", "momentum") else min(budget, 500)
                rows[name] = timed_minimize(problem, method, steps, repeats=ctx.pick(1, 3))
            out[problem.name] = {"optimum": problem.optimum, "methods": rows}
    return out


def mlp(ctx: Context) -> dict:
    """A 64-128-128-10 tanh MLP on digits, full batch: Newton refuses; the others train."""
    from gdjax.models import MLP

    x, y = load_sklearn("digits")
    x = _standardize(x)
    xtr, ytr, xte, yte = x[:1437], y[:1437], x[1437:], y[1437:]
    model = MLP(features=(128, 128, 10), activation="tanh")
    params = init_variables(ctx, model, xtr[:1])
    n = gdjax.curvature.num_params(params)

    def loss(p):
        return gdjax.losses.softmax_cross_entropy(model.apply(p, xtr), ytr)

    try:
        gdjax.minimize(loss, params, method=gdjax.newton(), max_steps=1)
        refusal = "none (Newton ran)"
    except ValueError as e:
        refusal = str(e)
    budgets = {  # comparable wall time per method
        "GD": (gdjax.sgd(0.5), ctx.pick(5, 2000)),
        "momentum": (gdjax.sgd(0.1, momentum=0.9), 2000),
        "L-BFGS": (gdjax.lbfgs(), 400),
        "Hessian-free": (gdjax.hessian_free(1.0, cg_max_steps=20), 60),
    }
    if ctx.quick:  # the parameter count and Newton's refusal only: no training
        budgets = {}
    rows = {}
    for name, (method, steps) in ctx.progress(budgets.items(), desc="MLP"):
        t0 = time.perf_counter()
        res = gdjax.minimize(loss, params, method=method, tol=1e-6, max_steps=steps)
        jax.block_until_ready(res.value)
        seconds = time.perf_counter() - t0
        acc = float(gdjax.metrics.accuracy(model.apply(res.params, xte), yte))
        rows[name] = {
            "steps": int(res.steps),
            "final_train_loss": float(res.value),
            "test_accuracy": acc,
            "seconds_incl_compile": seconds,
            "_curve": np.asarray(res.history["value"][: int(res.steps) + 1]),
        }
    return {
        "parameters": n,
        "hessian_gigabytes_float32": n * n * 4 / 1e9,
        "cholesky_teraflops": n**3 / 3 / 1e12,
        "newton_refusal": refusal,
        "methods": rows,
    }


def saddle_fn(p: jax.Array) -> jax.Array:
    """``x² − y² + y⁴/4``: a saddle at 0 (Hessian eigenvalues 2, −2), minima −1 at (0, ±√2)."""
    return p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4


def saddle(ctx: Context) -> dict:
    """GD stops on the saddle from its stable manifold; the Hessian says so; PGD escapes."""
    lr, steps = 0.05, 600
    starts = {"on the manifold (1, 0)": [1.0, 0.0], "off it by 1e-6 (1, 1e-6)": [1.0, 1e-6]}
    methods = {
        "GD": gdjax.sgd(lr),
        "Newton": gdjax.newton(),
        "perturbed GD": gdjax.perturbed_gd(lr, 1e-3, 1e-2, key=ctx.seed),
    }
    if ctx.quick:
        starts = dict(list(starts.items())[:1])
        methods.pop("Newton")
    classify = jax.jit(lambda p: gdjax.curvature.saddle_test(saddle_fn, p, key=jax.random.key(0)))
    runs = {}
    for name, method in methods.items():
        for where, start in starts.items():
            res = gdjax.minimize(saddle_fn, jnp.asarray(start), method=method, tol=0.0, max_steps=steps)  # fmt: skip
            values = np.asarray(res.history["value"])
            escaped = np.nonzero(values < -0.5)[0]
            test = classify(res.params)
            runs[f"{name}, {where}"] = {
                "final_value": float(res.value),
                "final_point": np.asarray(res.params).tolist(),
                "steps_to_escape": int(escaped[0]) if escaped.size else None,
                "hessian_min_eigenvalue": float(test.min_eigenvalue),
                "is_saddle": bool(test.is_saddle),
                "_curve": values,
            }
    at_saddle = classify(jnp.zeros(2))
    return {
        "learning_rate": lr,
        "steps": steps,
        "eigenvalues_at_saddle": [float(at_saddle.min_eigenvalue), float(at_saddle.max_eigenvalue)],
        "negative_curvature_direction": np.asarray(at_saddle.direction).round(6).tolist(),
        # y grows by (1 + 2 lr) per step near the saddle: steps to go from 1e-6 to order 1
        "predicted_gd_escape_steps": float(np.log(1e6) / np.log(1 + 2 * lr)),
        "runs": runs,
    }


def global_search(ctx: Context) -> dict:
    """Rastrigin in 2 and 10 dimensions: multi-start GD vs simulated annealing then GD."""
    n = ctx.pick(16, 1000)
    out = {"starts": n}
    for dim in ctx.pick((2,), (2, 10)):
        starts = np.random.default_rng(ctx.seed + dim).uniform(-5.12, 5.12, (n, dim))
        starts = starts.astype(np.float32)
        lr = {"learning_rate": np.full(n, 0.002)}
        gd_steps, sa_steps = ctx.pick(300, 2000), ctx.pick(500, 20_000)
        _, gd = minimize_sweep(
            rastrigin, starts, lambda h: gdjax.sgd(h["learning_rate"]), lr, steps=gd_steps
        )
        t0 = time.perf_counter()
        best = anneal(starts, ctx.seed + dim, sa_steps, 10.0, 0.01, 0.3, impl=sa_key_impl(ctx))
        best = np.asarray(best)
        sa_seconds = time.perf_counter() - t0
        _, sa = minimize_sweep(
            rastrigin, best, lambda h: gdjax.sgd(h["learning_rate"]), lr, steps=gd_steps
        )
        out[f"{dim}-D"] = {
            "gd_fraction_global": float(np.mean(gd[:, -1] < 1e-3)),
            "sa_fraction_global": float(np.mean(sa[:, -1] < 1e-3)),
            "gd_median_final": float(np.median(gd[:, -1])),
            "sa_median_final": float(np.median(sa[:, -1])),
            "sa_steps": sa_steps,
            "sa_seconds_incl_compile": sa_seconds,
        }
    return out


def measure(ctx: Context) -> dict:
    """Everything the page shows, as data."""
    return {
        "convex": convex(ctx),
        "mlp": mlp(ctx),
        "saddle": saddle(ctx),
        "global_search": global_search(ctx),
    }


# --- report ------------------------------------------------------------------------------------
def strip(d: Any) -> Any:
    """Drop private (``_``-prefixed) entries used only for plots."""
    if isinstance(d, dict):
        return {k: strip(v) for k, v in d.items() if not k.startswith("_")}
    return d


def _seconds(v: float) -> str:
    return f"{1e3 * v:.1f} ms" if v < 1 else f"{v:.2f} s"


GLOBAL_HEADER = [
    "dimension",
    "GD reaches global",
    "SA + GD reaches global",
    "GD median final f",
    "SA median final f",
]


def report(data: dict, ctx: Context) -> StudyResult:
    convex_rows = []
    for pname, p in data["convex"].items():
        for name, r in p["methods"].items():
            convex_rows.append(
                [
                    pname,
                    name,
                    r["steps_to_target"]
                    if r["steps_to_target"] is not None
                    else f"> {r['steps_run']}",
                    r["final_relative_gap"],
                    _seconds(r["warm_seconds"]),
                    _seconds(r["cold_seconds"]),
                ]
            )
    logistic = next(iter(data["convex"].values()))["methods"]
    m = data["mlp"]
    mlp_rows = [
        [
            k,
            v["steps"],
            v["final_train_loss"],
            pct(v["test_accuracy"]),
            f"{v['seconds_incl_compile']:.1f}",
        ]
        for k, v in m["methods"].items()
    ]
    s = data["saddle"]
    saddle_rows = [
        [
            k,
            v["final_value"],
            str(np.round(v["final_point"], 4).tolist()),
            v["steps_to_escape"] or "never",
            v["hessian_min_eigenvalue"],
            "yes" if v["is_saddle"] else "no",
        ]
        for k, v in s["runs"].items()
    ]
    g = data["global_search"]
    global_rows = [
        [
            dim,
            pct(r["gd_fraction_global"]),
            pct(r["sa_fraction_global"]),
            r["gd_median_final"],
            r["sa_median_final"],
        ]
        for dim, r in g.items()
        if isinstance(r, dict)
    ]
    newton, gd = logistic["Newton"], logistic["GD"]
    gd_time, newton_time = gd["warm_seconds"], newton["warm_seconds"]
    stuck = s["runs"]["GD, on the manifold (1, 0)"]
    pgd = s["runs"]["perturbed GD, on the manifold (1, 0)"]
    off = s["runs"].get("GD, off it by 1e-6 (1, 1e-6)")
    escape = (
        f"; from 1e-6 off the manifold GD escapes after {off['steps_to_escape']} steps "
        f"(predicted ≈ {s['predicted_gd_escape_steps']:.0f})"
        if off
        else ""
    )
    g2 = g["2-D"]
    g10 = (
        f"; 10-D: {pct(g['10-D']['sa_fraction_global'])} vs {pct(g['10-D']['gd_fraction_global'])}"
        if "10-D" in g
        else ""
    )
    claims = [
        (
            "Newton's method offers faster convergence (guide, Second-Order Methods)",
            f"logistic regression: Newton reaches the optimum in {newton['steps_to_target']} steps, "
            f"GD at 1/L in {gd['steps_to_target'] or '> ' + str(gd['steps_run'])}",
            newton["steps_to_target"] is not None
            and (
                gd["steps_to_target"] is None or newton["steps_to_target"] < gd["steps_to_target"]
            ),
        ),
        (
            "... but is computationally expensive",
            f"per step: Newton {_seconds(newton_time / max(newton['steps_run'], 1))}, GD "
            f"{_seconds(gd_time / max(gd['steps_run'], 1))} on 31 parameters; on the "
            f"{m['parameters']:,}-parameter MLP the Hessian alone is {m['hessian_gigabytes_float32']:.1f} GB",
            "holds per step; in total Newton is faster here" if newton_time < gd_time else True,
        ),
        (
            "GD may struggle with saddle points; perturbations help (misconception 4)",
            f"GD from (1, 0) ends at f = {fmt(stuck['final_value'])} with Hessian eigenvalue "
            f"{fmt(stuck['hessian_min_eigenvalue'])} (a saddle); perturbed GD reaches "
            f"{fmt(pgd['final_value'])}{escape}",
            stuck["is_saddle"] and pgd["final_value"] < -0.99,
        ),
        (
            "simulated annealing can avoid local minima (misconception 1)",
            f"Rastrigin 2-D: {pct(g2['sa_fraction_global'])} of SA runs reach the global minimum vs "
            f"{pct(g2['gd_fraction_global'])} of GD starts{g10}",
            g2["sa_fraction_global"] > g2["gd_fraction_global"],
        ),
    ]
    fig, axes = figure(ncols=3, width=4.6)
    for name, r in logistic.items():
        axes[0].semilogy(r["_curve"], label=name)
    axes[0].set(
        title="logistic regression (breast cancer)",
        xlabel="step",
        ylabel="relative gap",
        xscale="symlog",
    )
    axes[0].legend(fontsize=7)
    for name, r in m["methods"].items():
        axes[1].semilogy(r["_curve"], label=name)
    axes[1].set(
        title=f"MLP, {m['parameters']:,} parameters",
        xlabel="step",
        ylabel="train loss",
        xscale="symlog",
    )
    if m["methods"]:  # --quick trains no MLP
        axes[1].legend(fontsize=7)
    for k in (
        "GD, on the manifold (1, 0)",
        "GD, off it by 1e-6 (1, 1e-6)",
        "perturbed GD, on the manifold (1, 0)",
        "Newton, on the manifold (1, 0)",
    ):
        if k in s["runs"]:
            axes[2].plot(s["runs"][k]["_curve"], label=k)
    axes[2].set(title="saddle x²−y²+y⁴/4", xlabel="step", ylabel="f")
    axes[2].legend(fontsize=6)
    page = f"""
The documents state these claims in words; here each is measured. Every run is one
`gdjax.minimize` call (one compiled `while_loop`). Convex problems run in float64 and count the
steps until the objective is within {TARGET:g} (relative) of the reference optimum
(scikit-learn's `LogisticRegression`, SciPy's `least_squares`); GD and momentum use the
learning rate 1/L with L the largest Hessian eigenvalue at the start, measured by
`gdjax.curvature.top_hessian_eigenvalue`. Wall times: warm (compiled), and cold (first call,
compilation included). Side by side with SciPy, optax and jaxopt:
[benchmarks](../performance.md#second-order-methods).

{claims_table(claims)}

## Steps and time to the optimum

{table(["problem", "method", "steps to 1e-8", "final relative gap", "warm", "cold"], convex_rows)}

## A small MLP: where Newton does not fit

A 64-128-128-10 tanh MLP on digits (1,437 training images, full batch) has {m["parameters"]:,}
parameters: its Hessian would hold {m["parameters"] ** 2:,} numbers
({m["hessian_gigabytes_float32"]:.1f} GB in float32) and its Cholesky factorization
{m["cholesky_teraflops"]:.1f} TFLOP. `gdjax.newton` refuses before compiling:
"{m["newton_refusal"]}". Hessian-free Newton needs only Hessian-vector products.

{table(["method", "steps", "final train loss", "test accuracy", "seconds (incl. compile)"], mlp_rows)}

## Saddle points, with the Hessian's smallest eigenvalue

At the origin `gdjax.curvature.saddle_test` finds eigenvalues {fmt(s["eigenvalues_at_saddle"][0])}
and {fmt(s["eigenvalues_at_saddle"][1])}, negative-curvature direction
{s["negative_curvature_direction"]}. Learning rate {s["learning_rate"]}, {s["steps"]} steps.
Newton (with its saddle-free fallback) cannot leave the line y = 0 either: the gradient has no
y component there.

{table(["run", "final f", "final point", "steps to f < −0.5", "λ_min(H) at the end", "saddle?"], saddle_rows)}

## Local minima: Rastrigin, {g["starts"]} uniform starts in [−5.12, 5.12]^d

Multi-start GD (lr 0.002) against simulated annealing (`gdjax.simulated_annealing`,
temperature 10 → 0.01, proposal 0.3, {g["2-D"]["sa_steps"]:,} steps) followed by the same GD;
"global" means f < 10⁻³ at the end.

{table(GLOBAL_HEADER, global_rows)}
"""
    headline = (
        f"Newton {newton['steps_to_target']} steps vs GD "
        f"{gd['steps_to_target'] or '> ' + str(gd['steps_run'])} to the logistic optimum; GD "
        f"stuck at a saddle (λ_min {fmt(stuck['hessian_min_eigenvalue'])}), PGD escapes; SA "
        f"{pct(g2['sa_fraction_global'])} vs GD {pct(g2['gd_fraction_global'])} on Rastrigin 2-D "
        "(documents: claims in words)"
    )
    data_line = (
        "scikit-learn breast cancer (569×30) and digits (1,797×64), real; a synthetic "
        "two-exponential curve (60 points); toy functions (a saddle, Rastrigin)"
    )
    return StudyResult(strip(data), page, {"panels": fig}, headline, data_line)


def run(ctx: Context) -> StudyResult:
    return report(measure(ctx), ctx)


STUDY = Study("second_order", "Second-order methods and global search", SOURCE, run, default=False)
