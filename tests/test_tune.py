"""gdjax.tune: spaces, samplers and plans against hand computations; halving, Hyperband, PBT,
static programs and the range test against a closed-form problem (gradient descent on a
one-parameter least-squares fit, simulated in float64 NumPy); errors before anything compiles.

The problem: data ``x`` evenly spaced in [-1, 1], ``y = 3x``, loss ``mean((x w - y)^2)`` from
``w = 0``, full batches (one step per epoch), so epoch ``e``'s recorded loss is the loss of the
weight after ``e - 1`` steps of ``w <- w - lr * mean(2x(xw - y))``.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import tune
from gdjax.tune import population

X = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
Y = 3 * X[:, 0]
DATA = (X, Y)
LRS = tune.LogUniform(0.01, 4.0)  # the largest rates diverge: 1 - 2 lr mean(x^2) < -1
#: Options every training test shares, so that searches of equal member counts share programs.
COMMON = {"objective": "loss", "shuffle": False}


def loss(w, batch):
    xb, yb = batch
    return jnp.mean((xb[:, 0] * w - yb) ** 2)


def sgd(hp):
    return optax.sgd(hp["lr"])


def losses(lr, epochs, w=0.0):
    """The recorded loss of each epoch, and the weight after them (float64)."""
    x, y = X[:, 0].astype(np.float64), Y.astype(np.float64)
    out = []
    for _ in range(epochs):
        out.append(np.mean((x * w - y) ** 2))
        w = w - lr * np.mean(2 * x * (x * w - y))
    return np.asarray(out), w


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=3e-4, atol=1e-6)


# --- spaces and samplers (no training) -------------------------------------------------------


def test_dimensions_map_the_unit_interval_as_their_formulas_say():
    u = np.array([0.0, 0.25, 0.5, 0.999])
    assert [tune.Uniform(-1.0, 3.0).from_unit(v) for v in u] == pytest.approx(-1 + 4 * u)
    log = [tune.LogUniform(1e-4, 1.0).from_unit(v) for v in u]
    assert log == pytest.approx(10 ** (-4 + 4 * u))
    # each integer gets an equal share of the unit interval
    ints = [tune.IntUniform(2, 5).from_unit(v) for v in np.arange(4000) / 4000]
    assert np.bincount(ints)[2:].tolist() == [1000] * 4
    assert [tune.Choice(["a", "b", "c"]).from_unit(v) for v in (0.1, 0.4, 0.9)] == ["a", "b", "c"]
    assert tune.LogUniform(1e-3, 1e-1).grid(3) == pytest.approx([1e-3, 1e-2, 1e-1])


def test_samplers_against_numpy_and_scipy_draws():
    from scipy.stats import qmc

    space = tune.Space({"lr": tune.LogUniform(1e-3, 1.0), "m": tune.Uniform(0.0, 0.9)})
    got = tune.Random(5).draw(space, rng=7)
    u = np.random.default_rng(7).random((5, 2))
    assert [c["lr"] for c in got] == pytest.approx(1e-3 * 1000 ** u[:, 0])
    assert [c["m"] for c in got] == pytest.approx(0.9 * u[:, 1])
    got = tune.Sobol(8).draw(space, rng=3)
    u = qmc.Sobol(2, scramble=True, rng=np.random.default_rng(3)).random(8)
    assert [c["lr"] for c in got] == pytest.approx(1e-3 * 1000 ** u[:, 0])
    grid = tune.Grid(points={"lr": 2, "m": 3}).draw(space)
    assert [c["lr"] for c in grid] == pytest.approx([1e-3] * 3 + [1.0] * 3)
    assert [c["m"] for c in grid] == pytest.approx([0.0, 0.45, 0.9] * 2)


def test_conditional_dimension_is_none_when_inactive_and_its_default_reaches_the_program():
    space = tune.Space(
        {
            "opt": tune.Choice(["sgd", "momentum"]),
            "beta": tune.Uniform(0.5, 0.9, when={"opt": "momentum"}, default=0.0),
        }
    )
    grid = space.grid(2)
    assert grid == [
        {"opt": "sgd", "beta": None},
        {"opt": "momentum", "beta": 0.5},
        {"opt": "momentum", "beta": 0.9},
    ]
    assert space.static_names == ("opt",) and space.input_names == ("beta",)
    assert [space.input_value("beta", c) for c in grid] == [0.0, 0.5, 0.9]


def test_plans_match_the_papers():
    # Li et al. (2018), Table 1: R = 81, eta = 3 -> brackets of 81, 34, 15, 8, 5 trials
    # starting at 1, 3, 9, 27, 81 epochs.
    brackets = tune.Hyperband(min_epochs=1, eta=3).brackets(81)
    assert [n for n, _ in brackets] == [81, 34, 15, 8, 5]
    assert [r[0] for _, r in brackets] == [1, 3, 9, 27, 81]
    assert brackets[0][1] == [1, 3, 9, 27, 81]
    assert tune.SuccessiveHalving(min_epochs=2, eta=2).rungs(10) == [2, 4, 8, 10]
    assert tune.PBT(interval=3).boundaries(10) == [3, 6, 9]


def _refuse_to_compile(monkeypatch):
    def no(*args, **kwargs):
        raise AssertionError("a program was started before the error")

    monkeypatch.setattr(population, "start_run", no)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": {"lr": tune.Uniform(0.5, 0.5)}}, r"space\['lr'\].*empty range"),
        ({"space": {"lr": tune.LogUniform(1.0, 1e-3)}}, r"space\['lr'\].*inverted range"),
        ({"space": {"lr": tune.LogUniform(0.0, 1.0)}}, r"space\['lr'\].*log range touching zero"),
        ({"space": {"lr": tune.Choice([])}}, r"space\['lr'\].*empty"),
        (
            {"scheduler": tune.SuccessiveHalving(min_epochs=4), "epochs": 3},
            r"budget epochs=3 is smaller than one rung \(min_epochs=4\)",
        ),
        ({"scheduler": tune.PBT(interval=3), "epochs": 3}, r"smaller than one PBT interval"),
        ({"objective": "val_acc"}, r"objective='val_acc' is not recorded.*'loss'"),
        (
            {"space": {"lr": tune.Uniform(0.1, 0.2), "width": tune.Choice([1, 2], static=True)}},
            r"static dimensions \['width'\].*build=",
        ),
        (
            {"space": {"lr": LRS, "batch_size": tune.Choice([16, 32])}, "scheduler": tune.PBT()},
            r"PBT.*static.*batch_size",
        ),
        ({"sampler": tune.Grid(2), "scheduler": tune.Hyperband()}, r"Hyperband.*Random"),
        (
            {"space": {"lr": LRS, "b": tune.Uniform(0.0, 1.0, when={"lr": 1}, default=0.0)}},
            r"when= names 'lr', which must be a Choice",
        ),
    ],
)
def test_errors_name_the_problem_before_anything_compiles(monkeypatch, kwargs, message):
    _refuse_to_compile(monkeypatch)
    args = {"space": {"lr": LRS}, "sampler": tune.Random(4), "objective": "loss", "epochs": 4}
    args |= kwargs
    if "batch_size" not in args["space"]:
        args["batch_size"] = 64
    with pytest.raises(ValueError, match=message):
        tune.search(loss, jnp.zeros(()), sgd, DATA, **args)


# --- training ---------------------------------------------------------------------------------


#: Successive halving of nine rates: rungs at 1, 3 and 9 epochs (also resumed after a kill).
HALVING = {
    "space": {"lr": LRS},
    "sampler": tune.Grid(points=9),
    "scheduler": tune.SuccessiveHalving(min_epochs=1, eta=3),
    "batch_size": 64,
    "epochs": 9,
    **COMMON,
}


@pytest.fixture(scope="module")
def halving():
    return tune.search(loss, jnp.zeros(()), sgd, DATA, **HALVING)


def test_successive_halving_keeps_the_best_third_and_repacks_them(halving):
    lrs = tune.LogUniform(0.01, 4.0).grid(9)
    curves = {i: losses(lr, 9)[0] for i, lr in enumerate(lrs)}
    alive, expected = list(range(9)), []
    for rung in (1, 3, 9):
        ranked = sorted(alive, key=lambda i: curves[i][rung - 1])
        kept = ranked[: len(alive) // 3] if rung < 9 else []
        expected.append({"bracket": 0, "epoch": rung, "entered": alive, "kept": kept})
        alive = kept
    assert halving.rungs == expected
    for t in halving.trials:  # each trial's history is the closed form, however far it went
        assert t.epochs == {1: 1, 3: 3}.get(len(t.history["loss"]), 9)
        close(t.history["loss"], curves[t.number][: t.epochs])
    # repacked, not masked: 9 members for 1 epoch, 3 for 2 more, 1 for 6 more
    assert halving.member_epochs == 9 * 1 + 3 * 2 + 1 * 6
    best = halving.best
    assert best is halving.trials[expected[1]["kept"][0]] and best.status == "completed"
    assert best.config["lr"] == pytest.approx(lrs[best.number])
    close(halving.best_params, losses(lrs[best.number], 9)[1])
    assert [t.status for t in halving.trials].count("stopped at rung 1") == 6
    assert halving.timeline[-1]["member_epochs"] == 21
    seen = min(min(curves[t.number][: t.epochs]) for t in halving.trials)
    assert halving.timeline[-1]["best"] == pytest.approx(seen, rel=1e-4)


def test_table_and_plots(halving, tmp_path):
    rows = halving.table().splitlines()
    assert rows[0] == "| trial | lr | epochs | loss | status |"
    assert rows[2].startswith(f"| {halving.best.number} |") and rows[2].endswith("completed |")
    fig = halving.plot_objective(tmp_path / "o.png")
    assert len(fig.axes) == 1 and fig.axes[0].get_xscale() == "log"
    halving.plot_rungs(tmp_path / "r.png")
    for name in ("o.png", "r.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_hyperband_runs_every_bracket_as_halving():
    res = tune.search(
        loss,
        jnp.zeros(()),
        sgd,
        DATA,
        space={"lr": LRS},
        sampler=tune.Random(),
        scheduler=tune.Hyperband(min_epochs=1, eta=3),
        batch_size=64,
        epochs=3,
        seed=1,
        **COMMON,
    )
    # brackets (3 trials from 1 epoch, 1 kept) and (2 trials at 3 epochs)
    assert [t.bracket for t in res.trials] == [0, 0, 0, 1, 1]
    assert [(r["bracket"], r["epoch"], len(r["entered"])) for r in res.rungs] == [
        (0, 1, 3),
        (0, 3, 1),
        (1, 3, 2),
    ]
    assert res.member_epochs == 3 + 1 * 2 + 2 * 3
    for t in res.trials:
        close(t.history["loss"], losses(t.config["lr"], t.epochs)[0])


def test_pbt_copies_the_best_and_perturbs_their_hyperparameters():
    sched = tune.PBT(interval=2, fraction=0.25, perturb=(0.8, 1.25), resample=0.0)
    res = tune.search(
        loss,
        jnp.zeros(()),
        sgd,
        DATA,
        space={"lr": tune.LogUniform(0.01, 0.6)},
        sampler=tune.Random(9),
        scheduler=sched,
        batch_size=64,
        epochs=6,
        seed=2,
        **COMMON,
    )
    trials = res.trials
    n = len(trials)
    # Simulate the population in NumPy, applying the recorded decisions.
    x, y = X[:, 0].astype(np.float64), Y.astype(np.float64)
    w = np.zeros(n)
    lr = np.array([t.config["lr"] for t in trials])
    hist = np.zeros((n, 6))
    for epoch in range(1, 7):
        hist[:, epoch - 1] = [np.mean((x * wi - y) ** 2) for wi in w]
        w = w - lr * np.array([np.mean(2 * x * (x * wi - y)) for wi in w])
        changes = [(t.number, c) for t in trials for c in t.schedule if c["epoch"] == epoch]
        if epoch in (2, 4):
            now = hist[:, epoch - 1]
            order = np.argsort(now)
            assert sorted(dst for dst, _ in changes) == sorted(order[-2:].tolist())
            w_before = w.copy()
            for dst, c in changes:
                assert c["donor"] in order[:2].tolist()
                ratio = c["config"]["lr"] / lr[c["donor"]]
                clipped = c["config"]["lr"] in (0.01, 0.6)
                assert min(abs(ratio - 0.8), abs(ratio - 1.25)) < 1e-6 or clipped
                w[dst] = w_before[c["donor"]]
            for dst, c in changes:
                lr[dst] = c["config"]["lr"]
        else:
            assert not changes
    for t in trials:
        close(t.history["loss"], hist[t.number])
    assert res.member_epochs == 9 * 6
    assert res.best is trials[int(np.argmin(hist[:, -1]))]
    close(res.best_params, w[res.best.number])


def wide_loss(p, batch):
    return jnp.mean((batch[0][:, 0] * p.sum() - batch[1]) ** 2)


def test_static_choices_become_separate_programs():
    """The batch size changes the step count and a width (active only with batch size 32) the
    parameters' shape: three programs, each model made by the user's function."""

    def build(static):
        if "width" not in static:
            return loss, jnp.zeros(())
        return wide_loss, jnp.zeros(static["width"])

    res = tune.search(
        None,
        None,
        sgd,
        DATA,
        build=build,
        space={
            "lr": tune.Choice([0.05, 0.1, 0.2]),
            "batch_size": tune.Choice([32, 64]),
            "width": tune.Choice([1, 2], static=True, when={"batch_size": 32}, default=1),
        },
        sampler=tune.Grid(),
        epochs=2,
        **COMMON,
    )
    assert len(res.trials) == 9
    x, y = X[:, 0].astype(np.float64), Y.astype(np.float64)
    for t in res.trials:
        width, bs, lr = t.config["width"], t.config["batch_size"], t.config["lr"]
        assert (width is None) == (bs == 64)
        p, epoch_losses = np.zeros(width or 1), []
        for _ in range(2):
            total = 0.0
            for lo in range(0, 64, bs):
                xb, yb = x[lo : lo + bs], y[lo : lo + bs]
                r = xb * p.sum() - yb
                total += np.mean(r**2) * len(xb)
                p = p - lr * np.mean(2 * r * xb)  # the same gradient for every entry
            epoch_losses.append(total / 64)
        close(t.history["loss"], epoch_losses)
    assert np.shape(res.best_params) == (
        (res.best.config["width"],) if res.best.config["width"] else ()
    )


def test_lr_range_test_suggests_the_closed_form_best_rate(tmp_path):
    r = tune.lr_range_test(
        loss,
        jnp.zeros(()),
        optax.sgd,
        DATA,
        min_lr=0.01,
        max_lr=10.0,
        num=10,
        batch_size=64,
        epochs=6,
    )
    rates = np.geomspace(0.01, 10.0, 10)
    curves = np.stack([losses(float(np.float32(lr)), 6)[0] for lr in rates])
    close(r.step_losses, curves)
    final = curves[:, -1]
    diverged = final > curves[:, 0]
    assert r.diverged.tolist() == diverged.tolist()
    assert r.suggested == pytest.approx(rates[np.argmin(np.where(diverged, np.inf, final))])
    assert r.max_stable == pytest.approx(rates[np.flatnonzero(~diverged).max()])
    fig = r.plot(tmp_path / "lr.png")
    assert len(fig.axes) == 2 and (tmp_path / "lr.png").exists()


def test_tune_is_exported():
    assert gdjax.tune is tune and "tune" in gdjax.__all__
