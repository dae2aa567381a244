"""The engine's sort-free shuffle: a bijection, deterministic per key, and statistically random
(scipy's tests as the oracle)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gdjax.train.shuffle import EXACT_MAX, permutation


@pytest.mark.parametrize("n", [0, 1, 7, EXACT_MAX])
def test_small_n_is_jax_random_permutation(n):
    key = jax.random.key(3)
    np.testing.assert_array_equal(permutation(key, n), jax.random.permutation(key, n))


@pytest.mark.parametrize("n", [EXACT_MAX + 1, 1500, 2048, 2049, 70_001])
def test_every_index_exactly_once(n):
    for seed in range(3):
        p = np.asarray(permutation(jax.random.key(seed), n))
        assert p.dtype == np.int32 and p.shape == (n,)
        np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_deterministic_per_key_and_works_under_jit():
    n = 5000
    a = permutation(jax.random.key(1), n)
    b = jax.jit(permutation, static_argnums=1)(jax.random.key(1), n)
    c = permutation(jax.random.key(2), n)
    np.testing.assert_array_equal(a, b)
    assert (np.asarray(a) != np.asarray(c)).mean() > 0.99
    raw = permutation(jax.random.PRNGKey(1), n)  # raw uint32 keys work too
    np.testing.assert_array_equal(np.sort(raw), np.arange(n))


def test_statistically_random():
    n, draws = 1500, 3000
    keys = jax.random.split(jax.random.key(11), draws)
    perms = np.asarray(jax.vmap(lambda k: permutation(k, n))(keys))
    # where element 0 lands, and what lands first: uniform over 30 equal bins
    for sample in (np.argmax(perms == 0, axis=1), perms[:, 0]):
        counts = np.bincount(sample * 30 // n, minlength=30)
        assert stats.chisquare(counts).pvalue > 1e-3
    # the first two outputs are independent (10 x 10 contingency table)
    table = np.histogram2d(perms[:, 0], perms[:, 1], bins=10)[0]
    assert stats.chi2_contingency(table).pvalue > 1e-3
    # fixed points of a uniform permutation: Poisson(1), mean 1, sd 1 (so 1/sqrt(draws) here)
    fixed = (perms == np.arange(n)).sum(axis=1)
    assert abs(fixed.mean() - 1.0) < 5 / np.sqrt(draws)
    # no leftover order: rank correlation with the identity is ~0 for every draw
    rho = np.array([stats.spearmanr(np.arange(n), p)[0] for p in perms[:200]])
    assert np.abs(rho).max() < 0.15 and abs(rho.mean()) < 0.01


@pytest.mark.parametrize("bad", [-1, 2.0, True, jnp.int32(5)])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="n must be"):
        permutation(jax.random.key(0), bad)
