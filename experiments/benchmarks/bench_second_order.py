"""Second-order methods side by side: gdjax.minimize against SciPy, optax, jaxopt, optimistix.

Every runner solves the same float64 problem to the reference optimum (scikit-learn's
LogisticRegression, SciPy's least_squares) and is timed cold (first call: compilation
included) and warm (median of further calls). Problems: logistic regression on breast cancer
(standardised, L2 = 1/N), multinomial logistic regression on digits, a two-exponential
least-squares fit; then 64 starting points vmapped against 64 SciPy runs, and Rastrigin in 2
and 10 dimensions (simulated annealing vs multi-start gradient descent). SciPy anchors use
NumPy objective, gradient and Hessian-vector product code written out by hand.

    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; python experiments/benchmarks/bench_second_order.py

Writes docs/benchmarks/second_order.json (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's gdjax and experiments, not an installed copy

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import scipy.optimize  # noqa: E402

import gdjax  # noqa: E402
from experiments._io import machine_info, write_json  # noqa: E402
from experiments._toy import minimize_sweep  # noqa: E402
from experiments.studies import second_order as problems  # noqa: E402
from experiments.studies.misconceptions import anneal, rastrigin  # noqa: E402

TARGET = problems.TARGET
DEFAULT_OUT = ROOT / "docs" / "benchmarks" / "second_order.json"


def timed(call: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """``(result, first-call seconds, median seconds of ``repeats`` further calls)``."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(call())
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(call())
        warm.append(time.perf_counter() - t0)
    return out, cold, float(np.median(warm))


def row(name: str, steps: int, value: float, optimum: float, cold: float, warm: float) -> dict:
    gap = max((float(value) - optimum) / abs(optimum), 0.0)
    return {
        "runner": name,
        "steps": int(steps),
        "final_relative_gap": gap,
        "reached_1e-8": bool(gap <= TARGET),
        "cold_seconds": cold,
        "warm_seconds": warm,
    }


# --- NumPy objectives for the SciPy anchors ----------------------------------------------------
def numpy_logistic(x: np.ndarray, y: np.ndarray):
    """Value+gradient and Hessian-vector product of the breast-cancer objective, by hand."""
    n, lam = len(y), 1.0 / len(y)

    def fg(w):
        z = x @ w[:-1] + w[-1]
        s = 1.0 / (1.0 + np.exp(-z))
        loss = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * w[:-1] @ w[:-1]
        r = (s - y) / n
        return loss, np.concatenate([x.T @ r + lam * w[:-1], [r.sum()]])

    def hessp(w, v):
        z = x @ w[:-1] + w[-1]
        s = 1.0 / (1.0 + np.exp(-z))
        d = s * (1.0 - s) * (x @ v[:-1] + v[-1]) / n
        return np.concatenate([x.T @ d + lam * v[:-1], [d.sum()]])

    return fg, hessp


def numpy_multinomial(x: np.ndarray, labels: np.ndarray, classes: int = 10):
    n, f = x.shape
    lam = 1.0 / n
    onehot = np.eye(classes)[labels]

    def split(w):
        return w[: f * classes].reshape(f, classes), w[f * classes :]

    def probs(w):
        wm, b = split(w)
        z = x @ wm + b
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return z, e / e.sum(axis=1, keepdims=True), wm

    def fg(w):
        z, p, wm = probs(w)
        loss = np.mean(np.log(np.exp(z).sum(axis=1)) - (onehot * z).sum(axis=1))
        loss += 0.5 * lam * np.sum(wm**2)
        r = (p - onehot) / n
        return loss, np.concatenate([(x.T @ r + lam * wm).ravel(), r.sum(axis=0)])

    def hessp(w, v):
        _, p, _ = probs(w)
        vm, vb = split(v)
        dz = x @ vm + vb
        dp = p * (dz - (p * dz).sum(axis=1, keepdims=True)) / n
        return np.concatenate([(x.T @ dp + lam * vm).ravel(), dp.sum(axis=0)])

    return fg, hessp


def flat_problem(problem: problems.Problem):
    """The problem's objective on one flat float64 vector (for SciPy and the JAX anchors)."""
    flat0, unravel = jax.flatten_util.ravel_pytree(problem.start)
    return (lambda v: problem.fun(unravel(v))), flat0, unravel


# --- runners -----------------------------------------------------------------------------------
def gdjax_runners(problem: problems.Problem) -> dict[str, Any]:
    methods = {**problems.first_order_methods(problem), **problems.second_order_methods(problem)}
    return {f"gdjax {name}": method for name, method in methods.items()}


