"""Every model: output shapes, gradient vs finite differences (float64), overfitting a tiny batch.

The gradient check compares ``<grad f(p), v>`` with the central difference
``(f(p + eps v) - f(p - eps v)) / (2 eps)`` along a random direction ``v`` in float64, in
training mode (dropout with a fixed key, batch norm with batch statistics). The overfitting
test trains with Adam (in NumPy) on the same compiled float64 loss-and-gradient function, so
each model's backward pass compiles once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax import losses, metrics, models


def _key(seed: int) -> jax.Array:
    """A PRNG key of the ``"rbg"`` implementation, for parameter initialisation and dropout.

    XLA:CPU takes seconds to compile the default (threefry) generator's bits for each
    multi-dimensional shape -- every kernel initializer and every dropout mask is one -- and
    these tests check the models, not the generator: ``"rbg"`` keys compile in a fraction of it.
    """
    return jax.random.key(seed, impl="rbg")


KEY = _key(0)
DROPOUT_KEY = _key(1)


def _ce_acc(out, y):
    return metrics.accuracy(out, y)


def _mse_done(out, y):
    return losses.mse(out, y) < 1e-3


@dataclass
class Case:
    make: Callable[[], nn.Module]
    inputs: Callable[[np.random.Generator], tuple]
    targets: Callable[[np.random.Generator, tuple], Any]
    loss: Callable[[Any, Any], jax.Array]
    out_shape: tuple
    done: Callable[[Any, Any], Any]
    steps: int = 150
    lr: float = 1e-2
    extra_shapes: list = field(default_factory=list)  # (model inputs, expected shape)


def _xy_linear(rng, inp):
    (x,) = inp
    w = rng.normal(size=(x.shape[1], 3))
    return jnp.asarray(x @ w + 0.5, jnp.float32)


def _separable(rng, inp, pm=False):
    (x,) = inp
    s = x.reshape(len(x), -1) @ rng.normal(size=x.shape[1:]).ravel()
    return jnp.asarray(np.where(s > 0, 1, -1 if pm else 0), jnp.float32)


def _classes(k):
    return lambda rng, inp: jnp.asarray(rng.integers(0, k, len(inp[0])), jnp.int32)


def _tokens(n, t, vocab, pad_from=None):
    def make(rng):
        tok = rng.integers(2, vocab, (n, t))
        tok[:, 0] = rng.permutation(np.arange(2, vocab))[:n]  # distinct first tokens
        if pad_from is not None:
            for i, start in enumerate(pad_from):
                tok[i, start:] = 0
        return (jnp.asarray(tok, jnp.int32),)

    return make


def _lm_targets(rng, inp):
    (tok,) = inp
    return jnp.concatenate([tok[:, 1:], tok[:, :1]], axis=1)  # next token (wrapping)


def _seq2seq_inputs(rng):
    src = jnp.asarray(rng.permutation(np.arange(2, 12))[:8].reshape(4, 2), jnp.int32)
    src = jnp.concatenate([src, jnp.asarray(rng.integers(2, 12, (4, 3)), jnp.int32)], axis=1)
    tgt = src[:, ::-1]
    tgt_in = jnp.concatenate([jnp.ones((4, 1), jnp.int32), tgt[:, :-1]], axis=1)
    return src, tgt_in


def _img(n, h, w, c):
    return lambda rng: (jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32),)


CASES: dict[str, Case] = {
    "linear": Case(
        lambda: models.Linear(3),
        lambda rng: (jnp.asarray(rng.normal(size=(8, 4)), jnp.float32),),
        _xy_linear,
        losses.mse,
        (8, 3),
        _mse_done,
        steps=400,
        lr=5e-2,
    ),
    "logistic_regression": Case(
        models.LogisticRegression,
        lambda rng: (jnp.asarray(rng.normal(size=(12, 5)), jnp.float32),),
        _separable,
        losses.sigmoid_binary_cross_entropy,
        (12,),
        lambda o, y: metrics.binary_accuracy(o, y) == 1.0,
        lr=1e-1,
    ),
    "linear_svm": Case(
        models.LinearSVM,
        lambda rng: (jnp.asarray(rng.normal(size=(12, 5)), jnp.float32),),
        lambda rng, inp: _separable(rng, inp, pm=True),
        losses.hinge,
        (12,),
        lambda o, y: losses.hinge(o, y) < 1e-2,
        lr=1e-1,
    ),
    "mlp_bn_dropout": Case(
        lambda: models.MLP((16, 16, 3), dropout_rate=0.1, batch_norm=True),
        lambda rng: (jnp.asarray(rng.normal(size=(16, 2, 3)), jnp.float32),),
        _classes(3),
        losses.softmax_cross_entropy,
        (16, 3),
        lambda o, y: _ce_acc(o, y) == 1.0,
        steps=200,
    ),
    "cnn": Case(
        lambda: models.CNN(3, channels=(4, 8), dense=16, dropout_rate=0.1),
        _img(8, 8, 8, 1),
        _classes(3),
        losses.softmax_cross_entropy,
        (8, 3),
        lambda o, y: _ce_acc(o, y) == 1.0,
        extra_shapes=[((2, 28, 28, 1), (2, 3)), ((2, 32, 32, 3), (2, 3)), ((2, 28, 28), (2, 3))],
    ),
    "cnn_bn": Case(
        lambda: models.CNN(3, channels=(4,), dense=0, batch_norm=True),
        _img(8, 6, 6, 2),
        _classes(3),
        losses.softmax_cross_entropy,
        (8, 3),
        lambda o, y: _ce_acc(o, y) == 1.0,
        steps=200,
    ),
    "resnet": Case(
        lambda: models.ResNet(depth=8, num_classes=3, widths=(4, 8, 8)),
        _img(8, 8, 8, 3),
        _classes(3),
        losses.softmax_cross_entropy,
        (8, 3),
        lambda o, y: _ce_acc(o, y) == 1.0,
        steps=100,
    ),
    "rnn_lstm": Case(
        lambda: models.RNN(hidden_size=16, num_outputs=1, cell="lstm", num_layers=2),
        lambda rng: (jnp.asarray(rng.normal(size=(8, 5, 2)), jnp.float32),),
        lambda rng, inp: jnp.asarray(rng.normal(size=(8, 1)), jnp.float32),
        losses.mse,
        (8, 1),
        lambda o, y: losses.mse(o, y) < 1e-2,
        steps=300,
    ),
    "rnn_gru_sequences": Case(
        lambda: models.RNN(hidden_size=8, num_outputs=2, cell="gru", return_sequences=True),
        lambda rng: (jnp.asarray(rng.normal(size=(4, 6)), jnp.float32),),
        lambda rng, inp: jnp.asarray(rng.normal(size=(4, 6, 2)), jnp.float32),
        losses.mse,
        (4, 6, 2),
        lambda o, y: losses.mse(o, y) < 5e-2,
        steps=400,
    ),
    "rnn_classifier": Case(
        lambda: models.RNNClassifier(
            vocab_size=20, num_classes=2, embed_dim=8, hidden_size=8, cell="gru"
        ),
        _tokens(8, 6, 20, pad_from=[6, 5, 4, 3, 6, 2, 5, 4]),
        _classes(2),
        losses.softmax_cross_entropy,
        (8, 2),
        lambda o, y: _ce_acc(o, y) == 1.0,
    ),
    "rnn_language_model": Case(
        lambda: models.RNNLanguageModel(vocab_size=12, embed_dim=8, hidden_size=16),
        _tokens(4, 6, 12),
        _lm_targets,
        losses.softmax_cross_entropy,
        (4, 6, 12),
        lambda o, y: _ce_acc(o, y) == 1.0,
        steps=200,
    ),
    "transformer_lm": Case(
        lambda: models.TransformerLM(
            vocab_size=12, d_model=16, num_heads=2, num_layers=1, d_ff=16, max_len=6
        ),
        _tokens(4, 6, 12),
        _lm_targets,
        losses.softmax_cross_entropy,
        (4, 6, 12),
        lambda o, y: _ce_acc(o, y) == 1.0,
    ),
    "seq2seq_transformer": Case(
        lambda: models.Seq2SeqTransformer(
            src_vocab_size=13,
            tgt_vocab_size=12,
            d_model=16,
            num_heads=2,
            num_layers=1,
            d_ff=16,
            max_len=5,
            dropout_rate=0.1,
        ),
        _seq2seq_inputs,
        lambda rng, inp: inp[0][:, ::-1],
        losses.softmax_cross_entropy,
        (4, 5, 12),
        lambda o, y: _ce_acc(o, y) == 1.0,
        steps=200,
    ),
    "matrix_factorization": Case(
        lambda: models.MatrixFactorization(num_users=5, num_items=6, rank=4),
        lambda rng: (
            jnp.asarray(rng.permutation([(u, i) for u in range(5) for i in range(6)])[:16]),
        ),
        lambda rng, inp: jnp.asarray(rng.normal(size=16), jnp.float32),
        losses.mse,
        (16,),
        _mse_done,
        steps=400,
        lr=5e-2,
    ),
    "bag_of_embeddings": Case(
        lambda: models.BagOfEmbeddings(
            vocab_size=30, num_classes=2, embed_dim=8, hidden=(8,), dropout_rate=0.1
        ),
        _tokens(8, 5, 30, pad_from=[5, 3, 4, 5, 2, 5, 4, 3]),
        _classes(2),
        losses.softmax_cross_entropy,
        (8, 2),
        lambda o, y: _ce_acc(o, y) == 1.0,
    ),
}


@functools.cache
def _setup(name: str):
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    model = case.make()
    inputs = case.inputs(rng)
    targets = case.targets(rng, inputs)
    variables = jax.jit(model.init)(KEY, *inputs)
    apply = jax.jit(model.apply)  # eval mode; compiled once for the initial and trained variables
    return case, model, inputs, targets, variables, apply


def _float64(tree):
    """The floating-point leaves of ``tree`` as float64 NumPy arrays (the others as they are)."""
    return jax.tree.map(
        lambda a: np.asarray(a, np.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree
    )


@functools.cache
def _loss_and_grad(name: str):
    """Training-mode loss, new non-param state and gradient, in float64 (call with x64 on).

    Training mode: dropout with a key that depends on ``step`` only, batch norm with batch
    statistics. One jitted function per model, shared by the finite-difference check and the
    overfitting test, so that each model's backward pass compiles once.
    """
    case, model, *_ = _setup(name)

    def loss(params, state, inputs, targets, step):
        out, new_state = model.apply(
            {"params": params, **state},
            *inputs,
            train=True,
            rngs={"dropout": jax.random.fold_in(DROPOUT_KEY, step)},
            mutable=list(state),
        )
        return case.loss(out, targets), new_state

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_shapes(name):
    case, model, inputs, targets, variables, apply = _setup(name)
    out = apply(variables, *inputs)
    assert out.shape == case.out_shape
    assert out.dtype == jnp.float32
    assert jnp.shape(targets) == out.shape[: jnp.ndim(targets)]
    for in_shape, out_shape in case.extra_shapes:
        x = jnp.zeros(in_shape)
        shapes = jax.eval_shape(lambda x: model.apply(model.init(KEY, x), x), x)
        assert shapes.shape == out_shape


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    _, _, inputs, targets, variables, _ = _setup(name)
    params = _float64(variables["params"])
    state = _float64({k: v for k, v in variables.items() if k != "params"})
    inputs, targets = _float64(inputs), _float64(targets)
    rng = np.random.default_rng(2)
    v = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    eps = 1e-6
    step = 0  # the same dropout mask in every evaluation
    with jax.enable_x64(True):
        loss_and_grad = _loss_and_grad(name)

        def loss_at(s):  # the loss at p + s eps v, computed by the forward pass alone
            shifted = jax.tree.map(lambda p, d: p + s * eps * d, params, v)
            (loss, _), _ = loss_and_grad(shifted, state, inputs, targets, step)
            return loss

        (loss, _), grad = loss_and_grad(params, state, inputs, targets, step)
        assert loss.dtype == jnp.float64
        analytic = sum(
            np.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(v), strict=True)
        )
        numeric = (float(loss_at(1.0)) - float(loss_at(-1.0))) / (2 * eps)
    assert abs(analytic) > 1e-8  # the check is not vacuous
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def _adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam (Kingma and Ba, 2015) on NumPy pytrees: an update step that needs no compilation."""
    t = 0
    m = v = None

    def step(params, grads):
        nonlocal t, m, v
        grads = jax.tree.map(np.asarray, grads)
        if m is None:
            m = jax.tree.map(np.zeros_like, grads)
            v = jax.tree.map(np.zeros_like, grads)
        t += 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        return jax.tree.map(
            lambda p, m, v: p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps),
            params,
            m,
            v,
        )

    return step


