"""Schedule-free SGD/AdamW, Prodigy, DoG, SAM, Muon, ADOPT and AdEMAMix.

Two oracles each: ``optax.contrib`` (same arguments, 100 steps of random gradients over a nested
tree, vmapped over a hyperparameter, all cases in one compiled program), and a NumPy transcription
of the paper's update rule run on the same gradients (float64).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from tests._opt_more import STEPS, Case, assert_close, members_differ, problem, run_cases
from tests.test_opt_signatures import _differences

C = optax.contrib


def ours_sched(v):
    return gdjax.schedules.cosine_decay_schedule(v, STEPS, 0.1)


def theirs_sched(v):
    return optax.cosine_decay_schedule(v, STEPS, 0.1)


def oracle_lr(v):
    """The schedule as plain floats (optax's, independent of gdjax)."""
    sched = optax.cosine_decay_schedule(v, STEPS, 0.1)
    return lambda k: float(sched(k))


DIMS = {  # the rank-3 leaf as a batch of 3 x 2 matrices; the matrix left to AdamW
    "dense": {"w": None},
    "layers": [gdjax.MuonDimensionNumbers(reduction_axis=1, output_axis=2)],
}
OPTAX_DIMS = {
    "dense": {"w": None},
    "layers": [C.MuonDimensionNumbers(reduction_axis=1, output_axis=2)],
}
SAM_ADV = 0.05

CASES = {
    "schedule_free_sgd": Case(
        lambda v: gdjax.schedule_free_sgd(v, b1=0.8, weight_decay=1e-3),
        lambda v: C.schedule_free_sgd(v, b1=0.8, weight_decay=1e-3),
        values=(0.05, 0.2),
    ),
    "schedule_free_sgd warmup": Case(
        lambda v: gdjax.schedule_free_sgd(v, warmup_steps=10, weight_decay=1e-3), None, (0.05, 0.2)
    ),
    "schedule_free_adamw": Case(
        lambda v: gdjax.schedule_free_adamw(v, weight_decay=1e-2),
        lambda v: C.schedule_free_adamw(v, weight_decay=1e-2),
    ),
    "schedule_free_adamw warmup": Case(
        lambda v: gdjax.schedule_free_adamw(v, warmup_steps=10, weight_decay=1e-2), None
    ),
    "prodigy": Case(
        lambda v: gdjax.prodigy(ours_sched(v), estim_lr0=1e-3, weight_decay=1e-2),
        lambda v: C.prodigy(theirs_sched(v), estim_lr0=1e-3, weight_decay=1e-2),
        values=(1.0, 0.5),
    ),
    "dog": Case(
        lambda v: gdjax.dog(init_step=("heuristic", v)),
        lambda v: C.dog(init_step=("heuristic", v)),
        values=(1e-4, 1e-2),
    ),
    "adopt": Case(lambda v: gdjax.adopt(ours_sched(v)), lambda v: C.adopt(theirs_sched(v))),
    "ademamix": Case(
        lambda v: gdjax.ademamix(ours_sched(v), b3=0.99, weight_decay=1e-2),
        lambda v: C.ademamix(theirs_sched(v), b3=0.99, weight_decay=1e-2),
    ),
    "muon plain": Case(
        lambda v: gdjax.muon(v, nesterov=False, weight_decay=1e-2),
        lambda v: C.muon(v, nesterov=False, weight_decay=1e-2),
        rtol=1e-4,
        atol=1e-5,
    ),
    "muon": Case(
        lambda v: gdjax.muon(
            ours_sched(v),
            preconditioning="schatten",
            adaptive=True,
            consistent_rms=0.2,
            muon_weight_dimension_numbers=DIMS,
        ),
        lambda v: C.muon(
            theirs_sched(v),
            preconditioning="schatten",
            adaptive=True,
            consistent_rms=0.2,
            muon_weight_dimension_numbers=OPTAX_DIMS,
        ),
    ),
    "sam": Case(
        lambda v: gdjax.sam(gdjax.sgd(v), gdjax.chain(gdjax.normalize(), gdjax.sgd(SAM_ADV))),
        lambda v: C.sam(optax.sgd(v), optax.chain(C.normalize(), optax.sgd(SAM_ADV))),
    ),
}

#: The named optimizers checked here (for test_optimizers_parity's coverage check).
CHECKED = {"schedule_free_sgd", "schedule_free_adamw", "prodigy", "dog", "adopt", "ademamix"}
CHECKED |= {"muon"}


@pytest.fixture(scope="module")
def results():
    return run_cases(CASES)


@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n].theirs is not None))
def test_matches_optax_contrib_for_each_hyperparameter_value(results, name):
    ours, _, theirs = results[name]
    assert_close(ours, theirs, CASES[name].rtol, CASES[name].atol, what=name)
    assert members_differ(ours), "the vmapped hyperparameter made no difference"