def run_gdjax(problem, method, max_steps, repeats) -> tuple[int, float, float, float]:
    def call():
        return gdjax.minimize(
            problem.fun, problem.start, method=method, tol=1e-9, max_steps=max_steps, history=False
        )

    res, cold, warm = timed(call, repeats)
    return int(res.steps), float(res.value), cold, warm


def run_optax_lbfgs(problem, repeats):
    """optax.lbfgs in the loop optax's documentation writes: a while_loop reusing the line
    search's value and gradient (optax.value_and_grad_from_state)."""
    fun, flat0, _ = flat_problem(problem)
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    @jax.jit
    def solve(x0):
        def step(carry):
            x, state = carry
            v, g = value_and_grad(x, state=state)
            u, state = opt.update(g, state, x, value=v, grad=g, value_fn=fun)
            return optax.apply_updates(x, u), state

        def keep_going(carry):
            _, state = carry
            count = optax.tree.get(state, "count")
            grad = optax.tree.get(state, "grad")
            return (count == 0) | ((count < 2000) & (optax.tree.norm(grad) >= 1e-9))

        x, state = jax.lax.while_loop(keep_going, step, (x0, opt.init(x0)))
        return optax.tree.get(state, "count"), fun(x)

    (steps, value), cold, warm = timed(lambda: solve(flat0), repeats)
    return int(steps), float(value), cold, warm


def run_jaxopt(problem, repeats):
    try:
        import jaxopt
    except ImportError:
        return None
    fun, flat0, _ = flat_problem(problem)
    solver = jaxopt.LBFGS(fun=fun, maxiter=2000, tol=1e-9)
    solve = jax.jit(solver.run)
    (x, state), cold, warm = timed(lambda: solve(flat0), repeats)
    return int(state.iter_num), float(fun(x)), cold, warm


def run_optimistix(problem, repeats, least_squares=False):
    try:
        import optimistix as optx
    except ImportError:
        return None
    if least_squares:
        solver = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-12)
        x0, fun = problem.start, problem.fun

        def solve_once(x0):
            residuals = lambda x, _: problem.residuals(x)  # noqa: E731
            return optx.least_squares(residuals, solver, x0, max_steps=2000, throw=False)
    else:
        fun, x0, _ = flat_problem(problem)
        solver = optx.LBFGS(rtol=1e-12, atol=1e-12)

        def solve_once(x0):
            return optx.minimise(lambda x, _: fun(x), solver, x0, max_steps=2000, throw=False)

    @jax.jit
    def solve(x0):  # only arrays leave the jitted function
        sol = solve_once(x0)
        return sol.value, sol.stats["num_steps"]

    (value, steps), cold, warm = timed(lambda: solve(x0), repeats)
    return int(steps), float(fun(value)), cold, warm


def run_scipy(fg, hessp, x0, method, repeats):
    options = {
        "L-BFGS-B": {"gtol": 1e-10, "ftol": 1e-16, "maxiter": 10_000},
        "Newton-CG": {"xtol": 1e-12, "maxiter": 1000},
        "trust-ncg": {"gtol": 1e-10, "maxiter": 1000},
    }[method]
    kw = {"jac": True, "method": method, "options": options}
    if method != "L-BFGS-B":
        kw["hessp"] = hessp
    res, cold, warm = timed(lambda: scipy.optimize.minimize(fg, x0, **kw), repeats)
    return int(res.nit), float(res.fun), cold, warm


def convex_problem(problem, fg, hessp, args) -> list[dict]:
    rows = []
    budget = args.max_steps
    for name, method in gdjax_runners(problem).items():
        steps = budget if name in ("gdjax GD", "gdjax momentum") else min(budget, 500)
        s, v, cold, warm = run_gdjax(problem, method, steps, args.repeats)
        rows.append(row(name, s, v, problem.optimum, cold, warm))
    anchors = {"optax.lbfgs": run_optax_lbfgs(problem, args.repeats)}
    if not args.skip_optional:
        anchors["jaxopt.LBFGS"] = run_jaxopt(problem, args.repeats)
        anchors["optimistix.LBFGS"] = run_optimistix(problem, args.repeats)
    _, flat0, _ = flat_problem(problem)
    for method in ("L-BFGS-B", "Newton-CG", "trust-ncg"):
        anchors[f"scipy {method}"] = run_scipy(fg, hessp, np.asarray(flat0), method, args.repeats)
    for name, out in anchors.items():
        if out is not None:
            rows.append(row(name, out[0], out[1], problem.optimum, out[2], out[3]))
    return rows


