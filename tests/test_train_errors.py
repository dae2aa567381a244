"""Bad arguments raise clear errors before anything is compiled or written."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax

X = np.ones((8, 2), np.float32)
Y = np.zeros(8, np.int32)


def _ce(p, batch):
    x, y = batch
    logits = x @ p
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


P = np.zeros((2, 3), np.float32)


def _fit(data=(X, Y), loss=_ce, **kw):
    args = {"batch_size": 4, "epochs": 1, "key": jax.random.key(0)}
    args.update(kw)
    return gdjax.fit(loss, P, optax.sgd(0.1), data, **args)


def _nan_x():
    x = X.copy()
    x[5, 1] = np.nan
    return x


def _inf_x():
    x = X.copy()
    x[2, 0] = np.inf
    return x


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"data": (X, Y[:7])}, ValueError, r"leading dimension N.*\(8, 2\).*\(7,\)"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 9}, ValueError, "larger than the number of examples N=8.*None"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"loss": lambda p, b: (b[0] @ p).sum(axis=1)}, ValueError, r"scalar loss.*\(4,\)"),
        ({"data": (_nan_x(), Y)}, ValueError, r"data\[0\] contains 1 NaN/inf.*example 5"),
        ({"data": (_inf_x(), Y)}, ValueError, r"data\[0\] contains 1 NaN/inf.*example 2"),
        (
            {"validation_data": (X, Y.astype(np.float32))},
            ValueError,
            r"validation_data\[1\] has dtype float32 but data\[1\] has int32",
        ),
        (
            {"validation_data": (X, Y[:, None])},
            ValueError,
            r"validation_data\[1\] has per-example shape \(1,\)",
        ),
        ({"data": (X, np.zeros((8, 3), np.float32))}, TypeError, "labels' dtype and shape"),
        ({"key": 0}, TypeError, "key must be a JAX PRNG key"),
        ({"metrics": {"acc": lambda p, b: 1.0}}, ValueError, "pass validation_data"),
        (
            {"early_stopping": gdjax.EarlyStopping("val_loss")},
            ValueError,
            "'val_loss' is not recorded",
        ),
        ({"on_nonfinite": "ignore"}, ValueError, "on_nonfinite must be one of"),
        ({"checkpoint_every_steps": 0}, ValueError, "checkpoint_every_steps must be >= 1"),
        ({"loss": lambda p, b: (1.0, 2.0, 3.0)}, TypeError, "tuple of length 3"),
        (
            {"validation_data": (X, Y), "metrics": {"scores": lambda p, b: b[0] @ p}},
            ValueError,
            r"metrics\['scores'\] must return a scalar.*\(8, 3\)",
        ),
        (
            {"validation_data": (X, Y), "metrics": {"bad": lambda p, b: b[0] @ p.T}},
            TypeError,
            r"metrics\['bad'\] failed when called as fn\(params, batch\)",
        ),
        (
            {"validation_data": (X, Y), "metrics": {"pair": lambda p, b: (p.sum(), p.mean())}},
            TypeError,
            r"metrics\['pair'\] must return a scalar array.*tuple",
        ),
    ],
)
def test_bad_arguments(kwargs, err, match, tmp_path):
    ckpt = tmp_path / "ckpt"
    with pytest.raises(err, match=match):
        _fit(checkpoint_dir=ckpt, **kwargs)
    assert not ckpt.exists()  # nothing written


def test_optimizer_must_be_transformation():
    with pytest.raises(TypeError, match="optimizer must be an optax GradientTransformation"):
        gdjax.fit(_ce, P, "adam", (X, Y), batch_size=4, epochs=1, key=jax.random.key(0))


def test_stateful_loss_must_return_state():
    with pytest.raises(TypeError, match=r"\(loss, new_model_state\)"):
        _fit(loss=lambda p, s, b: jnp.sum(p), model_state={"n": jnp.zeros(())})


def test_rule_arguments_validated():
    with pytest.raises(ValueError, match="patience must be an int >= 1"):
        gdjax.EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="factor must be in"):
        gdjax.ReduceOnPlateau(factor=1.5)


def test_mesh_batch_must_divide_devices():
    mesh = jax.make_mesh((1,), ("data",))
    with pytest.raises(ValueError, match="data_axis 'batch' is not an axis"):
        _fit(mesh=mesh, data_axis="batch")


@pytest.mark.parametrize(
    ("sets", "kw", "match"),
    [
        ({"my test": (X, Y)}, {}, "must be identifiers"),
        ({"step": (X, Y)}, {}, "step_loss, which is reserved"),
        (
            {"val": (X, Y), "test": (X, Y.astype(np.float32))},
            {},
            r"validation_data\['test'\]\[1\] has dtype",
        ),
        ({}, {}, "empty dict"),
        (
            {"test": (X, Y)},
            {"early_stopping": gdjax.EarlyStopping("val_loss")},
            r"'val_loss' is not recorded; available: \['loss', 'test_loss'\]",
        ),
    ],
)
def test_named_validation_sets_checked(sets, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _fit(validation_data=sets, **kw)


def test_aux_entries_must_not_clash_with_a_validation_set():
    def loss(p, b):
        return _ce(p, b), {"test_loss": jnp.zeros(())}

    with pytest.raises(ValueError, match=r"aux entry 'test_loss' clashes"):
        _fit(loss=loss, validation_data={"test": (X, Y)})


def test_data_check_tells_an_overflowing_sum_from_bad_values():
    # Finite data whose float32 sum overflows to inf: accepted (the exact check runs).
    big = np.full((8, 2), 3e38, np.float32)
    big_res = _fit(data=(big, Y), loss=lambda p, b: _ce(p, (b[0] * 0, b[1])))
    assert np.isfinite(big_res.params).all()
    # inf and -inf together sum to NaN; both are named.
    both = X.copy()
    both[3, 0], both[6, 1] = np.inf, -np.inf
    with pytest.raises(ValueError, match=r"data\[0\] contains 2 NaN/inf.*example 3"):
        _fit(data=(both, Y))
    # Low-precision data: the sum is taken in float32 and still sees the inf.
    half = jnp.asarray(_inf_x(), jnp.bfloat16)
    with pytest.raises(ValueError, match=r"data\[0\] contains 1 NaN/inf.*example 2"):
        _fit(data=(half, Y), loss=lambda p, b: _ce(p, (b[0].astype(jnp.float32), b[1])))