# --- the papers' update rules, in NumPy, on the same gradient stream ----------------------------


def _inputs(name):
    params, grads, _ = problem(CASES[name].params)
    x0 = [np.asarray(p, np.float64) for p in jax.tree.leaves(params)]
    stream = [np.asarray(g, np.float64) for g in jax.tree.leaves(grads)]
    return x0, [[g[t] for g in stream] for t in range(STEPS)]


def _member0(results, name):
    return [np.asarray(x[0], np.float64) for x in jax.tree.leaves(results[name][0])]


def _norm(xs):
    return np.sqrt(sum(np.sum(x * x) for x in xs))


def schedule_free_oracle(x0, grads, lr, b1, wd, adam=None, warmup=None):
    """Defazio et al. 2024, Algorithm 1 (SGD form; with ``adam=(b2, eps)`` the AdamW form with
    Adam's bias correction on v, not folded into gamma: see gdjax.schedule_free_adamw)."""
    x, z, y = [list(map(np.copy, x0)) for _ in range(3)]
    v = [np.zeros_like(a) for a in x0]
    weights = 0.0
    for t, g in enumerate(grads, 1):
        gamma = lr * min(1.0, t / warmup) if warmup else lr
        if adam:
            b2, eps = adam
            v = [b2 * vi + (1 - b2) * gi**2 for vi, gi in zip(v, g, strict=True)]
            g = [gi / (np.sqrt(vi / (1 - b2**t)) + eps) for vi, gi in zip(v, g, strict=True)]
        z = [zi - gamma * (gi + wd * yi) for zi, gi, yi in zip(z, g, y, strict=True)]
        weights += gamma**2
        c = gamma**2 / weights
        x = [(1 - c) * xi + c * zi for xi, zi in zip(x, z, strict=True)]
        y = [(1 - b1) * zi + b1 * xi for zi, xi in zip(z, x, strict=True)]
    return y


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("schedule_free_sgd", {"lr": 0.05, "b1": 0.8, "wd": 1e-3}),
        ("schedule_free_sgd warmup", {"lr": 0.05, "b1": 0.9, "wd": 1e-3, "warmup": 10}),
        ("schedule_free_adamw", {"lr": 1e-2, "b1": 0.9, "wd": 1e-2, "adam": (0.999, 1e-8)}),
        (
            "schedule_free_adamw warmup",
            {"lr": 1e-2, "b1": 0.9, "wd": 1e-2, "adam": (0.999, 1e-8), "warmup": 10},
        ),
    ],
)
def test_schedule_free_follows_the_paper(results, name, kwargs):
    x0, grads = _inputs(name)
    want = schedule_free_oracle(x0, grads, **kwargs)
    for got, w in zip(_member0(results, name), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=1e-6)