@pytest.mark.parametrize("name", sorted(CASES))
def test_overfits_tiny_batch(name):
    case, _, inputs, targets, variables, apply = _setup(name)
    params = _float64(variables["params"])
    state = _float64({k: v for k, v in variables.items() if k != "params"})
    inputs64, targets64 = _float64(inputs), _float64(targets)
    adam = _adam(case.lr)
    loss_curve = []
    with jax.enable_x64(True):
        loss_and_grad = _loss_and_grad(name)
        for step in range(1, case.steps + 1):  # a new dropout mask each step
            (loss, state), grads = loss_and_grad(params, state, inputs64, targets64, step)
            params = adam(params, grads)
            loss_curve.append(float(loss))
    assert loss_curve[-1] < 0.2 * loss_curve[0]
    trained = jax.tree.map(lambda a: np.asarray(a, np.float32), {"params": params, **state})
    out = apply(trained, *inputs)  # eval mode
    assert bool(case.done(out, targets)), f"final training loss {loss_curve[-1]}"


# --- specific behaviour -------------------------------------------------------------------


def test_resnet_parameter_counts_match_the_paper():
    # He et al. (2016), table 6: 0.27M, 0.46M, 0.66M, 0.85M parameters.
    x = jnp.zeros((1, 32, 32, 3))
    for make, millions in [
        (models.resnet20, 0.27),
        (models.resnet32, 0.46),
        (models.resnet44, 0.66),
        (models.resnet56, 0.85),
    ]:
        shapes = jax.eval_shape(lambda m=make: m().init(KEY, x))
        n = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes["params"]))
        assert round(n / 1e6, 2) == millions
    out = jax.eval_shape(make().apply, shapes, x)  # the deepest, resnet56
    assert out.shape == (1, 10)


