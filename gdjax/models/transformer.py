"""Small Transformers: decoder-only language model and encoder-decoder (toy translation).

Pre-layer-norm blocks (Xiong et al., 2020), learned position embeddings, token id ``0`` is
padding. Both models share their block code, so a model pre-trained on one task (e.g. copying
or a language-model objective) can be fine-tuned on another with the same parameter tree.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import check_int, check_rate

__all__ = ["Seq2SeqTransformer", "TransformerBlock", "TransformerLM", "greedy_decode"]


class TransformerBlock(nn.Module):
    """Pre-LN block: self-attention, optional cross-attention, then a ReLU feed-forward layer.

    Attributes:
        d_model: model width.
        num_heads: attention heads (must divide ``d_model``).
        d_ff: feed-forward hidden width.
        dropout_rate: dropout on attention weights and residual branches.
    """

    d_model: int
    num_heads: int
    d_ff: int
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        mask: jax.Array | None,
        memory: jax.Array | None = None,
        memory_mask: jax.Array | None = None,
        train: bool = False,
    ) -> jax.Array:
        """Apply the block to ``(N, T, d_model)`` with boolean masks ``(N, 1, T, T_k)``."""
        drop = nn.Dropout(self.dropout_rate, deterministic=not train)
        attn = lambda name: nn.MultiHeadDotProductAttention(  # noqa: E731
            self.num_heads, dropout_rate=self.dropout_rate, deterministic=not train, name=name
        )
        x = x + drop(attn("self_attention")(nn.LayerNorm()(x), mask=mask))
        if memory is not None:
            h = attn("cross_attention")(nn.LayerNorm()(x), memory, mask=memory_mask)
            x = x + drop(h)
        h = nn.Dense(self.d_ff)(nn.LayerNorm()(x))
        h = nn.Dense(self.d_model)(nn.relu(h))
        return x + drop(h)


def _check(module: nn.Module) -> None:
    for name in ("d_model", "num_heads", "num_layers", "d_ff", "max_len"):
        check_int(name, getattr(module, name))
    if module.d_model % module.num_heads:
        raise ValueError(
            f"num_heads must divide d_model; got d_model={module.d_model}, "
            f"num_heads={module.num_heads}"
        )
    check_rate("dropout_rate", module.dropout_rate)


class _Embed(nn.Module):
    vocab_size: int
    d_model: int
    max_len: int
    dropout_rate: float

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool) -> jax.Array:
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (N, T); got {tokens.shape}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len={self.max_len}")
        x = nn.Embed(self.vocab_size, self.d_model, name="tokens")(tokens)
        x = x * jnp.sqrt(self.d_model).astype(x.dtype)
        pos = nn.Embed(self.max_len, self.d_model, name="positions")(jnp.arange(tokens.shape[1]))
        return nn.Dropout(self.dropout_rate, deterministic=not train)(x + pos)


class TransformerLM(nn.Module):
    """Decoder-only (GPT-style) Transformer: tokens ``(N, T)`` -> next-token logits ``(N, T, V)``.

    Causal self-attention: position ``t`` sees tokens ``<= t``, so post-padding never affects
    real tokens (mask padded targets in the loss with ``where=targets != 0``).

    Attributes:
        vocab_size: vocabulary size ``V`` (id 0 is padding).
        d_model: model width.
        num_heads: attention heads.
        num_layers: blocks.
        d_ff: feed-forward width.
        max_len: longest sequence (size of the position table).
        dropout_rate: dropout rate (``train=True`` needs ``rngs={"dropout": key}``).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import TransformerLM
        >>> model = TransformerLM(vocab_size=20, d_model=16, num_heads=2, num_layers=1, d_ff=32,
        ...                       max_len=12)
        >>> tokens = jnp.ones((2, 12), jnp.int32)
        >>> params = jax.jit(model.init)(jax.random.key(0), tokens)
        >>> assert jax.jit(model.apply)(params, tokens).shape == (2, 12, 20)
    """

    vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 128
    max_len: int = 128
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size)
        _check(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        """Next-token logits ``(N, T, vocab_size)``."""
        x = _Embed(self.vocab_size, self.d_model, self.max_len, self.dropout_rate)(tokens, train)
        mask = nn.make_causal_mask(tokens)
        for i in range(self.num_layers):
            x = TransformerBlock(
                self.d_model, self.num_heads, self.d_ff, self.dropout_rate, name=f"block_{i}"
            )(x, mask, train=train)
        return nn.Dense(self.vocab_size)(nn.LayerNorm()(x))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence tasks such as toy translation.

    ``apply(params, src, tgt_in)`` returns logits ``(N, T_tgt, tgt_vocab_size)`` for the next
    target token at each position (teacher forcing: ``tgt_in`` is the target shifted right
    behind a begin-of-sequence id). Source padding (id 0) is masked in the encoder and in
    cross-attention; the decoder is causal. Use ``method="encode"`` / ``method="decode"`` or
    :func:`greedy_decode` to generate.

    Attributes:
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        d_model: model width.
        num_heads: attention heads.
        num_layers: encoder blocks and decoder blocks (each).
        d_ff: feed-forward width.
        max_len: longest source or target sequence.
        dropout_rate: dropout rate.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import Seq2SeqTransformer
        >>> model = Seq2SeqTransformer(src_vocab_size=12, tgt_vocab_size=14, d_model=16,
        ...                            num_heads=2, num_layers=1, d_ff=32, max_len=10)
        >>> src, tgt_in = jnp.ones((2, 7), jnp.int32), jnp.ones((2, 5), jnp.int32)
        >>> params = jax.eval_shape(model.init, jax.random.key(0), src, tgt_in)  # shapes only
        >>> jax.eval_shape(model.apply, params, src, tgt_in).shape  # logits
        (2, 5, 14)
        >>> jax.eval_shape(lambda p: model.apply(p, src, method="encode"), params).shape
        (2, 7, 16)
    """

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 128
    max_len: int = 64
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        check_int("src_vocab_size", self.src_vocab_size)
        check_int("tgt_vocab_size", self.tgt_vocab_size)
        _check(self)
        super().__post_init__()

    def setup(self) -> None:
        """Create the embeddings and blocks."""
        args = (self.d_model, self.num_heads, self.d_ff, self.dropout_rate)
        self.src_embed = _Embed(self.src_vocab_size, self.d_model, self.max_len, self.dropout_rate)
        self.tgt_embed = _Embed(self.tgt_vocab_size, self.d_model, self.max_len, self.dropout_rate)
        self.encoder = [TransformerBlock(*args) for _ in range(self.num_layers)]
        self.decoder = [TransformerBlock(*args) for _ in range(self.num_layers)]
        self.encoder_norm = nn.LayerNorm()
        self.decoder_norm = nn.LayerNorm()
        self.head = nn.Dense(self.tgt_vocab_size)

    def encode(self, src: jax.Array, train: bool = False) -> jax.Array:
        """Encode source tokens ``(N, S)`` to memory ``(N, S, d_model)``."""
        x = self.src_embed(src, train)
        mask = nn.make_attention_mask(src != 0, src != 0)
        for block in self.encoder:
            x = block(x, mask, train=train)
        return self.encoder_norm(x)

    def decode(
        self, memory: jax.Array, src: jax.Array, tgt_in: jax.Array, train: bool = False
    ) -> jax.Array:
        """Logits ``(N, T, tgt_vocab_size)`` from encoder memory and decoder inputs."""
        x = self.tgt_embed(tgt_in, train)
        mask = nn.make_causal_mask(tgt_in)
        memory_mask = nn.make_attention_mask(jnp.ones_like(tgt_in, bool), src != 0)
        for block in self.decoder:
            x = block(x, mask, memory, memory_mask, train=train)
        return self.head(self.decoder_norm(x))

    def __call__(self, src: jax.Array, tgt_in: jax.Array, train: bool = False) -> jax.Array:
        """Teacher-forced logits ``(N, T_tgt, tgt_vocab_size)``."""
        return self.decode(self.encode(src, train), src, tgt_in, train)


def greedy_decode(
    model: Seq2SeqTransformer, params: Any, src: jax.Array, bos_id: int, length: int
) -> jax.Array:
    """Generate ``length`` target tokens per source row by greedy (argmax) decoding.

    Args:
        model: a :class:`Seq2SeqTransformer`.
        params: its variables.
        src: source tokens ``(N, S)``.
        bos_id: begin-of-sequence id fed as the first decoder input.
        length: tokens to generate (``<= model.max_len``).

    Returns:
        Tokens ``(N, length)`` (without the leading ``bos_id``).
    """
    check_int("length", length)
    if length > model.max_len:
        raise ValueError(f"length must be <= max_len={model.max_len}; got {length}")
    memory = model.apply(params, src, method="encode")
    out = jnp.full((src.shape[0], length + 1), bos_id, jnp.int32)

    def body(t, out):
        logits = model.apply(params, memory, src, out[:, :length], method="decode")
        return out.at[:, t + 1].set(jnp.argmax(logits[:, t], axis=-1).astype(jnp.int32))

    return jax.lax.fori_loop(0, length, body, out)[:, 1:]
