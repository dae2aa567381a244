"""The model summary: parameters counted by hand, and a dense layer's FLOPs (2nm + m)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gdjax


def test_counts_per_layer_bytes_and_dense_flops(capsys):
    n, m, batch = 5, 7, 3
    model = nn.Dense(m)
    x = jnp.ones((batch, n))
    variables = jax.jit(model.init)(jax.random.key(0), x)
    s = gdjax.summary(variables, model.apply, x)
    [layer] = s.layers
    assert layer.name == "params"
    assert layer.shapes == {"kernel": (n, m), "bias": (m,)}
    assert layer.params == s.params == n * m + m
    assert layer.bytes == s.bytes == 4 * (n * m + m)  # float32
    # x @ W: n multiplies and n adds per output; + b: one add per output
    assert s.flops_per_example == 2 * n * m + m
    printed = capsys.readouterr().out
    assert printed.strip() == str(s)
    assert "Total" in printed and "kernel (5, 7)" in printed and "FLOPs per example: 77" in printed


def test_layers_of_a_network_and_mixed_dtypes():
    params = {
        "Dense_0": {"kernel": np.zeros((3, 4), np.float32), "bias": np.zeros(4, np.float32)},
        "Dense_1": {"kernel": np.zeros((4, 2), jnp.bfloat16), "bias": np.zeros(2, jnp.bfloat16)},
        "scale": np.ones((), np.float64),
    }
    s = gdjax.summary(params, show=False)
    assert [(layer.name, layer.params, layer.bytes) for layer in s.layers] == [
        ("Dense_0", 16, 64),
        ("Dense_1", 10, 20),
        ("scale", 1, 8),
    ]
    assert (s.params, s.bytes, s.flops_per_example) == (27, 92, None)
    assert "FLOPs" not in str(s)
    with pytest.raises(ValueError, match="fn and batch together"):
        gdjax.summary(params, lambda p, x: x, show=False)
