"""A 2-D convolution that stays fast inside compiled training loops on XLA:CPU.

On XLA:CPU a convolution inside a ``while`` loop — which is what ``lax.scan`` and therefore
:func:`gdjax.fit`'s epoch program compile to — is not rewritten into the layout the fast
(Eigen/oneDNN) convolution kernels need, and the gradient convolutions fall back to a naive
loop: a small CNN's training step measured 12-18x slower inside ``scan`` than outside it
(see ``docs/performance.md``; upstream: jax-ml/jax#12868). :class:`Conv` computes the same
convolution as an explicit patch matrix times the kernel (``im2col``): matrix multiplications
only, whose gradients are matrix multiplications, slices and pads — fast in and out of loops.
On GPU and TPU the ``"auto"`` implementation keeps XLA's native convolution.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal, get_args

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

from gdjax.models._common import check_choice, check_int

__all__ = ["Conv", "conv2d_patches"]

ConvImplementation = Literal["auto", "patches", "xla"]
IMPLEMENTATIONS = get_args(ConvImplementation)


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        check_int(name, value)
        return (value, value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        for v in value:
            check_int(name, v)
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{name} must be a positive int or a pair of them; got {value!r}")


def conv2d_patches(
    x: jax.Array,
    kernel: jax.Array,
    strides: int | Sequence[int] = 1,
    padding: Literal["SAME", "VALID"] = "SAME",
) -> jax.Array:
    r"""2-D convolution of NHWC images with an HWIO kernel, as patches times the kernel.

    .. math::
        y_{n,h,w,o} = \sum_{i<k_h}\sum_{j<k_w}\sum_{c}
            \tilde x_{n,\, s_h h + i,\, s_w w + j,\, c}\; K_{i,j,c,o}

    where :math:`\tilde x` is :math:`x` zero-padded as ``lax.conv_general_dilated`` pads it
    for ``padding``. The :math:`k_h k_w` strided slices of :math:`\tilde x` are concatenated on
    the channel axis into a patch matrix of :math:`k_h k_w C` columns, which multiplies the
    kernel reshaped to :math:`(k_h k_w C, O)`. Same values as
    ``lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=("NHWC",
    "HWIO", "NHWC"))``, without a convolution op.

    Args:
        x: images ``(N, H, W, C)``.
        kernel: ``(k_h, k_w, C, O)``.
        strides: an int or a pair ``(s_h, s_w)``.
        padding: ``"SAME"`` or ``"VALID"``.

    Returns:
        ``(N, H', W', O)``.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
        >>> k = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
        >>> y = conv2d_patches(x, k, strides=2)
        >>> ref = jax.lax.conv_general_dilated(x, k, (2, 2), "SAME",
        ...                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
        >>> bool(jnp.allclose(y, ref, atol=1e-4)), y.shape
        (True, (2, 4, 4, 4))
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C); got {x.shape}")
    if kernel.ndim != 4 or kernel.shape[2] != x.shape[3]:
        raise ValueError(
            f"kernel must have shape (k_h, k_w, C, O) with C = {x.shape[3]} (x's channels); "
            f"got {kernel.shape}"
        )
    check_choice("padding", padding, ("SAME", "VALID"))
    sh, sw = _pair("strides", strides)
    kh, kw, c, o = kernel.shape
    (pt, pb), (pl, pr) = lax.padtype_to_pads(x.shape[1:3], (kh, kw), (sh, sw), padding)
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(
            f"kernel {kernel.shape[:2]} is larger than the padded image {xp.shape[1:3]}"
        )
    cols = [
        xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
    return patches @ kernel.reshape(kh * kw * c, o)


class Conv(nn.Module):
    """2-D convolution (NHWC) with ``flax.linen.Conv``'s parameters, fast inside ``scan`` on CPU.

    The parameters are ``kernel`` ``(k_h, k_w, C, features)`` and ``bias`` ``(features,)``,
    initialised as ``nn.Conv`` initialises them (LeCun normal, zeros), so a model may switch
    between this module and ``nn.Conv`` without changing its parameter tree.

    Attributes:
        features: output channels.
        kernel_size: an int or a pair.
        strides: an int or a pair.
        padding: ``"SAME"`` or ``"VALID"``.
        use_bias: add a learned bias.
        implementation: ``"patches"`` (:func:`conv2d_patches`), ``"xla"``
            (``lax.conv_general_dilated``) or ``"auto"``: patches on CPU, XLA's convolution on
            GPU and TPU (chosen when the model is traced).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import Conv
        >>> layer = Conv(8, kernel_size=3)
        >>> x = jnp.ones((2, 28, 28, 1))
        >>> variables = jax.eval_shape(layer.init, jax.random.key(0), x)  # shapes only
        >>> {name: p.shape for name, p in variables["params"].items()}
        {'bias': (8,), 'kernel': (3, 3, 1, 8)}
        >>> jax.eval_shape(layer.apply, variables, x).shape
        (2, 28, 28, 8)
    """

    features: int
    kernel_size: int | Sequence[int] = 3
    strides: int | Sequence[int] = 1
    padding: Literal["SAME", "VALID"] = "SAME"
    use_bias: bool = True
    implementation: ConvImplementation = "auto"

    def __post_init__(self) -> None:
        check_int("features", self.features)
        _pair("kernel_size", self.kernel_size)
        _pair("strides", self.strides)
        check_choice("padding", self.padding, ("SAME", "VALID"))
        check_choice("implementation", self.implementation, IMPLEMENTATIONS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Convolve ``(N, H, W, C)`` images to ``(N, H', W', features)``."""
        if x.ndim != 4:
            raise ValueError(f"x must have shape (N, H, W, C); got {x.shape}")
        kh, kw = _pair("kernel_size", self.kernel_size)
        strides = _pair("strides", self.strides)
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features)
        )
        impl = self.implementation
        if impl == "auto":
            impl = "patches" if jax.default_backend() == "cpu" else "xla"
        x, kernel = promote_dtype(x, kernel)
        if impl == "patches":
            y = conv2d_patches(x, kernel, strides, self.padding)
        else:
            y = lax.conv_general_dilated(
                x, kernel, strides, self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y
