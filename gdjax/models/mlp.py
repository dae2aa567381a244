"""Multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import Activation, check_ints, check_rate, get_activation

__all__ = ["MLP"]


class MLP(nn.Module):
    r"""A fully connected network on flattened inputs.

    ``features = (h_1, ..., h_L, K)`` gives ``L`` hidden layers
    :math:`a_\ell = \phi(\mathrm{BN}(W_\ell a_{\ell-1} + b_\ell))` followed by dropout, and a
    linear output layer of width ``K`` (logits or regression outputs, no activation).

    Attributes:
        features: widths of the hidden layers then the output layer (at least one entry).
        activation: ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"leaky_relu"``, ``"gelu"``,
            ``"elu"``, ``"silu"``, ``"identity"`` or a callable.
        dropout_rate: dropout after each hidden activation (active only with ``train=True``;
            needs ``rngs={"dropout": key}``).
        batch_norm: batch normalization before each hidden activation (with ``train=True`` pass
            ``mutable=["batch_stats"]``).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import MLP
        >>> model = MLP(features=(32, 32, 10), activation="tanh", dropout_rate=0.1, batch_norm=True)
        >>> x = jnp.ones((4, 28, 28, 1))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
        >>> logits, updates = jax.eval_shape(
        ...     lambda v: model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)},
        ...                           mutable=["batch_stats"]),
        ...     variables,
        ... )
        >>> logits.shape, list(updates)
        ((4, 10), ['batch_stats'])
        >>> jax.eval_shape(model.apply, variables, x).shape  # eval mode: running statistics
        (4, 10)
    """

    features: Sequence[int] = (128, 10)
    activation: Activation = "relu"
    dropout_rate: float = 0.0
    batch_norm: bool = False

    def __post_init__(self) -> None:
        check_ints("features", self.features)
        get_activation(self.activation)
        check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map ``x`` of shape ``(N, ...)`` to ``(N, features[-1])``.

        Args:
            x: inputs; all axes after the first are flattened.
            train: training mode (dropout on, batch statistics from the batch).
        """
        act = get_activation(self.activation)
        x = jnp.reshape(x, (x.shape[0], -1))
        for width in self.features[:-1]:
            x = nn.Dense(width, use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = act(x)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.features[-1])(x)
