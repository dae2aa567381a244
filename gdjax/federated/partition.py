"""Split a data set among simulated clients: IID, label shards (pathological non-IID), Dirichlet.

Each partitioner returns one sorted array of example indices per client; together they hold
every index exactly once. :func:`split` turns them into the list of client data sets that
:func:`gdjax.federated.fit` takes. A federation of your own is just such a list, built any way
you like (one data set per user, per hospital, per phone...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

Seed = int | np.random.Generator


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")
    return np.random.default_rng(int(seed))


def _check_count(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _labels(labels: Any) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got shape {y.shape} {y.dtype}")
    if y.size == 0:
        raise ValueError("labels is empty")
    return y


def iid(num_examples: int, num_clients: int, *, seed: Seed = 0) -> list[np.ndarray]:
    """Shuffle the examples and deal them out: client sizes differ by at most one.

    Args:
        num_examples: Size ``N`` of the data set.
        num_clients: Number of clients ``K`` (``<= N``).
        seed: An int or a ``numpy.random.Generator``.

    Returns:
        ``K`` sorted index arrays partitioning ``range(N)``.

    Examples:
        >>> from gdjax.federated import partition
        >>> [len(p) for p in partition.iid(10, 3)]
        [4, 3, 3]
    """
    n = _check_count(num_examples, "num_examples")
    k = _check_count(num_clients, "num_clients")
    if k > n:
        raise ValueError(f"num_clients={k} is more than num_examples={n}: a client would be empty")
    order = _rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def label_shards(
    labels: Any, num_clients: int, labels_per_client: int = 2, *, seed: Seed = 0
) -> list[np.ndarray]:
    """McMahan et al.'s pathological non-IID split: each client gets a few shards of one label.

    The examples are sorted by label (in random order within a label), each label's examples
    are cut into equal shards, ``num_clients * labels_per_client`` shards in all, and every
    client gets ``labels_per_client`` shards. Shards are dealt at random and then swapped
    between clients until no client holds two shards of the same label, so each client sees
    exactly ``labels_per_client`` labels. (McMahan et al., 2017, give each of 100 MNIST clients
    two shards of 300 sorted examples.)

    Args:
        labels: Integer class labels of the ``N`` examples.
        num_clients: Number of clients ``K``.
        labels_per_client: Shards, hence labels, per client (``k``); at most the number of
            distinct labels ``L``.
        seed: An int or a ``numpy.random.Generator``.

    Returns:
        ``K`` sorted index arrays partitioning ``range(N)``.

    Raises:
        ValueError: ``K * k`` is not a multiple of ``L`` (the labels could not be cut into
            equal numbers of shards), or a label has fewer examples than shards.

    Examples:
        >>> import numpy as np
        >>> from gdjax.federated import partition
        >>> y = np.repeat(np.arange(4), 6)
        >>> parts = partition.label_shards(y, num_clients=4, labels_per_client=2)
        >>> [len(set(y[p])) for p in parts]
        [2, 2, 2, 2]
    """
    y = _labels(labels)
    clients = _check_count(num_clients, "num_clients")
    k = _check_count(labels_per_client, "labels_per_client")
    classes = np.unique(y)
    if k > len(classes):
        raise ValueError(
            f"labels_per_client={k} is more than the {len(classes)} distinct labels in labels"
        )
    shards = clients * k
    if shards % len(classes):
        raise ValueError(
            f"num_clients * labels_per_client = {shards} shards cannot be split evenly over "
            f"{len(classes)} labels; choose sizes whose product is a multiple of {len(classes)}"
        )
    per_label = shards // len(classes)
    rng = _rng(seed)
    pieces, shard_label = [], []
    for c in classes:
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) < per_label:
            raise ValueError(
                f"label {c} has {len(members)} examples, fewer than its {per_label} shards"
            )
        pieces += np.array_split(members, per_label)
        shard_label += [c] * per_label
    shard_label = np.asarray(shard_label)
    owner = rng.permutation(np.repeat(np.arange(clients), k))
    _repair(owner, shard_label, rng)
    return [
        np.sort(np.concatenate([pieces[s] for s in np.flatnonzero(owner == c)]))
        for c in range(clients)
    ]


def _repair(owner: np.ndarray, shard_label: np.ndarray, rng: np.random.Generator) -> None:
    """Swap shards between clients until no client holds two shards of one label (in place)."""
    for _ in range(100 * len(owner)):
        dup = [
            s
            for s in range(len(owner))
            if np.sum((owner == owner[s]) & (shard_label == shard_label[s])) > 1
        ]
        if not dup:
            return
        s = dup[rng.integers(len(dup))]
        t = rng.integers(len(owner))
        a, b = owner[s], owner[t]
        if a == b:
            continue
        labels_a = set(shard_label[owner == a]) - {shard_label[s]}
        labels_b = set(shard_label[(owner == b) & (np.arange(len(owner)) != t)])
        if shard_label[t] not in labels_a and shard_label[s] not in labels_b:
            owner[s], owner[t] = b, a
    raise RuntimeError("could not deal the shards so that no client repeats a label")


def dirichlet(
    labels: Any,
    num_clients: int,
    alpha: float,
    *,
    min_size: int = 1,
    seed: Seed = 0,
    max_tries: int = 100,
) -> list[np.ndarray]:
    r"""Label skew of tunable strength: each label's examples are spread by Dirichlet draws.

    For every label ``c``, proportions :math:`p_c \sim \mathrm{Dir}(\alpha \mathbf{1}_K)`
    over the ``K`` clients split that label's (shuffled) examples. Small ``alpha`` gives each
    client few labels and very unequal sizes; large ``alpha`` approaches an IID split (Hsu et
    al., 2019). Draws that leave a client with fewer than ``min_size`` examples are redrawn.

    Args:
        labels: Integer class labels of the ``N`` examples.
        num_clients: Number of clients ``K``.
        alpha: Concentration ``> 0``.
        min_size: Smallest acceptable client (``>= 1``: :func:`gdjax.federated.fit` refuses
            empty clients).
        seed: An int or a ``numpy.random.Generator``.
        max_tries: Redraws allowed before giving up.

    Returns:
        ``K`` sorted index arrays partitioning ``range(N)``.

    Raises:
        ValueError: No draw within ``max_tries`` gave every client ``min_size`` examples
            (raise ``alpha`` or lower ``min_size``).

    Examples:
        >>> import numpy as np
        >>> from gdjax.federated import partition
        >>> y = np.repeat(np.arange(3), 50)
        >>> parts = partition.dirichlet(y, num_clients=5, alpha=0.5, min_size=5)
        >>> sum(len(p) for p in parts), min(len(p) for p in parts) >= 5
        (150, True)
    """
    y = _labels(labels)
    clients = _check_count(num_clients, "num_clients")
    low = _check_count(min_size, "min_size")
    tries = _check_count(max_tries, "max_tries")
    if not (isinstance(alpha, int | float | np.floating) and alpha > 0):
        raise ValueError(f"alpha must be a number > 0, got {alpha!r}")
    if clients * low > len(y):
        raise ValueError(
            f"{clients} clients of at least min_size={low} need {clients * low} examples; "
            f"labels has {len(y)}"
        )
    rng = _rng(seed)
    for _ in range(tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            p = rng.dirichlet(np.full(clients, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(members)).astype(int)
            for client, piece in enumerate(np.split(members, cuts)):
                parts[client].append(piece)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in out) >= low:
            return out
    raise ValueError(
        f"no Dirichlet(alpha={alpha}) draw in {tries} tries gave all {clients} clients at "
        f"least min_size={low} examples; raise alpha or lower min_size"
    )


def split(data: Any, parts: Sequence[Any]) -> list[Any]:
    """The client data sets: ``data`` (a pytree of arrays sharing the leading axis) indexed by
    each part.

    Examples:
        >>> import numpy as np
        >>> from gdjax.federated import partition
        >>> x, y = np.arange(6.0)[:, None], np.arange(6)
        >>> clients = partition.split((x, y), [np.array([0, 1]), np.array([2, 3, 4, 5])])
        >>> [c[1].tolist() for c in clients]
        [[0, 1], [2, 3, 4, 5]]
    """
    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError("data must be an array or a pytree of arrays; got no arrays")
    n = np.shape(leaves[0])[0] if np.ndim(leaves[0]) else 0
    out = []
    for i, part in enumerate(parts):
        idx = np.asarray(part)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"parts[{i}] must be a 1-D integer index array, got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"parts[{i}] has indices outside [0, {n})")
        out.append(jax.tree.map(lambda a, idx=idx: np.asarray(a)[idx], data))
    return out
