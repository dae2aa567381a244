"""Recurrent networks (LSTM, GRU): sequence regression, text classification, language models."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gdjax.models._common import check_choice, check_int, check_rate

__all__ = ["RNN", "RNNClassifier", "RNNLanguageModel"]

_CELLS = ("lstm", "gru")


def _cell(kind: str, hidden_size: int) -> nn.RNNCellBase:
    return nn.OptimizedLSTMCell(hidden_size) if kind == "lstm" else nn.GRUCell(hidden_size)


def _hidden(kind: str, carry) -> jax.Array:
    return carry[1] if kind == "lstm" else carry  # LSTM carry is (c, h)


class _Stack(nn.Module):
    """``num_layers`` recurrent layers; returns all outputs and the top layer's last hidden."""

    cell: str
    hidden_size: int
    num_layers: int
    dropout_rate: float

    @nn.compact
    def __call__(self, x: jax.Array, seq_lengths: jax.Array | None, train: bool):
        carry = None
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            rnn = nn.RNN(_cell(self.cell, self.hidden_size), name=f"rnn_{layer}")
            # Zero initial state in the inputs' dtype (the cells' default is their param dtype,
            # which breaks the scan when the model runs in float64).
            h0 = jnp.zeros((*x.shape[:-2], self.hidden_size), x.dtype)
            init = (h0, h0) if self.cell == "lstm" else h0
            carry, x = rnn(x, initial_carry=init, seq_lengths=seq_lengths, return_carry=True)
        return x, _hidden(self.cell, carry)


class RNN(nn.Module):
    """Recurrent network for real-valued sequences, e.g. time-series regression.

    Input ``(N, T, F)``; output ``(N, num_outputs)`` read from the last hidden state, or
    ``(N, T, num_outputs)`` with ``return_sequences=True``.

    Attributes:
        hidden_size: units per recurrent layer.
        num_outputs: width of the linear read-out.
        cell: ``"lstm"`` or ``"gru"``.
        num_layers: stacked recurrent layers.
        return_sequences: read out every time step instead of the last.
        dropout_rate: dropout between stacked layers and before the read-out (``train=True``).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import RNN
        >>> model = RNN(hidden_size=8, num_outputs=1, cell="gru")
        >>> x = jnp.ones((4, 12, 3))  # 4 windows of 12 steps with 3 features
        >>> params = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
        >>> jax.eval_shape(model.apply, params, x).shape
        (4, 1)
        >>> per_step = RNN(hidden_size=8, num_outputs=1, cell="gru", return_sequences=True)
        >>> jax.eval_shape(per_step.apply, params, x).shape
        (4, 12, 1)
    """

    hidden_size: int = 32
    num_outputs: int = 1
    cell: str = "lstm"
    num_layers: int = 1
    return_sequences: bool = False
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        check_int("hidden_size", self.hidden_size)
        check_int("num_outputs", self.num_outputs)
        check_choice("cell", self.cell, _CELLS)
        check_int("num_layers", self.num_layers)
        check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Map ``(N, T, F)`` (or ``(N, T)``, one feature) to outputs."""
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3:
            raise ValueError(f"x must have shape (N, T, F) or (N, T); got {x.shape}")
        seq, last = _Stack(self.cell, self.hidden_size, self.num_layers, self.dropout_rate)(
            x, None, train
        )
        h = seq if self.return_sequences else last
        if self.dropout_rate > 0:
            h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
        return nn.Dense(self.num_outputs)(h)


class RNNClassifier(nn.Module):
    """Embedding + recurrent network classifier for padded token sequences (e.g. sentiment).

    Token id ``0`` is padding: each sequence's length is its number of non-zero tokens up to
    the last one (use post-padding, as :func:`gdjax.data.pad_sequences` does by default), and
    the class scores are read from the hidden state at the last real token.

    Attributes:
        vocab_size: number of token ids (including padding 0 and unknown 1).
        num_classes: number of output logits (use 1 with a binary loss, or 2).
        embed_dim: embedding width.
        hidden_size: recurrent units.
        cell: ``"lstm"`` or ``"gru"``.
        num_layers: stacked recurrent layers.
        dropout_rate: dropout on embeddings, between layers and before the read-out.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import RNNClassifier
        >>> model = RNNClassifier(vocab_size=100, num_classes=2, embed_dim=8, hidden_size=8)
        >>> tokens = jnp.array([[5, 7, 9, 0, 0], [3, 4, 0, 0, 0]])  # 0 is padding
        >>> params = jax.eval_shape(model.init, jax.random.key(0), tokens)  # shapes only
        >>> jax.eval_shape(model.apply, params, tokens).shape
        (2, 2)
    """

    vocab_size: int
    num_classes: int = 2
    embed_dim: int = 64
    hidden_size: int = 64
    cell: str = "lstm"
    num_layers: int = 1
    dropout_rate: float = 0.0

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size)
        check_int("num_classes", self.num_classes)
        check_int("embed_dim", self.embed_dim)
        check_int("hidden_size", self.hidden_size)
        check_choice("cell", self.cell, _CELLS)
        check_int("num_layers", self.num_layers)
        check_rate("dropout_rate", self.dropout_rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        """Map int tokens ``(N, T)`` to logits ``(N, num_classes)``."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (N, T); got {tokens.shape}")
        positions = jnp.arange(1, tokens.shape[1] + 1)
        lengths = jnp.max(jnp.where(tokens != 0, positions, 0), axis=1)
        lengths = jnp.maximum(lengths, 1)  # an all-padding row reads the first step
        x = nn.Embed(self.vocab_size, self.embed_dim)(tokens)
        if self.dropout_rate > 0:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        _, h = _Stack(self.cell, self.hidden_size, self.num_layers, self.dropout_rate)(
            x, lengths, train
        )
        if self.dropout_rate > 0:
            h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
        return nn.Dense(self.num_classes)(h)


