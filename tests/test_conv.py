"""The patch-matrix convolution against XLA's own convolution (the oracle)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax.models import CNN, Conv, ResNet, conv2d_patches

DN = ("NHWC", "HWIO", "NHWC")
# Parameter initialisation with "rbg" keys: XLA:CPU takes seconds to compile the default
# (threefry) generator's bits for each 4-D kernel shape; the tests check convolutions, not it.
KEY = jax.random.key(0, impl="rbg")


def _normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


CASES = [
    # (image H, W), kernel (kh, kw), strides, padding
    ((8, 8), (3, 3), (1, 1), "SAME"),
    ((8, 8), (3, 3), (2, 2), "SAME"),
    ((7, 9), (3, 3), (2, 2), "SAME"),
    ((7, 9), (5, 3), (2, 1), "SAME"),
    ((8, 8), (1, 1), (2, 2), "SAME"),
    ((7, 7), (3, 3), (1, 1), "VALID"),
    ((9, 8), (3, 2), (2, 3), "VALID"),
]


@pytest.mark.parametrize(("hw", "ksize", "strides", "padding"), CASES)
def test_values_and_gradients_equal_xla_convolution(hw, ksize, strides, padding):
    x = _normal(0, (2, *hw, 3))
    kernel = _normal(1, (*ksize, 3, 4))

    def ours(x, k):
        return conv2d_patches(x, k, strides, padding)

    def xla(x, k):
        return jax.lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=DN)

    @functools.partial(jax.jit, static_argnums=0)  # compiled, not op by op: faster
    def values_and_gradients(conv, x, kernel, cotangent):
        y, vjp = jax.vjp(conv, x, kernel)
        return y, vjp(cotangent)

    cotangent = _normal(2, jax.eval_shape(xla, x, kernel).shape)
    y, grads = values_and_gradients(ours, x, kernel, cotangent)
    y_ref, grads_ref = values_and_gradients(xla, x, kernel, cotangent)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_int_strides_mean_both_axes():
    x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1)
    k = jnp.ones((3, 3, 1, 2))
    np.testing.assert_array_equal(conv2d_patches(x, k, 2), conv2d_patches(x, k, (2, 2)))


def test_patch_convolution_has_no_convolution_op_forward_or_backward():
    """The point of it: XLA:CPU never sees a convolution, so nothing falls back to a naive loop."""
    x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4))

    def patches(x, k):
        return jnp.sum(conv2d_patches(x, k, 2) ** 2)

    def xla(x, k):
        return jnp.sum(
            jax.lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=DN) ** 2
        )

    assert "conv_general_dilated" not in str(jax.make_jaxpr(jax.grad(patches, (0, 1)))(x, k))
    assert "conv_general_dilated" in str(jax.make_jaxpr(jax.grad(xla, (0, 1)))(x, k))


def test_module_has_flax_convs_parameters_and_outputs():
    x = _normal(3, (2, 9, 9, 3))
    ours = Conv(5, kernel_size=3, strides=2)
    flax_conv = nn.Conv(5, (3, 3), (2, 2), padding="SAME")
    v_ours = ours.init(KEY, x)
    v_flax = flax_conv.init(KEY, x)
    assert jax.tree.structure(v_ours) == jax.tree.structure(v_flax)
    jax.tree.map(np.testing.assert_array_equal, v_ours, v_flax)  # same initial values too
    np.testing.assert_allclose(
        ours.apply(v_ours, x), flax_conv.apply(v_flax, x), rtol=1e-5, atol=1e-5
    )
    no_bias = jax.eval_shape(Conv(5, 1, use_bias=False).init, KEY, x)["params"]
    assert set(no_bias) == {"kernel"}


def test_auto_uses_patches_on_cpu_and_xla_is_selectable():
    x = jnp.ones((1, 8, 8, 1))
    for impl, has_conv in [
        ("auto", jax.default_backend() != "cpu"),
        ("patches", False),
        ("xla", True),
    ]:
        layer = Conv(2, 3, implementation=impl)
        v = jax.eval_shape(layer.init, KEY, x)
        jaxpr = str(jax.make_jaxpr(layer.apply)(v, x))
        assert ("conv_general_dilated" in jaxpr) == has_conv, impl


@pytest.mark.parametrize(
    ("make", "convolutions", "gradients"),
    [
        (lambda: CNN(num_classes=3, channels=(4, 8), dense=8, batch_norm=True), 2, True),
        # 7 convolutions and 2 projections; outputs only. Its gradient through patch
        # convolutions is checked against finite differences in test_models.py (shortcut "A"),
        # the 1x1 stride-2 projection's against XLA above: compiling two ResNet backward passes
        # here would take longer than the rest of this file.
        (lambda: ResNet(depth=8, num_classes=3, widths=(4, 8, 8), shortcut="B"), 9, False),
    ],
    ids=["cnn", "resnet"],
)
def test_models_give_the_same_outputs_and_gradients_with_either_implementation(
    make, convolutions, gradients
):
    x = _normal(4, (2, 8, 8, 3))
    patches, xla = (
        make().clone(conv_implementation="patches"),
        make().clone(conv_implementation="xla"),
    )
    variables = jax.jit(patches.init)(KEY, x)
    assert jax.tree.structure(variables) == jax.tree.structure(jax.eval_shape(xla.init, KEY, x))
    for model, count in [(patches, 0), (xla, convolutions)]:  # it reaches every convolution
        jaxpr = str(jax.make_jaxpr(model.apply)(variables, x))
        assert jaxpr.count("conv_general_dilated") == count

    def outputs_and_gradients(model):
        def loss(params):
            out, _ = model.apply(
                {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
            )
            return jnp.sum(out**2), out

        if gradients:
            loss = jax.value_and_grad(loss, has_aux=True)
        return jax.jit(loss)(variables["params"])

    for got, want in zip(
        jax.tree.leaves(outputs_and_gradients(patches)),
        jax.tree.leaves(outputs_and_gradients(xla)),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: Conv(0), ValueError, "features"),
        (lambda: Conv(2, kernel_size=(3, 3, 3)), TypeError, "kernel_size"),
        (lambda: Conv(2, strides=0), ValueError, "strides"),
        (lambda: Conv(2, padding="FULL"), ValueError, "padding"),
        (lambda: Conv(2, implementation="cudnn"), ValueError, "implementation"),
        (lambda: CNN(conv_implementation="fft"), ValueError, "conv_implementation"),
        (lambda: ResNet(conv_implementation="fft"), ValueError, "conv_implementation"),
        (lambda: conv2d_patches(jnp.ones((8, 8, 3)), jnp.ones((3, 3, 3, 2))), ValueError, "x must"),
        (
            lambda: conv2d_patches(jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 2, 2))),
            ValueError,
            "C = 3",
        ),
        (
            lambda: conv2d_patches(jnp.ones((1, 2, 2, 1)), jnp.ones((3, 3, 1, 1)), padding="VALID"),
            ValueError,
            "larger than",
        ),
    ],
)
def test_bad_arguments_name_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()
