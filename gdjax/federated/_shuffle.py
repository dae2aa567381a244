"""The engine's shuffle for a client whose size is only known inside the compiled round.

A round trains clients of different sizes in one vmapped program, so every client's order must
have one static length (the largest client's) while its first ``n`` entries must be exactly
the order ``gdjax.fit`` draws for ``n`` examples: :func:`gdjax.train.shuffle.permutation`.
:func:`padded_permutation` computes that order for a traced ``n``; the entries after the first
``n`` are filler that the round masks out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from gdjax.train import shuffle as engine

_U32_MAX = 0xFFFFFFFF


def _sorted_order(key: jax.Array, n: jax.Array, size: int) -> jax.Array:
    """``jax.random.permutation(key, n)`` (one sorting round, as for ``n <= 1024``), padded.

    ``jax.random.permutation`` splits the key once and sorts ``arange(n)`` by 32 random bits
    per element, stably. Random bits are drawn per index, so the first ``n`` of ``size`` bits
    are those of the unpadded draw; sorting the valid entries first, then by those bits, then
    by index, gives the same order.
    """
    _, subkey = jax.random.split(key)
    bits = jax.random.bits(subkey, (size,), jnp.uint32)
    idx = jnp.arange(size, dtype=jnp.int32)
    invalid = (idx >= n).astype(jnp.int32)
    _, _, order = lax.sort((invalid, bits, idx), num_keys=2, is_stable=True)
    return order


def _feistel_order(key: jax.Array, n: jax.Array, size: int) -> jax.Array:
    """The engine's keyed Feistel permutation of ``[0, n)`` for ``n > EXACT_MAX``, padded.

    The cipher works on ``m = ceil(log2 n)``-bit integers; here ``m`` is traced, so the domain
    is the static ``2**ceil(log2 size)`` integers and only those below ``2**m`` take part.
    """
    big_m = max((size - 1).bit_length(), 1)
    n = n.astype(jnp.uint32)
    m = jnp.uint32(32) - lax.clz(n - jnp.uint32(1))  # ceil(log2 n) for n >= 2
    keys = jax.random.bits(key, (engine.ROUNDS,), jnp.uint32)
    j = jnp.arange(2**big_m, dtype=jnp.uint32)
    v = j
    hi_bits, lo_bits = m // 2, m - m // 2
    one = jnp.uint32(1)
    for i in range(engine.ROUNDS):
        hi, lo = v >> lo_bits, v & ((one << lo_bits) - one)
        f = engine._mix32(lo ^ keys[i]) & ((one << hi_bits) - one)
        v = (lo << hi_bits) | (hi ^ f)
        hi_bits, lo_bits = lo_bits, hi_bits
    keep = (j < (one << m)) & (v < n)
    (kept,) = jnp.nonzero(keep, size=size, fill_value=0)
    return v[kept].astype(jnp.int32)


def padded_permutation(key: jax.Array, n: jax.Array, size: int) -> jax.Array:
    """An int32 array of length ``size`` whose first ``n`` entries are ``permutation(key, n)``.

    ``permutation`` is :func:`gdjax.train.shuffle.permutation`, the order ``gdjax.fit`` draws;
    ``n`` may be traced (``1 <= n <= size``), ``size`` is static. Entries from ``n`` on are
    filler indices in ``[0, size)``.

    Examples:
        >>> import jax, numpy as np
        >>> from gdjax.train.shuffle import permutation
        >>> from gdjax.federated._shuffle import padded_permutation
        >>> k = jax.random.key(1)
        >>> p = padded_permutation(k, jax.numpy.int32(70), 100)
        >>> bool((p[:70] == permutation(k, 70)).all())
        True
    """
    n = jnp.asarray(n, jnp.int32)
    if size <= engine.EXACT_MAX:
        return _sorted_order(key, n, size)
    small = _sorted_order(key, n, size)
    large = _feistel_order(key, n, size)
    return jnp.where(n <= engine.EXACT_MAX, small, large)