def least_squares_problem(problem, args) -> list[dict]:
    rows = []
    methods = {
        "gdjax Gauss-Newton": gdjax.gauss_newton(problem.residuals),
        "gdjax Levenberg-Marquardt": gdjax.levenberg_marquardt(problem.residuals),
        "gdjax L-BFGS": gdjax.lbfgs(),
        "gdjax Newton": gdjax.newton(),
    }
    for name, method in methods.items():
        s, v, cold, warm = run_gdjax(problem, method, 500, args.repeats)
        rows.append(row(name, s, v, problem.optimum, cold, warm))
    t, y, _ = problems.exponential_data()

    def r_np(p):
        return p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t) - y

    def jac_np(p):
        e1, e2 = np.exp(-p[1] * t), np.exp(-p[3] * t)
        return np.stack([e1, -p[0] * t * e1, e2, -p[2] * t * e2], axis=1)

    x0 = np.asarray(problem.start)
    for method in ("trf", "lm"):
        call = lambda m=method: scipy.optimize.least_squares(  # noqa: E731
            r_np, x0, jac=jac_np, method=m, xtol=1e-15, ftol=1e-15, gtol=1e-15
        )
        res, cold, warm = timed(call, args.repeats)
        rows.append(
            row(f"scipy least_squares {method}", res.nfev, res.cost, problem.optimum, cold, warm)
        )
    if not args.skip_optional:
        out = run_optimistix(problem, args.repeats, least_squares=True)
        if out is not None:
            rows.append(row("optimistix.LevenbergMarquardt", *out[:2], problem.optimum, *out[2:]))
    return rows


