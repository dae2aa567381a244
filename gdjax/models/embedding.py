"""Embedding models: matrix factorization for collaborative filtering, bag-of-embeddings text."""

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

__all__ = ["BagOfEmbeddings", "MatrixFactorization"]


class MatrixFactorization(nn.Module):
    r"""Rating model :math:`\hat r_{ui} = p_u^\top q_i + b_u + b_i + \mu`.

    Attributes:
        num_users: number of user ids ``0 .. num_users - 1``.
        num_items: number of item ids.
        rank: latent dimension of :math:`p_u, q_i`.
        use_bias: learn user, item and global biases.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import MatrixFactorization
        >>> model = MatrixFactorization(num_users=5, num_items=7, rank=3)
        >>> pairs = jnp.array([[0, 1], [4, 6]])  # (user, item)
        >>> params = jax.jit(model.init)(jax.random.key(0), pairs)
        >>> assert jax.jit(model.apply)(params, pairs).shape == (2,)
    """

    num_users: int
    num_items: int
    rank: int = 16
    use_bias: bool = True

    def __post_init__(self) -> None:
        check_int("num_users", self.num_users)
        check_int("num_items", self.num_items)
        check_int("rank", self.rank)
        super().__post_init__()

    @nn.compact
    def __call__(self, pairs: jax.Array, train: bool = False) -> jax.Array:
        """Predicted ratings ``(N,)`` for int ``(user, item)`` pairs of shape ``(N, 2)``."""
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(f"pairs must have shape (N, 2) of (user, item) ids; got {pairs.shape}")
        users, items = pairs[:, 0], pairs[:, 1]
        init = nn.initializers.normal(0.1)
        p = nn.Embed(self.num_users, self.rank, embedding_init=init, name="users")(users)
        q = nn.Embed(self.num_items, self.rank, embedding_init=init, name="items")(items)
        r = jnp.sum(p * q, axis=-1)
        if self.use_bias:
            zeros = nn.initializers.zeros
            r = r + nn.Embed(self.num_users, 1, embedding_init=zeros, name="user_bias")(users)[:, 0]
            r = r + nn.Embed(self.num_items, 1, embedding_init=zeros, name="item_bias")(items)[:, 0]
            r = r + self.param("global_bias", zeros, ())
        return r


class BagOfEmbeddings(nn.Module):
    """Text classifier: pool token embeddings (ignoring padding id 0), then an MLP head.

    Attributes:
        vocab_size: number of token ids.
        num_classes: output logits.
        embed_dim: embedding width.
        hidden: widths of hidden dense layers after pooling (may be empty).
        pooling: ``"mean"``, ``"sum"`` or ``"max"`` over non-padding tokens.
        activation: activation of the hidden layers.
        dropout_rate: dropout after pooling and hidden layers.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import BagOfEmbeddings
        >>> model = BagOfEmbeddings(vocab_size=50, num_classes=2, embed_dim=8, hidden=(16,))
        >>> tokens = jnp.array([[4, 9, 2, 0], [7, 0, 0, 0]])
        >>> params = jax.jit(model.init)(jax.random.key(0), tokens)
        >>> assert jax.jit(model.apply)(params, tokens).shape == (2, 2)
    """

    vocab_size: int
    num_classes: int = 2
    embed_dim: int = 64
    hidden: Sequence[int] = ()
    pooling: str = "mean"
    activation: Activation = "relu"
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size)
        check_int("num_classes", self.num_classes)
        check_int("embed_dim", self.embed_dim)
        check_ints("hidden", self.hidden, allow_empty=True)
        check_choice("pooling", self.pooling, ("mean", "sum", "max"))
        get_activation(self.activation)
        check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        """Map int tokens ``(N, T)`` to logits ``(N, num_classes)``."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (N, T); got {tokens.shape}")
        mask = (tokens != 0)[..., None]
        e = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        if self.pooling == "max":
            x = jnp.max(jnp.where(mask, e, -jnp.inf), axis=1)
            x = jnp.where(jnp.any(mask, axis=1), x, 0.0)
        else:
            x = jnp.sum(jnp.where(mask, e, 0.0), axis=1)
            if self.pooling == "mean":
                x = x / jnp.maximum(jnp.sum(mask, axis=1), 1)
        drop = nn.Dropout(self.dropout_rate, deterministic=not train)
        act = get_activation(self.activation)
        x = drop(x)
        for width in self.hidden:
            x = drop(act(nn.Dense(width)(x)))
        return nn.Dense(self.num_classes)(x)