def test_schedule_free_eval_params_recovers_the_average_x():
    x0, grads = _inputs("schedule_free_sgd")
    params, _, _ = problem()
    # Rerun member 0 and read x from the state: x = (y - (1 - b1) z) / b1.
    opt = gdjax.schedule_free_sgd(0.05, b1=0.8, weight_decay=1e-3)

    @jax.jit
    def run(params, grads):
        def step(carry, g):
            p, s = carry
            u, s = opt.update(g, s, p)
            return (gdjax.apply_updates(p, u), s), None

        (p, s), _ = jax.lax.scan(step, (params, opt.init(params)), grads)
        return gdjax.schedule_free_eval_params(s, p)

    x = run(params, problem()[1])
    # Oracle x: the same recursion, returning x instead of y.
    xs, zs = [list(map(np.copy, x0)) for _ in range(2)]
    ys, total = list(map(np.copy, x0)), 0.0
    for g in grads:
        zs = [z - 0.05 * (gi + 1e-3 * y) for z, gi, y in zip(zs, g, ys, strict=True)]
        total += 0.05**2
        c = 0.05**2 / total
        xs = [(1 - c) * a + c * z for a, z in zip(xs, zs, strict=True)]
        ys = [0.2 * z + 0.8 * a for z, a in zip(zs, xs, strict=True)]
    for got, want in zip(jax.tree.leaves(x), xs, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    with pytest.raises(TypeError, match="ScheduleFreeState"):
        gdjax.schedule_free_eval_params(optax.EmptyState(), params)


def test_schedule_free_warmup_differs_from_optax_contrib_only_by_the_documented_shift():
    # optax.contrib steps z with gamma_{t-1}: its first warm-up step leaves the parameters put;
    # gdjax's first step uses gamma_1 = lr / warmup_steps, as the paper does.
    params, grads, _ = problem()
    g0 = jax.tree.map(lambda g: g[0], grads)

    def first_update(opt):
        return opt.update(g0, opt.init(params), params)[0]

    ours, theirs = jax.jit(
        lambda: [
            first_update(make(0.05, warmup_steps=10, weight_decay=1e-3))
            for make in (gdjax.schedule_free_sgd, C.schedule_free_sgd)
        ]
    )()
    assert all(float(jnp.abs(x).max()) < 1e-6 for x in jax.tree.leaves(theirs))  # rounding only
    # y_2 - y_1 = (1 - b1) (z_2 - z_1) + b1 (x_2 - x_1) = -gamma_1 (g + wd y) (c = 1 at t = 1).
    want = jax.tree.map(lambda g, p: -0.005 * (g + 1e-3 * p), g0, params)
    assert_close(ours, want)


def prodigy_oracle(x0, grads, lr, b1, b2, eps, d0, wd):
    """Mishchenko & Defazio 2023, Algorithm (Prodigy, Adam form), gamma_k with Adam's bias
    corrections folded in (as in the authors' code)."""
    b3 = np.sqrt(b2)
    x = list(map(np.copy, x0))
    m = [np.zeros_like(a) for a in x0]
    v = [np.zeros_like(a) for a in x0]
    s = [np.zeros_like(a) for a in x0]
    d, r = d0, 0.0
    for k, g in enumerate(grads):
        gamma = lr(k) * np.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
        m = [b1 * mi + (1 - b1) * d * gi for mi, gi in zip(m, g, strict=True)]
        v = [b2 * vi + (1 - b2) * d**2 * gi**2 for vi, gi in zip(v, g, strict=True)]
        inner = sum(np.sum(gi * (a - xi)) for gi, a, xi in zip(g, x0, x, strict=True))
        r = b3 * r + (1 - b3) * gamma * d**2 * inner
        s = [b3 * si + (1 - b3) * gamma * d**2 * gi for si, gi in zip(s, g, strict=True)]
        d_new = max(d, r / sum(np.sum(np.abs(si)) for si in s))
        x = [  # the authors' code scales eps by the new estimate
            xi - gamma * d * (mi / (np.sqrt(vi) + d_new * eps) + wd * xi)
            for xi, mi, vi in zip(x, m, v, strict=True)
        ]
        d = d_new
    return x


def dog_oracle(x0, grads, alpha, eps):
    """Ivgi et al. 2023, DoG: eta_t = max_k<=t ||x_k - x_0|| / sqrt(sum_k<=t ||g_k||^2)."""
    x = list(map(np.copy, x0))
    r_bar, total = alpha * (1 + _norm(x0)), 0.0
    for g in grads:
        r_bar = max(r_bar, _norm([a - b for a, b in zip(x, x0, strict=True)]))
        total += _norm(g) ** 2
        eta = r_bar / np.sqrt(total + eps)
        x = [xi - eta * gi for xi, gi in zip(x, g, strict=True)]
    return x


def adopt_oracle(x0, grads, lr, b1, b2, eps):
    """Taniguchi et al. 2024, Algorithm 2 (ADOPT with clipping at t^(1/4)); v_0 = g_0^2."""
    x = list(map(np.copy, x0))
    v = [gi**2 for gi in grads[0]]
    m = [np.zeros_like(a) for a in x0]
    for t, g in enumerate(grads[1:], 1):
        c = t**0.25
        m = [
            b1 * mi + (1 - b1) * np.clip(gi / np.maximum(np.sqrt(vi), eps), -c, c)
            for mi, gi, vi in zip(m, g, v, strict=True)
        ]
        x = [xi - lr(t) * mi for xi, mi in zip(x, m, strict=True)]
        v = [b2 * vi + (1 - b2) * gi**2 for vi, gi in zip(v, g, strict=True)]
    return x


def ademamix_oracle(x0, grads, lr, b1, b2, b3, alpha, eps, wd):
    """Pagliardini et al. 2024, Algorithm 1 (AdEMAMix, constant alpha and beta_3)."""
    x = list(map(np.copy, x0))
    m1, m2, v = ([np.zeros_like(a) for a in x0] for _ in range(3))
    for t, g in enumerate(grads, 1):
        m1 = [b1 * a + (1 - b1) * gi for a, gi in zip(m1, g, strict=True)]
        m2 = [b3 * a + (1 - b3) * gi for a, gi in zip(m2, g, strict=True)]
        v = [b2 * a + (1 - b2) * gi**2 for a, gi in zip(v, g, strict=True)]
        x = [
            xi
            - lr(t - 1)
            * ((a / (1 - b1**t) + alpha * b) / (np.sqrt(c / (1 - b2**t)) + eps) + wd * xi)
            for xi, a, b, c in zip(x, m1, m2, v, strict=True)
        ]
    return x


def _newton_schulz5(g, eps=1e-8):
    """Jordan et al. 2024's quintic iteration (modded-nanogpt's zeropower_via_newtonschulz5)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (np.linalg.norm(g) + eps)
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    for _ in range(5):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if tall else x


def muon_oracle(x0, grads, lr, beta, wd, eps=1e-8):
    """Muon without Nesterov: matrices step by NS5(EMA of g) * sqrt(max(1, n_out/n_in)) plus
    decoupled decay; other leaves by AdamW (b1=0.9, b2=0.999), as in optax.contrib.muon."""
    x = list(map(np.copy, x0))
    m = [np.zeros_like(a) for a in x0]
    v = [np.zeros_like(a) for a in x0]
    for t, g in enumerate(grads, 1):
        new = []
        for i, (xi, gi) in enumerate(zip(x, g, strict=True)):
            if xi.ndim == 2:
                m[i] = beta * m[i] + (1 - beta) * gi
                scale = np.sqrt(max(1.0, xi.shape[1] / xi.shape[0]))
                new.append(xi - lr * (scale * _newton_schulz5(m[i]) + wd * xi))
            else:
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi**2
                step = (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + eps)
                new.append(xi - lr * step)
        x = new
    return x


ORACLES = {
    "prodigy": (
        prodigy_oracle,
        {"lr": oracle_lr(1.0), "b1": 0.9, "b2": 0.999, "eps": 1e-8, "d0": 1e-3, "wd": 1e-2},
    ),
    "dog": (dog_oracle, {"alpha": 1e-4, "eps": 1e-8}),
    "adopt": (adopt_oracle, {"lr": oracle_lr(1e-2), "b1": 0.9, "b2": 0.9999, "eps": 1e-6}),
    "ademamix": (
        ademamix_oracle,
        {
            "lr": oracle_lr(1e-2),
            "b1": 0.9,
            "b2": 0.999,
            "b3": 0.99,
            "alpha": 5.0,
            "eps": 1e-8,
            "wd": 1e-2,
        },
    ),
    "muon plain": (muon_oracle, {"lr": 1e-2, "beta": 0.95, "wd": 1e-2}),
}


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_follows_the_paper(results, name):
    oracle, kwargs = ORACLES[name]
    x0, grads = _inputs(name)
    want = oracle(x0, grads, **kwargs)
    for got, w in zip(_member0(results, name), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5)


# --- SAM: the paper's two-gradient step on a deterministic loss ---------------------------------


def _loss(w):
    return jnp.sum(0.5 * jnp.array([1.0, 3.0]) * w**2 + 0.25 * w**4)


def test_sam_follows_the_paper_in_both_modes_and_matches_optax_contrib():
    eta, rho, steps = 0.1, 0.05, 12
    w0 = jnp.array([1.5, -0.7])

    def grad_np(w):
        return np.array([1.0, 3.0]) * w + w**3

    w = np.asarray(w0, np.float64)
    for _ in range(steps):  # Foret et al. 2021: w <- w - eta grad(w + rho g / ||g||)
        g = grad_np(w)
        w = w - eta * grad_np(w + rho * g / np.linalg.norm(g))

    grad = jax.grad(_loss)

    def opaque(make):
        opt = make(True)

        def step(carry, _):
            p, s = carry
            u, s = opt.update(grad(p), s, p, grad_fn=lambda q, i: grad(q))
            return (gdjax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (w0, opt.init(w0)), length=steps)[0][0]

    def transparent(make):
        opt = make(False)

        def step(carry, _):
            p, s = carry
            u, s = opt.update(grad(p), s, p)
            return (gdjax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (w0, opt.init(w0)), length=2 * steps)[0][0]

    def ours(opaque_mode):
        adv = gdjax.chain(gdjax.normalize(), gdjax.sgd(rho))
        return gdjax.sam(gdjax.sgd(eta), adv, opaque_mode=opaque_mode)

    def theirs(opaque_mode):
        adv = optax.chain(C.normalize(), optax.sgd(rho))
        return C.sam(optax.sgd(eta), adv, opaque_mode=opaque_mode)

    runs = jax.jit(lambda: [f(m) for f in (opaque, transparent) for m in (ours, theirs)])()
    for got in runs:
        np.testing.assert_allclose(got, w, rtol=1e-5)
    with pytest.raises(ValueError, match="grad_fn"):
        ours(True).update(w0, ours(True).init(w0), w0)


# --- names, arguments and states as optax.contrib's ---------------------------------------------

CONTRIB = [
    "schedule_free",
    "schedule_free_sgd",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "prodigy",
    "dog",
    "sam",
    "normalize",
    "muon",
    "scale_by_muon",
    "adopt",
    "scale_by_adopt",
    "ademamix",
    "scale_by_ademamix",
]
#: optax's default is a lambda; gdjax's is a named function computing the same t ** 0.25.
LAMBDA_DEFAULTS = {"adopt", "scale_by_adopt"}


@pytest.mark.parametrize("name", CONTRIB)
def test_signature_matches_optax_contrib(name):
    found = _differences(getattr(gdjax, name), getattr(C, name))
    if name in LAMBDA_DEFAULTS:
        assert found == ["clip_value_fn: default " + _default_pair(name)]
    else:
        assert found == []


def _default_pair(name):
    ours = inspect.signature(getattr(gdjax, name)).parameters["clip_value_fn"].default
    theirs = inspect.signature(getattr(C, name)).parameters["clip_value_fn"].default
    assert float(ours(jnp.asarray(16))) == float(theirs(jnp.asarray(16))) == 2.0
    return f"{ours!r} != {theirs!r}"


@pytest.mark.parametrize(
    "name", ["ScheduleFreeState", "ProdigyState", "DoGState", "SAMState", "MuonState"]
)
def test_state_starts_with_optax_contrib_fields(name):
    ours, theirs = getattr(gdjax, name), getattr(C, name)
    assert ours._fields[: len(theirs._fields)] == theirs._fields


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: gdjax.prodigy(betas=(0.9, 1.0)), "betas"),
        (lambda: gdjax.dog(init_step=("nope", 1.0)), "init_step"),
        (lambda: gdjax.schedule_free_sgd(0.1, b1=0.0), "b1"),
        (lambda: gdjax.muon(0.1, ns_coeffs="fast"), "ns_coeffs"),
        (lambda: gdjax.muon(0.1, preconditioning="qr"), "preconditioning"),
        (lambda: gdjax.sam(gdjax.sgd(0.1), gdjax.sgd(0.1), sync_period=0), "sync_period"),
        (lambda: gdjax.adopt(0.1, clip_value_fn=2.0), "clip_value_fn"),
        (lambda: gdjax.ademamix(0.1, alpha=-1.0), "alpha"),
    ],
)
def test_bad_arguments_are_named(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_muon_rejects_a_non_matrix_without_dimension_numbers():
    with pytest.raises(ValueError, match="MuonDimensionNumbers"):
        gdjax.orthogonalize_via_newton_schulz(jnp.ones((2, 2, 2)), jnp.asarray((3.0, -4.0, 2.0)))


@pytest.mark.parametrize("name", ["prodigy", "adopt", "ademamix", "muon", "schedule_free_adamw"])
def test_the_learning_rate_applied_is_readable_from_the_state(results, name):
    _, state, _ = results[name]
    values = CASES[name].values
    if name == "schedule_free_adamw":  # a constant rate is not recorded, as in optax
        with pytest.raises(KeyError, match="learning_rate"):
            gdjax.get_hyperparam(state, "learning_rate")
        return
    want = [float(ours_sched(v)(STEPS - 1)) for v in values]
    np.testing.assert_allclose(gdjax.get_hyperparam(state, "learning_rate"), want, rtol=1e-6)