def vmapped_starts(problem, fg, args) -> dict:
    """``args.starts`` random starting points: one vmapped gdjax program vs SciPy in a loop."""
    flat0, unravel = jax.flatten_util.ravel_pytree(problem.start)
    starts = np.random.default_rng(0).normal(size=(args.starts, flat0.size))
    method = gdjax.lbfgs()

    @jax.jit
    def solve_all(x0s):
        def one(x0):
            return gdjax.minimize(
                problem.fun, unravel(x0), method=method, tol=1e-9, max_steps=500, history=False
            )

        res = jax.vmap(one)(x0s)
        return res.value, res.steps

    (values, steps), cold, warm = timed(lambda: solve_all(jnp.asarray(starts)), args.repeats)

    def scipy_all():
        opts = {"gtol": 1e-10, "ftol": 1e-16, "maxiter": 10_000}
        return [
            scipy.optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", options=opts)
            for x0 in starts
        ]

    results, scipy_cold, scipy_warm = timed(scipy_all, max(1, args.repeats // 2))
    gaps = (np.asarray(values) - problem.optimum) / problem.optimum
    scipy_gaps = (np.array([r.fun for r in results]) - problem.optimum) / problem.optimum
    return {
        "problem": problem.name,
        "starts": args.starts,
        "gdjax_lbfgs_vmapped_warm_seconds": warm,
        "gdjax_lbfgs_vmapped_cold_seconds": cold,
        "scipy_lbfgsb_loop_warm_seconds": scipy_warm,
        "scipy_lbfgsb_loop_first_seconds": scipy_cold,
        "throughput_ratio_warm": scipy_warm / warm,
        "throughput_ratio_cold": scipy_cold / cold,
        "gdjax_all_reached_1e-8": bool(np.all(gaps <= TARGET)),
        "scipy_all_reached_1e-8": bool(np.all(scipy_gaps <= TARGET)),
        "gdjax_max_steps": int(np.max(steps)),
    }


def global_search(args) -> dict:
    """Rastrigin: fraction of starts reaching the global minimum, SA (+ GD polish) vs GD."""
    out = {"starts": args.rastrigin_starts, "sa_steps": args.sa_steps, "gd_steps": 2000}
    n = args.rastrigin_starts
    for dim in (2, 10):
        starts = np.random.default_rng(dim).uniform(-5.12, 5.12, (n, dim)).astype(np.float32)
        lr = {"learning_rate": np.full(n, 0.002)}
        make = lambda h: gdjax.sgd(h["learning_rate"])  # noqa: E731
        t0 = time.perf_counter()
        _, gd = minimize_sweep(rastrigin, starts, make, lr, steps=out["gd_steps"])
        gd_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        best = np.asarray(anneal(starts, dim, args.sa_steps, 10.0, 0.01, 0.3))
        sa_seconds = time.perf_counter() - t0
        _, polished = minimize_sweep(rastrigin, best, make, lr, steps=out["gd_steps"])
        out[f"{dim}-D"] = {
            "gd_fraction_global": float(np.mean(gd[:, -1] < 1e-3)),
            "sa_then_gd_fraction_global": float(np.mean(polished[:, -1] < 1e-3)),
            "gd_seconds_incl_compile": gd_seconds,
            "sa_seconds_incl_compile": sa_seconds,
        }
    return out


def versions() -> dict[str, str]:
    out = {}
    for name in (
        "jax",
        "jaxlib",
        "optax",
        "numpy",
        "scipy",
        "scikit-learn",
        "jaxopt",
        "optimistix",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["gdjax"] = gdjax.__version__
    return out


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'runner':34} {'steps':>6} {'gap':>9} {'reached':>8} {'cold s':>8} {'warm ms':>9}")
    for r in rows:
        print(
            f"{r['runner']:34} {r['steps']:6d} {r['final_relative_gap']:9.1e} "
            f"{'yes' if r['reached_1e-8'] else 'NO':>8} {r['cold_seconds']:8.2f} "
            f"{1e3 * r['warm_seconds']:9.2f}"
        )


def targets(logistic: list[dict], starts: dict) -> dict:
    by = {r["runner"]: r for r in logistic}
    newton, ours, scipy_lbfgsb = by["gdjax Newton"], by["gdjax L-BFGS"], by["scipy L-BFGS-B"]
    return {
        "newton_steps_at_most_15": {
            "measured": newton["steps"],
            "met": bool(newton["steps"] <= 15 and newton["reached_1e-8"]),
        },
        "lbfgs_warm_no_slower_than_scipy_lbfgsb": {
            "measured": ours["warm_seconds"] / scipy_lbfgsb["warm_seconds"],
            "met": bool(ours["warm_seconds"] <= scipy_lbfgsb["warm_seconds"]),
        },
        "vmapped_starts_at_least_10x": {
            "measured": starts["throughput_ratio_warm"],
            "met": bool(starts["throughput_ratio_warm"] >= 10),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="warm calls timed per runner")
    ap.add_argument("--max-steps", type=int, default=20_000, help="budget of GD and momentum")
    ap.add_argument("--starts", type=int, default=64, help="vmapped starting points")
    ap.add_argument("--rastrigin-starts", type=int, default=1000)
    ap.add_argument("--sa-steps", type=int, default=20_000)
    ap.add_argument("--skip-optional", action="store_true", help="no jaxopt / optimistix")
    ap.add_argument("--only-logistic", action="store_true", help="skip digits (smoke runs)")
    ap.add_argument("--note", default="", help="a remark stored in the JSON (machine load...)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    logistic = problems.breast_cancer_logistic()
    x, y = [np.asarray(a, np.float64) for a in problems.logistic_data()]
    fg, hessp = numpy_logistic(x, y)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "versions": versions(),
        "command": " ".join(sys.argv[1:]),
        "note": args.note,
        "target_relative_gap": TARGET,
    }
    results["logistic_breast_cancer"] = {
        "optimum": logistic.optimum,
        "rows": convex_problem(logistic, fg, hessp, args),
    }
    print_rows(
        f"{logistic.name} (optimum {logistic.optimum:.12f})",
        results["logistic_breast_cancer"]["rows"],
    )
    if not args.only_logistic:
        digits = problems.digits_multinomial()
        xd, yd = problems.digits_data()
        fgd, hesspd = numpy_multinomial(xd, yd)
        results["multinomial_digits"] = {
            "optimum": digits.optimum,
            "rows": convex_problem(digits, fgd, hesspd, args),
        }
        print_rows(
            f"{digits.name} (optimum {digits.optimum:.12f})", results["multinomial_digits"]["rows"]
        )
    lsq = problems.exponential_fit()
    results["least_squares"] = {"optimum": lsq.optimum, "rows": least_squares_problem(lsq, args)}
    print_rows(f"{lsq.name} (optimum {lsq.optimum:.12f})", results["least_squares"]["rows"])
    results["vmapped_starts"] = vmapped_starts(logistic, fg, args)
    v = results["vmapped_starts"]
    print(
        f"\n{v['starts']} starts, L-BFGS: gdjax vmapped {1e3 * v['gdjax_lbfgs_vmapped_warm_seconds']:.1f} ms "
        f"vs SciPy L-BFGS-B loop {1e3 * v['scipy_lbfgsb_loop_warm_seconds']:.1f} ms: throughput "
        f"ratio {v['throughput_ratio_warm']:.1f}x warm, {v['throughput_ratio_cold']:.1f}x cold"
    )
    results["rastrigin"] = global_search(args)
    for dim in ("2-D", "10-D"):
        r = results["rastrigin"][dim]
        print(
            f"Rastrigin {dim}: {results['rastrigin']['starts']} starts reach the global minimum: GD "
            f"{100 * r['gd_fraction_global']:.1f}%, SA + GD {100 * r['sa_then_gd_fraction_global']:.1f}%"
        )
    results["targets"] = targets(results["logistic_breast_cancer"]["rows"], v)
    for name, t in results["targets"].items():
        print(f"target {name}: measured {t['measured']:.3g} -> {'met' if t['met'] else 'NOT met'}")
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