class RNNLanguageModel(nn.Module):
    """Character- or word-level recurrent language model.

    Maps tokens ``(N, T)`` to next-token logits ``(N, T, vocab_size)``: position ``t`` predicts
    token ``t + 1``. Train with :func:`gdjax.losses.softmax_cross_entropy` on
    ``(inputs, targets)`` pairs from :func:`gdjax.data.lm_windows`.

    Attributes:
        vocab_size: vocabulary size.
        embed_dim: embedding width.
        hidden_size: recurrent units per layer.
        cell: ``"lstm"`` or ``"gru"``.
        num_layers: stacked recurrent layers.
        dropout_rate: dropout on embeddings, between layers and before the output layer.
        tie_embeddings: compute logits with the transposed embedding matrix (needs
            ``hidden_size == embed_dim``).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from gdjax.models import RNNLanguageModel
        >>> model = RNNLanguageModel(vocab_size=30, embed_dim=8, hidden_size=16)
        >>> tokens = jnp.zeros((2, 10), jnp.int32)
        >>> params = jax.jit(model.init)(jax.random.key(0), tokens)
        >>> assert jax.jit(model.apply)(params, tokens).shape == (2, 10, 30)
    """

    vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 128
    cell: str = "lstm"
    num_layers: int = 1
    dropout_rate: float = 0.0
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size)
        check_int("embed_dim", self.embed_dim)
        check_int("hidden_size", self.hidden_size)
        check_choice("cell", self.cell, _CELLS)
        check_int("num_layers", self.num_layers)
        check_rate("dropout_rate", self.dropout_rate)
        if self.tie_embeddings and self.hidden_size != self.embed_dim:
            raise ValueError(
                "tie_embeddings needs hidden_size == embed_dim; got "
                f"{self.hidden_size} and {self.embed_dim}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        """Map int tokens ``(N, T)`` to logits ``(N, T, vocab_size)``."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (N, T); got {tokens.shape}")
        embed = nn.Embed(self.vocab_size, self.embed_dim)
        x = embed(tokens)
        drop = lambda v: (  # noqa: E731
            nn.Dropout(self.dropout_rate, deterministic=not train)(v) if self.dropout_rate else v
        )
        x = drop(x)
        x, _ = _Stack(self.cell, self.hidden_size, self.num_layers, self.dropout_rate)(
            x, None, train
        )
        x = drop(x)
        if self.tie_embeddings:
            return embed.attend(x)
        return nn.Dense(self.vocab_size)(x)
