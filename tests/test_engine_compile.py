"""What the engine compiles, and when it finds a program already compiled.

A call that changes nothing the programs are built from (the loss function, the optimizer's
factories and static arguments, shapes, dtypes, the options that change what is computed)
finds them by a cheap key: nothing is traced, nothing compiled. A miss traces; a program that
lowers to the text of one compiled before (a recreated ``lambda``, a new optax optimizer with
the same numbers) is not compiled again; anything else is.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax.train import programs

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}
STEPS, END = "jit(gdjax_steps)", "jit(gdjax_end)"


@contextlib.contextmanager
def compiled():
    """Names of the XLA programs compiled inside the block."""
    names = []

    def listen(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kw.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def _mse(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def _gd_closed_form(lr, steps):
    """Full-batch gradient descent on the mean squared error, in float64."""
    x1 = np.hstack([X, np.ones((len(X), 1), np.float32)]).astype(np.float64)
    theta = np.zeros(4)
    for _ in range(steps):
        theta = theta - lr * 2 / len(X) * x1.T @ (x1 @ theta - Y)
    return theta


def _fit_gd(optimizer, loss=_mse, epochs=3, **kw):
    return gdjax.fit(
        loss, P0, optimizer, (X, Y), batch_size=None, epochs=epochs, key=jax.random.key(0), **kw
    )


def _check_gd(res, lr, steps=3):
    theta = _gd_closed_form(lr, steps)
    np.testing.assert_allclose(res.params["w"], theta[:3], rtol=1e-5)
    np.testing.assert_allclose(res.params["b"], theta[3], rtol=1e-5, atol=1e-7)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # XLA's compile events name their programs; a hit in JAX's persistent cache (on by default)
    # loads a program without one, so these tests run without it.
    saved = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    programs.clear_cache()
    yield
    programs.clear_cache()
    jax.config.update("jax_compilation_cache_dir", saved)


def _counting(loss):
    traces = []

    def counted(p, batch):
        traces.append(batch[0].shape[0])  # runs only while tracing
        return loss(p, batch)

    return counted, traces


def test_a_second_call_with_another_gdjax_learning_rate_traces_and_compiles_nothing():
    loss, traces = _counting(_mse)
    kw = {"validation_data": (X, Y)}
    with compiled() as first:
        a = _fit_gd(gdjax.sgd(0.1), loss=loss, **kw)
    assert first.count(STEPS) == 1 and first.count(END) == 1
    assert traces  # the first call traced the loss
    traces.clear()
    with compiled() as second:
        b = _fit_gd(gdjax.sgd(0.05), loss=loss, epochs=2, **kw)
    assert traces == [] and second == []  # not traced, not compiled
    _check_gd(a, 0.1)
    _check_gd(b, 0.05, steps=2)  # the new number reached the compiled program


def test_an_n_epoch_fit_compiles_each_program_once():
    with compiled() as names:
        res = gdjax.fit(
            _mse, P0, gdjax.adam(0.1), (X, Y), batch_size=4, epochs=5, key=jax.random.key(0)
        )
    assert res.epochs_run == 5
    assert names.count(STEPS) == 1 and names.count(END) == 1


def test_every_chunk_length_runs_one_steps_program():
    with compiled() as names:
        split = gdjax.fit(
            _mse,
            P0,
            gdjax.adam(0.1),
            (X, Y),
            batch_size=1,
            epochs=2,
            key=jax.random.key(0),
            progress=True,
            progress_every_steps=3,  # chunks of 3, 3, 3, 1 steps
        )
    assert names.count(STEPS) == 1
    whole = gdjax.fit(
        _mse, P0, gdjax.adam(0.1), (X, Y), batch_size=1, epochs=2, key=jax.random.key(0)
    )
    np.testing.assert_array_equal(split.params["w"], whole.params["w"])


def test_a_sweep_compiles_one_program_set_per_batch_size():
    hp = {"lr": np.array([0.1, 0.2, 0.05, 0.3]), "batch_size": [2, 5, 2, 5]}
    with compiled() as names:
        res = gdjax.sweep(
            _mse, P0, lambda h: gdjax.sgd(h["lr"]), (X, Y), hparams=hp, batch_size=None, epochs=3
        )
    assert names.count(STEPS) == 2
    # neither size leaves a remainder batch, so both groups end their epochs the same way
    assert names.count(END) == 1
    assert res.history["loss"].shape == (4, 3)


def test_fast_programs_keep_their_input_and_guarded_ones_donate_it(monkeypatch):
    # The fast programs' input state is the snapshot a chunk is redone from if it meets a
    # non-finite value, so it must survive the call; the guarded programs are final and update
    # the state in place. Neither ever touches the caller's arrays.
    given = []
    call = programs.Executable.__call__

    def spy(self, state, *rest):
        if not self.name.startswith(("gdjax_steps", "gdjax_end")):
            return call(self, state, *rest)
        leaves = jax.tree.leaves((state.params, state.opt_state))
        out = call(self, state, *rest)
        given.append((self.name, all(leaf.is_deleted() for leaf in leaves)))
        return out

    monkeypatch.setattr(programs.Executable, "__call__", spy)
    p0 = {"w": jnp.ones(3), "b": jnp.zeros(())}
    lr = lambda count: jnp.where(count >= 4, jnp.inf, 0.1)  # noqa: E731  the 5th step is bad
    with pytest.warns(RuntimeWarning, match="non-finite"):
        res = gdjax.fit(
            _mse, p0, gdjax.sgd(lr), (X, Y), batch_size=4, epochs=3, key=jax.random.key(0)
        )
    deleted = dict(given)
    assert given[0] == ("gdjax_steps", False) and ("gdjax_end", False) in given
    assert deleted["gdjax_steps_guarded"] and deleted["gdjax_end_guarded"]
    np.testing.assert_array_equal(p0["w"], np.ones(3))  # the caller's params are untouched
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(res.params))


def test_a_new_learning_rate_array_reuses_the_compiled_program():
    with compiled() as first:
        a = _fit_gd(gdjax.sgd(jnp.asarray(0.1)))
    with compiled() as second:
        b = _fit_gd(gdjax.sgd(jnp.asarray(0.05)))
    assert first.count(STEPS) == 1 and second.count(STEPS) == 0
    _check_gd(a, 0.1)
    _check_gd(b, 0.05)


def test_optax_optimizers_are_shared_by_structure_and_their_constants_respected():
    loss, traces = _counting(_mse)
    with compiled() as names:
        a = _fit_gd(optax.sgd(0.1), loss=loss)
        traces.clear()
        again = _fit_gd(optax.sgd(0.1), loss=loss)  # a new object, the same program
    assert traces  # another object: traced again ...
    assert names.count(STEPS) == 1  # ... but found compiled
    with compiled() as names:
        b = _fit_gd(optax.sgd(0.05), loss=loss)  # a Python float is a constant of optax's program
    assert names.count(STEPS) == 1
    _check_gd(a, 0.1)
    _check_gd(again, 0.1)
    _check_gd(b, 0.05)


@pytest.mark.parametrize(
    "change",
    [
        "loss",
        "optimizer kind",
        "shapes",
        "dtypes",
        "shuffle",
        "batch size",
        "validation",
        "key implementation",
    ],
)
def test_the_cache_misses_when_what_the_program_computes_changes(change):
    base = {"batch_size": 5, "epochs": 1, "key": jax.random.key(0)}
    gdjax.fit(_mse, P0, gdjax.sgd(0.1), (X, Y), **base)
    args = {"loss": _mse, "params": P0, "opt": gdjax.sgd(0.1), "data": (X, Y), "kw": dict(base)}
    if change == "loss":
        args["loss"] = lambda p, b: jnp.mean(jnp.abs(b[0] @ p["w"] + p["b"] - b[1]))
    elif change == "optimizer kind":
        args["opt"] = gdjax.adam(0.1)
    elif change == "shapes":
        args["data"] = (X[:8], Y[:8])
    elif change == "dtypes":
        args["params"] = jax.tree.map(lambda a: a.astype(jnp.bfloat16), P0)
        args["data"] = (X.astype(jnp.bfloat16), Y.astype(jnp.bfloat16))
    elif change == "shuffle":
        args["kw"]["shuffle"] = False
    elif change == "batch size":
        args["kw"]["batch_size"] = 2
    elif change == "validation":
        args["kw"]["validation_data"] = (X, Y)
    elif change == "key implementation":  # a key of another PRNG has another dtype and shape
        args["kw"]["key"] = jax.random.key(0, impl="rbg")
    with compiled() as names:
        gdjax.fit(args["loss"], args["params"], args["opt"], args["data"], **args["kw"])
    assert any(n.startswith("jit(gdjax_") for n in names), change


def test_programs_with_host_callbacks_are_never_shared():
    results = []
    for offset in (1.0, 2.0):

        def loss(p, batch, offset=offset):
            c = jax.pure_callback(lambda: np.float32(offset), jax.ShapeDtypeStruct((), jnp.float32))
            return _mse(p, batch) + jax.lax.stop_gradient(c)

        results.append(_fit_gd(gdjax.sgd(jnp.asarray(0.0)), loss=loss, epochs=1))
    mse0 = np.mean((Y - 0.0) ** 2)
    np.testing.assert_allclose(results[0].history["loss"], [mse0 + 1.0], rtol=1e-6)
    np.testing.assert_allclose(results[1].history["loss"], [mse0 + 2.0], rtol=1e-6)


class _FakeClock:
    """Stands in for ``time``: ``perf_counter`` advances 1 per reading, ``jump`` adds more."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now

    def jump(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("engine", ["fit", "sweep"])
def test_epoch_seconds_leave_out_the_tracing_of_the_programs(monkeypatch, engine):
    # Tracing happens before the first epoch's clock starts, so a call that reuses compiled
    # programs has an ordinary first epoch. A fake clock makes the (otherwise wall-time) check
    # exact: tracing a program "takes" 1000 s.
    from gdjax.train import driver

    clock = _FakeClock()
    monkeypatch.setattr(driver, "time", clock)
    build = programs.build
    built = []

    def slow_build(fn, args, **kw):
        clock.jump(1000.0)
        built.append(kw["name"])
        return build(fn, args, **kw)

    monkeypatch.setattr(programs, "build", slow_build)
    kw = {"batch_size": 4, "epochs": 3, "progress": True, "progress_every_steps": 1}
    if engine == "fit":
        res = gdjax.fit(_mse, P0, gdjax.sgd(0.1), (X, Y), key=jax.random.key(0), **kw)
        seconds = res.epoch_seconds
    else:
        res = gdjax.sweep(
            _mse, P0, lambda h: gdjax.sgd(h["lr"]), (X, Y), hparams={"lr": [0.1]}, **kw
        )
        seconds = res.epoch_seconds[4]
    assert sorted(built) == ["gdjax_end", "gdjax_init", "gdjax_order", "gdjax_steps"]
    assert len(seconds) == 3 and seconds.max() < 1000.0
