"""Flax (linen) models with pure ``init``/``apply``.

Every model is called as ``model.apply(variables, x, train=...)``. Models with dropout need
``rngs={"dropout": key}`` when ``train=True``; models with batch normalization need
``mutable=["batch_stats"]`` when ``train=True`` and then return ``(outputs, updates)``.
"""

from gdjax.models._common import ACTIVATIONS, get_activation
from gdjax.models.cnn import CNN, max_pool_2x2
from gdjax.models.conv import Conv, conv2d_patches
from gdjax.models.embedding import BagOfEmbeddings, MatrixFactorization
from gdjax.models.linear import Linear, LinearSVM, LogisticRegression
from gdjax.models.mlp import MLP
from gdjax.models.recurrent import RNN, RNNClassifier, RNNLanguageModel
from gdjax.models.resnet import BasicBlock, ResNet, resnet20, resnet32, resnet44, resnet56
from gdjax.models.transformer import (
    Seq2SeqTransformer,
    TransformerBlock,
    TransformerLM,
    greedy_decode,
)

#: Alias: a single-layer network is a :class:`Linear` layer.
SingleLayerNetwork = Linear

__all__ = [
    "ACTIVATIONS",
    "CNN",
    "MLP",
    "RNN",
    "BagOfEmbeddings",
    "BasicBlock",
    "Conv",
    "Linear",
    "LinearSVM",
    "LogisticRegression",
    "MatrixFactorization",
    "RNNClassifier",
    "RNNLanguageModel",
    "ResNet",
    "Seq2SeqTransformer",
    "SingleLayerNetwork",
    "TransformerBlock",
    "TransformerLM",
    "conv2d_patches",
    "get_activation",
    "greedy_decode",
    "max_pool_2x2",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
]
