"""What the engine compiles: one program per epoch shape, reused across epochs and across calls
that change only array values (a learning rate); the training state's buffers are donated."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax
from gdjax.train import programs

PROGRAM = "jit(train_chunk)"  # how the engine's compiled chunk programs are named

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
P0 = {"w": np.zeros(3, np.float32), "b": np.zeros((), np.float32)}


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


def _fit_gd(optimizer, loss=_mse, epochs=3):
    return gdjax.fit(
        loss, P0, optimizer, (X, Y), batch_size=None, epochs=epochs, key=jax.random.key(0)
    )


def _check_gd(res, lr, steps=3):
    theta = _gd_closed_form(lr, steps)
    np.testing.assert_allclose(res.params["w"], theta[:3], rtol=1e-5)
    np.testing.assert_allclose(res.params["b"], theta[3], rtol=1e-5, atol=1e-7)


@pytest.fixture(autouse=True)
def _fresh_cache():
    programs.clear_cache()
    yield
    programs.clear_cache()


def test_an_n_epoch_fit_compiles_its_epoch_program_once():
    traces = []

    def loss(p, batch):
        traces.append(batch[0].shape[0])  # runs only while tracing
        return _mse(p, batch)

    kw = {"batch_size": 4, "key": jax.random.key(0), "validation_data": (X, Y)}
    with compiled() as names:
        long = gdjax.fit(loss, P0, gdjax.adam(0.1), (X, Y), epochs=5, **kw)
    assert long.epochs_run == 5 and names.count(PROGRAM) == 1
    long_traces, traces[:] = list(traces), []
    with compiled() as names:
        gdjax.fit(loss, P0, gdjax.adam(0.1), (X, Y), epochs=1, **kw)
    assert traces == long_traces  # tracing does not grow with the number of epochs
    assert names.count(PROGRAM) == 0  # and the same program is not compiled again


def test_a_sweep_compiles_one_program_per_batch_size():
    hp = {"lr": np.array([0.1, 0.2, 0.05, 0.3]), "batch_size": [2, 5, 2, 5]}
    with compiled() as names:
        res = gdjax.sweep(
            _mse, P0, lambda h: gdjax.sgd(h["lr"]), (X, Y), hparams=hp, batch_size=None, epochs=3
        )
    assert names.count(PROGRAM) == 2
    assert res.history["loss"].shape == (4, 3)


def test_training_state_is_donated_and_caller_params_stay_valid(monkeypatch):
    given = []
    call = programs.Program.__call__

    def spy(self, state, *rest):
        given.append(jax.tree.leaves((state.params, state.opt_state, state.acc)))
        return call(self, state, *rest)

    monkeypatch.setattr(programs.Program, "__call__", spy)
    p0 = {"w": jnp.ones(3), "b": jnp.zeros(())}
    res = gdjax.fit(
        _mse,
        p0,
        gdjax.adam(0.1),
        (X, Y),
        batch_size=4,
        epochs=2,
        key=jax.random.key(0),
        checkpoint_every_steps=1,
    )
    assert len(given) == 2 * 3  # two full batches, then the remainder with the epoch's end
    for leaves in given:  # the buffers that matter; XLA may keep a scalar it did not reuse
        assert leaves and all(leaf.is_deleted() for leaf in leaves)
    np.testing.assert_array_equal(p0["w"], np.ones(3))  # the caller's params are untouched
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(res.params))


def test_a_new_learning_rate_array_reuses_the_compiled_program():
    with compiled() as first:
        a = _fit_gd(gdjax.sgd(jnp.asarray(0.1)))
    with compiled() as second:
        b = _fit_gd(gdjax.sgd(jnp.asarray(0.05)))
    assert first.count(PROGRAM) == 1 and second.count(PROGRAM) == 0
    _check_gd(a, 0.1)
    _check_gd(b, 0.05)  # the new value reached the shared program


def test_programs_that_differ_only_in_constants_or_callbacks_are_not_shared():
    # a Python float learning rate is a constant of the program: a new one compiles anew
    with compiled() as names:
        a = _fit_gd(gdjax.sgd(0.1))
        b = _fit_gd(gdjax.sgd(0.05))
    assert names.count(PROGRAM) == 2
    _check_gd(a, 0.1)
    _check_gd(b, 0.05)
    # host callbacks lower to the same text whatever they do: never shared
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
    # Tracing and finding a compiled program happen before the first epoch's clock starts, so a
    # call that reuses a compiled program has an ordinary first epoch. A fake clock makes the
    # (otherwise wall-time) check exact: building a program "takes" 1000 s.
    import importlib

    fit_module = importlib.import_module("gdjax.train.fit")
    sweep_module = importlib.import_module("gdjax.train.sweep")
    clock = _FakeClock()
    monkeypatch.setattr(fit_module, "time", clock)
    monkeypatch.setattr(sweep_module, "time", clock)
    build = programs.Program._build
    built = []

    def slow_build(self, args):
        clock.jump(1000.0)
        built.append(args[0].epoch.shape)
        return build(self, args)

    monkeypatch.setattr(programs.Program, "_build", slow_build)
    kw = {"batch_size": 4, "epochs": 3, "progress": True, "progress_every_steps": 1}
    if engine == "fit":
        res = gdjax.fit(_mse, P0, gdjax.sgd(0.1), (X, Y), key=jax.random.key(0), **kw)
        seconds = res.epoch_seconds
    else:
        res = gdjax.sweep(
            _mse, P0, lambda h: gdjax.sgd(h["lr"]), (X, Y), hparams={"lr": [0.1]}, **kw
        )
        seconds = res.epoch_seconds[4]
    # progress every step splits each epoch into chunks: two programs, both built up front
    assert len(built) == 2
    assert len(seconds) == 3 and seconds.max() < 1000.0
