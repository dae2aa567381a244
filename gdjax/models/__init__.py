"""Flax (linen) models with pure ``init``/``apply``.

Every model is called as ``model.apply(variables, x, train=...)``. Models with dropout need
``rngs={"dropout": key}`` when ``train=True``; models with batch normalization need
``mutable=["batch_stats"]`` when ``train=True`` and then return ``(outputs, updates)``.
"""

from gdjax.models._common import ACTIVATIONS, get_activation
from gdjax.models.cnn import CNN
from gdjax.models.linear import Linear, LinearSVM, LogisticRegression
from gdjax.models.mlp import MLP

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "MLP",
    "Linear",
    "LinearSVM",
    "LogisticRegression",
    "get_activation",
]
