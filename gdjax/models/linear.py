"""Single-layer models: linear/softmax regression, logistic regression, linear SVM."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import check_int

__all__ = ["Linear", "LinearSVM", "LogisticRegression"]


class Linear(nn.Module):
    r"""A single-layer network :math:`f(x) = W x + b` on flattened inputs.

    With ``features=1`` and :func:`gdjax.losses.mse` it is linear regression; with ``features=K``
    and :func:`gdjax.losses.softmax_cross_entropy` it is softmax (multinomial logistic)
    regression.

    Attributes:
        features: number of outputs.
        use_bias: add the bias :math:`b`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import Linear
        >>> model = Linear(features=3)
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> assert model.apply(params, jnp.ones((5, 4))).shape == (5, 3)
    """

    features: int = 1
    use_bias: bool = True

    def __post_init__(self) -> None:
        check_int("features", self.features)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map ``x`` of shape ``(N, ...)`` to outputs ``(N, features)``; ``train`` is unused."""
        x = jnp.reshape(x, (x.shape[0], -1))
        return nn.Dense(self.features, use_bias=self.use_bias)(x)


class LogisticRegression(nn.Module):
    r"""Binary logistic regression: returns the logit :math:`w^\top x + b` of shape ``(N,)``.

    Train with :func:`gdjax.losses.sigmoid_binary_cross_entropy` on labels in ``{0, 1}``;
    :math:`P(y = 1 \mid x) = \sigma(\text{logit})`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import LogisticRegression
        >>> model = LogisticRegression()
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> assert model.apply(params, jnp.ones((5, 4))).shape == (5,)
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Logits of shape ``(N,)`` for inputs ``(N, ...)``; ``train`` is unused."""
        return Linear(1, name="linear")(x)[:, 0]


class LinearSVM(nn.Module):
    r"""Linear support vector machine: returns the score :math:`w^\top x + b` of shape ``(N,)``.

    Train with :func:`gdjax.losses.hinge` on labels in ``{-1, +1}`` plus an
    :func:`gdjax.losses.l2_penalty` on the weights (the soft-margin SVM primal); predict
    ``sign(score)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import LinearSVM
        >>> model = LinearSVM()
        >>> params = model.init(jax.random.key(0), jnp.ones((1, 4)))
        >>> assert model.apply(params, jnp.ones((5, 4))).shape == (5,)
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Scores of shape ``(N,)`` for inputs ``(N, ...)``; ``train`` is unused."""
        return Linear(1, name="linear")(x)[:, 0]