def test_resnet_depth_is_6n_plus_2_and_counts_conv_layers():
    model = models.ResNet(depth=14, widths=(2, 4, 4))
    variables = jax.eval_shape(model.init, KEY, jnp.zeros((1, 8, 8, 3)))
    kernels = [
        p
        for path, p in jax.tree_util.tree_leaves_with_path(variables["params"])
        if path[-1].key == "kernel"
    ]
    assert len(kernels) == 14  # 13 convolutions (shortcut A is parameter-free) + 1 dense


def test_resnet_shortcut_b_uses_projections():
    model = models.ResNet(depth=8, widths=(4, 6, 8), shortcut="B")
    variables = jax.eval_shape(model.init, KEY, jnp.zeros((1, 8, 8, 3)))
    block = variables["params"]["BasicBlock_1"]
    convs = {k: v["kernel"].shape for k, v in block.items() if "Conv" in k}
    assert convs == {"Conv_0": (3, 3, 4, 6), "Conv_1": (3, 3, 6, 6), "Conv_2": (1, 1, 4, 6)}
    out = jax.eval_shape(model.apply, variables, jnp.zeros((2, 8, 8, 3)))
    assert out.shape == (2, 10)


@functools.cache
def _train_mode(name: str):
    """``CASES[name]``'s model applied in training mode, jitted: ``(variables, x, key)``."""
    _, model, *_ = _setup(name)
    return jax.jit(
        lambda v, x, key: model.apply(
            v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]
        )
    )


