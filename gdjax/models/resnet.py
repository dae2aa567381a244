"""ResNet for CIFAR-style 32x32 images (He et al., 2016, section 4.2), depth 6n+2."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import check_choice, check_int, check_ints
from gdjax.models.conv import IMPLEMENTATIONS, Conv, ConvImplementation

__all__ = ["BasicBlock", "ResNet", "resnet20", "resnet32", "resnet44", "resnet56"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or downsampling) shortcut.

    Attributes:
        features: output channels.
        strides: stride of the first convolution (2 to halve the resolution).
        shortcut: ``"A"`` (parameter-free: subsample and zero-pad channels, as in the paper's
            CIFAR experiments) or ``"B"`` (1x1 convolution + batch norm) when the shape changes.
        conv_implementation: see :class:`Conv`.
    """

    features: int
    strides: int = 1
    shortcut: str = "A"
    conv_implementation: ConvImplementation = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Apply the block to ``(N, H, W, C)`` features."""
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)  # noqa: E731
        conv = partial(Conv, use_bias=False, implementation=self.conv_implementation)
        y = conv(self.features, 3, self.strides)(x)
        y = nn.relu(norm()(y))
        y = conv(self.features, 3)(y)
        y = norm()(y)
        if x.shape[-1] != self.features or self.strides != 1:
            if self.shortcut == "A":
                x = x[:, :: self.strides, :: self.strides, :]
                pad = self.features - x.shape[-1]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (pad // 2, pad - pad // 2)))
            else:
                x = conv(self.features, 1, self.strides)(x)
                x = norm()(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    r"""CIFAR ResNet of depth :math:`6n + 2`.

    A 3x3 convolution with ``widths[0]`` channels, then three stages of :math:`n` basic blocks
    with ``widths`` channels (the second and third halve the resolution), global average pooling
    and a dense layer: :math:`2 \cdot 3n` convolutions in blocks, plus the first convolution and
    the classifier, is :math:`6n + 2` layers. ResNet-20/32/44/56 have about 0.27M, 0.46M,
    0.66M and 0.85M parameters with shortcut ``"A"``. Batch norm throughout: call with
    ``train=True, mutable=["batch_stats"]`` to train.

    Attributes:
        depth: :math:`6n + 2` with :math:`n \ge 1` (8, 14, 20, 32, 44, 56, 110, ...).
        num_classes: number of output logits.
        widths: channels of the three stages.
        shortcut: ``"A"`` or ``"B"``, see :class:`BasicBlock`.
        conv_implementation: how the convolutions are computed, see :class:`Conv`
            (``"auto"``: patch matrix products on CPU, XLA's convolution elsewhere).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import resnet20
        >>> model = resnet20()
        >>> x = jnp.ones((2, 32, 32, 3))
        >>> variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
        >>> sum(p.size for p in jax.tree.leaves(variables["params"]))
        269722
        >>> logits, updates = jax.eval_shape(
        ...     lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]), variables
        ... )
        >>> logits.shape
        (2, 10)
    """

    depth: int = 20
    num_classes: int = 10
    widths: Sequence[int] = (16, 32, 64)
    shortcut: str = "A"
    conv_implementation: ConvImplementation = "auto"

    def __post_init__(self) -> None:
        check_int("depth", self.depth, low=8)
        if (self.depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 (8, 14, 20, 32, ...); got {self.depth}")
        check_int("num_classes", self.num_classes)
        check_ints("widths", self.widths)
        if len(self.widths) != 3:
            raise ValueError(f"widths must have 3 entries (one per stage); got {self.widths}")
        check_choice("shortcut", self.shortcut, ("A", "B"))
        check_choice("conv_implementation", self.conv_implementation, IMPLEMENTATIONS)
        if self.shortcut == "A" and list(self.widths) != sorted(self.widths):
            raise ValueError(
                f"widths must be non-decreasing with shortcut 'A' (it zero-pads channels); "
                f"got {self.widths}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map images ``(N, H, W, C)`` to logits ``(N, num_classes)``."""
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, H, W, C); got {x.shape}")
        n = (self.depth - 2) // 6
        x = Conv(self.widths[0], 3, use_bias=False, implementation=self.conv_implementation)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        for stage, width in enumerate(self.widths):
            for block in range(n):
                strides = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(width, strides, self.shortcut, self.conv_implementation)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


def resnet20(num_classes: int = 10, **kwargs) -> ResNet:
    """ResNet-20 (n = 3): ``ResNet(depth=20, ...)``."""
    return ResNet(depth=20, num_classes=num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs) -> ResNet:
    """ResNet-32 (n = 5)."""
    return ResNet(depth=32, num_classes=num_classes, **kwargs)


def resnet44(num_classes: int = 10, **kwargs) -> ResNet:
    """ResNet-44 (n = 7)."""
    return ResNet(depth=44, num_classes=num_classes, **kwargs)


def resnet56(num_classes: int = 10, **kwargs) -> ResNet:
    """ResNet-56 (n = 9)."""
    return ResNet(depth=56, num_classes=num_classes, **kwargs)
