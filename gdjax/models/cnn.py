"""A small convolutional network for 28x28 (MNIST-like) and 32x32 (CIFAR-like) images."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import (
    Activation,
    check_choice,
    check_int,
    check_ints,
    check_rate,
    get_activation,
)
from gdjax.models.conv import IMPLEMENTATIONS, Conv, ConvImplementation

__all__ = ["CNN", "max_pool_2x2"]


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 (``VALID``: an odd last row/column is dropped).

    Same values as ``nn.max_pool(x, (2, 2), strides=(2, 2))``, written as a reshape and a
    ``max`` reduction, whose gradient is element-wise: on XLA:CPU the backward pass measured
    about 2x faster than the ``select_and_scatter`` that ``max_pool`` differentiates to.
    """
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return jnp.max(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class CNN(nn.Module):
    r"""Convolution stages then a dense head.

    Each stage is a 3x3 convolution (``same`` padding), optional batch norm, the activation and
    2x2 max pooling; the head flattens, applies a dense layer of width ``dense`` with the
    activation and dropout, then a linear layer to ``num_classes`` logits. With the defaults a
    28x28x1 input becomes 7x7x64 before the head (about 0.42M parameters) and 32x32x3 becomes
    8x8x64.

    Attributes:
        num_classes: number of output logits.
        channels: output channels of each convolution stage.
        dense: width of the hidden dense layer (0 for none).
        activation: activation name or callable (see :class:`MLP`).
        dropout_rate: dropout before the output layer (with ``train=True``).
        batch_norm: batch normalization after each convolution.
        conv_implementation: how the convolutions are computed, see :class:`Conv`
            (``"auto"``: as a patch matrix product on CPU, where XLA's convolution is slow
            inside ``scan`` and so inside :func:`gdjax.fit`; XLA's convolution elsewhere).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import CNN
        >>> model = CNN(num_classes=10)  # channels (32, 64), dense 128
        >>> x = jnp.ones((2, 28, 28, 1))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
        >>> sum(p.size for p in jax.tree.leaves(variables["params"]))  # about 0.42M
        421642
        >>> jax.eval_shape(model.apply, variables, x).shape
        (2, 10)
    """

    num_classes: int = 10
    channels: Sequence[int] = (32, 64)
    dense: int = 128
    activation: Activation = "relu"
    dropout_rate: float = 0.0
    batch_norm: bool = False
    conv_implementation: ConvImplementation = "auto"

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes)
        check_ints("channels", self.channels)
        check_int("dense", self.dense, low=0)
        get_activation(self.activation)
        check_rate("dropout_rate", self.dropout_rate)
        check_choice("conv_implementation", self.conv_implementation, IMPLEMENTATIONS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map images ``(N, H, W, C)`` (or ``(N, H, W)``) to logits ``(N, num_classes)``."""
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, H, W, C) or (N, H, W); got {x.shape}")
        act = get_activation(self.activation)
        for c in self.channels:
            x = Conv(c, 3, use_bias=not self.batch_norm, implementation=self.conv_implementation)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = max_pool_2x2(act(x))
        x = jnp.reshape(x, (x.shape[0], -1))
        if self.dense:
            x = act(nn.Dense(self.dense)(x))
        if self.dropout_rate > 0:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)