def test_batch_norm_running_stats_update_in_train_mode_only():
    _, _, (x,), _, variables, apply = _setup("mlp_bn_dropout")
    _, updates = _train_mode("mlp_bn_dropout")(variables, x + 5.0, KEY)
    before = variables["batch_stats"]["BatchNorm_0"]["mean"]
    after = updates["batch_stats"]["BatchNorm_0"]["mean"]
    assert not np.allclose(before, after)
    assert apply(variables, x).shape == (16, 3)  # eval mode needs no mutable


def test_dropout_is_random_in_training_and_off_in_eval():
    _, _, (x,), _, v, apply = _setup("mlp_bn_dropout")  # dropout 0.1 after each hidden layer
    train = _train_mode("mlp_bn_dropout")
    (a, _), (b, _) = train(v, x, _key(1)), train(v, x, _key(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(apply(v, x), apply(v, x))


def test_rnn_classifier_ignores_padding():
    _, _, (tokens,), _, v, apply = _setup("rnn_classifier")  # rows of 2 to 6 tokens, then 0s
    assert int(jnp.sum(tokens == 0)) > 0
    longer = jnp.pad(tokens, ((0, 0), (0, 3)))
    np.testing.assert_allclose(apply(v, tokens), apply(v, longer), rtol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "sum", "max"])
def test_bag_of_embeddings_pooling_ignores_padding(pooling):
    model = models.BagOfEmbeddings(vocab_size=20, num_classes=2, embed_dim=4, pooling=pooling)
    tokens = jnp.array([[3, 4, 0], [5, 0, 0]])
    v = model.init(KEY, tokens)
    table = v["params"]["Embed_0"]["embedding"]
    pooled = {
        "mean": (table[3] + table[4]) / 2,
        "sum": table[3] + table[4],
        "max": jnp.maximum(table[3], table[4]),
    }[pooling]
    dense = v["params"]["Dense_0"]
    np.testing.assert_allclose(
        model.apply(v, tokens)[0], pooled @ dense["kernel"] + dense["bias"], rtol=1e-5
    )
    np.testing.assert_allclose(
        model.apply(v, tokens),
        model.apply(v, jnp.array([[4, 3, 0, 0], [5, 0, 0, 0]])),
        rtol=1e-6,
    )


def test_transformer_lm_is_causal():
    model = models.TransformerLM(
        vocab_size=10, d_model=8, num_heads=2, num_layers=2, d_ff=8, max_len=6
    )
    a = jnp.array([[1, 2, 3, 4, 5, 6]])
    b = jnp.array([[1, 2, 3, 9, 9, 9]])
    v = jax.jit(model.init)(KEY, a)
    out_a, out_b = jax.jit(model.apply)(v, jnp.concatenate([a, b]))
    np.testing.assert_allclose(out_a[:3], out_b[:3], rtol=1e-5)
    assert not np.allclose(out_a[3:], out_b[3:])


def test_seq2seq_greedy_decode_shape_and_consistency():
    _, model, (src, _), _, v, apply = _setup("seq2seq_transformer")  # vocabularies 13 and 12
    src = src.at[1:, 3:].set(0).at[3, 1:].set(0)  # padded sources too
    out = jax.jit(models.greedy_decode, static_argnums=(0, 3, 4))(model, v, src, 1, 5)
    assert out.shape == (4, 5) and out.dtype == jnp.int32
    tgt_in = jnp.concatenate([jnp.ones((4, 1), jnp.int32), out[:, :-1]], axis=1)
    np.testing.assert_array_equal(jnp.argmax(apply(v, src, tgt_in), -1), out)
    with pytest.raises(ValueError, match="length"):
        models.greedy_decode(model, v, src, bos_id=1, length=6)


def test_max_pool_2x2_equals_flax_max_pool():
    x = jax.random.normal(KEY, (2, 7, 9, 3))
    np.testing.assert_array_equal(models.max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu", "gelu", "elu"])
def test_mlp_activations(activation):
    model = models.MLP((3, 2), activation=activation)
    x = jnp.array([[0.5, -1.0]])
    v = model.init(KEY, x)
    p = v["params"]
    hidden = models.get_activation(activation)(x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
    expected = hidden @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
    np.testing.assert_allclose(model.apply(v, x), expected, rtol=1e-6)
    oracle = {
        "relu": jax.nn.relu,
        "sigmoid": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "leaky_relu": jax.nn.leaky_relu,
        "gelu": jax.nn.gelu,
        "elu": jax.nn.elu,
    }
    np.testing.assert_allclose(models.get_activation(activation)(x), oracle[activation](x))


# --- argument validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: models.MLP(()), ValueError, "features"),
        (lambda: models.MLP((0, 2)), ValueError, r"features\[0\]"),
        (lambda: models.MLP("10"), TypeError, "features"),
        (lambda: models.MLP((4,), activation="swish2"), ValueError, "activation"),
        (lambda: models.MLP((4,), dropout_rate=1.0), ValueError, "dropout_rate"),
        (lambda: models.CNN(num_classes=0), ValueError, "num_classes"),
        (lambda: models.CNN(channels=(8, 2.5)), TypeError, r"channels\[1\]"),
        (lambda: models.ResNet(depth=21), ValueError, "6n"),
        (lambda: models.ResNet(widths=(16, 32)), ValueError, "widths"),
        (lambda: models.ResNet(widths=(16, 8, 8)), ValueError, "widths"),
        (lambda: models.ResNet(shortcut="C"), ValueError, "shortcut"),
        (lambda: models.RNN(cell="rnn"), ValueError, "cell"),
        (lambda: models.RNN(hidden_size=0), ValueError, "hidden_size"),
        (lambda: models.RNNLanguageModel(10, 8, 16, tie_embeddings=True), ValueError, "tie"),
        (lambda: models.TransformerLM(10, d_model=10, num_heads=3), ValueError, "num_heads"),
        (lambda: models.Seq2SeqTransformer(0, 5), ValueError, "src_vocab_size"),
        (lambda: models.MatrixFactorization(3, 4, rank=0), ValueError, "rank"),
        (lambda: models.BagOfEmbeddings(10, pooling="median"), ValueError, "pooling"),
        (lambda: models.Linear(features=True), TypeError, "features"),
    ],
)
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="x must have shape"):
        models.CNN().init(KEY, jnp.zeros((2, 28)))
    with pytest.raises(ValueError, match="tokens must have shape"):
        models.RNNClassifier(10).init(KEY, jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match="pairs must have shape"):
        models.MatrixFactorization(3, 3).init(KEY, jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="max_len"):
        models.TransformerLM(10, d_model=8, num_heads=2, max_len=4).init(
            KEY, jnp.zeros((1, 5), jnp.int32)
        )
