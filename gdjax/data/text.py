"""Text: tokenizer, vocabulary, padding, the IMDB reviews reader and a language-model corpus."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from gdjax.data._files import DataFileError, as_path

__all__ = [
    "PAD",
    "UNK",
    "Vocabulary",
    "build_vocabulary",
    "lm_windows",
    "load_imdb",
    "load_text_corpus",
    "pad_sequences",
    "read_imdb",
    "tokenize",
]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_IMDB_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")
_IMDB_HOW = (
    "Download the Large Movie Review Dataset (aclImdb_v1.tar.gz), unpack it with "
    "gdjax.data.extract_archive(archive, folder) (or tar xzf) and pass data_dir= the "
    "aclImdb/ folder or its parent."
)


def tokenize(text: str, level: str = "word") -> list[str]:
    """Split text into tokens.

    ``"word"``: lower-case, HTML line breaks (``<br />``) removed, runs of letters/digits with
    an optional apostrophe suffix (``"don't"``); punctuation is dropped. ``"char"``: every
    character.

    Examples:
        >>> from gdjax.data import tokenize
        >>> assert tokenize("Great film!<br />Don't miss it.") == ["great", "film", "don't", "miss", "it"]
        >>> assert tokenize("ab c", level="char") == ["a", "b", " ", "c"]
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    if level == "char":
        return list(text)
    if level != "word":
        raise ValueError(f"level must be 'word' or 'char'; got {level!r}")
    return _WORD.findall(_BR.sub(" ", text).lower())


class Vocabulary:
    """A token <-> id map with ``<pad>`` = 0 and ``<unk>`` = 1.

    Attributes:
        tokens: the tokens in id order (``tokens[0] == "<pad>"``, ``tokens[1] == "<unk>"``).
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        """Build from tokens in id order; the first two must be ``<pad>`` and ``<unk>``."""
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"tokens must start with {PAD!r}, {UNK!r}; got {tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be unique")
        self.tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids (unknown tokens to 1)."""
        return [self._index.get(t, 1) for t in tokens]

    def decode(self, ids: Iterable[int], sep: str = " ") -> str:
        """Map ids back to text, skipping padding."""
        return sep.join(self.tokens[int(i)] for i in ids if int(i) != 0)


def build_vocabulary(
    texts: Iterable[Sequence[str]], max_size: int | None = None, min_count: int = 1
) -> Vocabulary:
    """Vocabulary of the most frequent tokens (ties broken alphabetically, so it is stable).

    Args:
        texts: tokenized texts (lists of tokens).
        max_size: keep at most this many tokens *including* ``<pad>`` and ``<unk>`` (e.g.
            ``10_000`` for the top 9,998 words); ``None`` keeps all.
        min_count: drop tokens seen fewer times.

    Examples:
        >>> from gdjax.data import build_vocabulary
        >>> vocab = build_vocabulary([["a", "b", "a"], ["c", "a", "b"]], max_size=4)
        >>> assert vocab.tokens == ["<pad>", "<unk>", "a", "b"]
        >>> assert vocab.encode(["a", "c"]) == [2, 1]
    """
    if max_size is not None and (not isinstance(max_size, int) or max_size < 2):
        raise ValueError(f"max_size must be an int >= 2 (room for <pad>, <unk>); got {max_size!r}")
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an int >= 1; got {min_count!r}")
    counts: Counter[str] = Counter()
    for tokens in texts:
        counts.update(tokens)
    for special in (PAD, UNK):
        counts.pop(special, None)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
        ranked = ranked[: max_size - 2]
    return Vocabulary([PAD, UNK, *ranked])


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    length: int,
    *,
    padding: str = "post",
    truncating: str = "post",
    value: int = 0,
) -> np.ndarray:
    """Pad or truncate id sequences to a fixed length.

    Args:
        sequences: lists of ids.
        length: output length.
        padding: ``"post"`` (append ``value``) or ``"pre"``.
        truncating: ``"post"`` (keep the first ``length`` ids) or ``"pre"`` (keep the last).
        value: the padding id.

    Returns:
        ``int32`` array ``(N, length)``.
    """
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError(f"length must be an int >= 1; got {length!r}")
    for name, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post'; got {v!r}")
    out = np.full((len(sequences), length), value, np.int32)
    for i, seq in enumerate(sequences):
        seq = list(seq)
        seq = seq[:length] if truncating == "post" else seq[-length:]
        if seq:
            if padding == "post":
                out[i, : len(seq)] = seq
            else:
                out[i, length - len(seq) :] = seq
    return out


def _imdb_root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None:
        raise ValueError(f"data_dir is required for IMDB. {_IMDB_HOW}")
    root = as_path("data_dir", data_dir)
    if (root / "aclImdb").is_dir() and not (root / "train").is_dir():
        root = root / "aclImdb"
    return root


def _check_inside(path: Path, root: Path, *, folder: bool = False) -> None:
    """Refuse a folder or a review that resolves outside ``root`` (a symbolic link), or a review
    that is not a regular file (a FIFO or a device would hang or read forever)."""
    real = path
    if folder or path.is_symlink():  # a plain entry of a checked folder is inside it
        real = path.resolve()
        if not real.is_relative_to(root):
            raise DataFileError(path, f"leads to {real}, outside the IMDB folder {root}; refused")
    if not folder and not real.is_file():
        raise DataFileError(path, "not a regular file; refused")


def read_imdb(split: str, data_dir: str | os.PathLike | None) -> tuple[list[str], np.ndarray]:
    """Read the raw reviews of the IMDB ``aclImdb/`` directory.

    Layout: ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (ratings 7–10 in ``pos``,
    1–4 in ``neg``); ``unsup/`` is ignored. Files are read in (label, id) order.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: the ``aclImdb`` folder or its parent.

    Returns:
        ``(texts, labels)``: review strings and ``int32`` labels (1 positive, 0 negative).

    Raises:
        FileNotFoundError: if ``{split}/pos`` or ``{split}/neg`` is missing.
        DataFileError: if a file name is not ``<id>_<rating>.txt``, a rating contradicts its
            folder (mislabelled), a file is not UTF-8, a folder holds no reviews, or a review
            is a symbolic link leading out of the ``aclImdb`` folder or not a regular file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    root = _imdb_root(data_dir)
    inside = root.resolve()
    texts: list[str] = []
    labels: list[int] = []
    for label, name, ok in ((0, "neg", range(1, 5)), (1, "pos", range(7, 11))):
        folder = root / split / name
        if not folder.is_dir():
            raise FileNotFoundError(f"IMDB folder not found: {folder}. {_IMDB_HOW}")
        _check_inside(folder, inside, folder=True)
        entries = []
        for path in folder.iterdir():
            _check_inside(path, inside)
            m = _IMDB_NAME.match(path.name)
            if m is None:
                raise DataFileError(path, "file name is not <id>_<rating>.txt")
            rating = int(m.group(2))
            if rating not in ok:
                raise DataFileError(
                    path,
                    f"mislabelled: rating {rating} in {name}/ (expects {ok.start}..{ok.stop - 1})",
                )
            entries.append((int(m.group(1)), path))
        if not entries:
            raise DataFileError(folder, "no reviews (*.txt) found")
        for _, path in sorted(entries):
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError as e:
                raise DataFileError(path, f"not UTF-8 text ({e})") from e
            labels.append(label)
    return texts, np.asarray(labels, np.int32)


def load_imdb(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    num_words: int = 10_000,
    maxlen: int = 200,
    vocabulary: Vocabulary | None = None,
) -> tuple[np.ndarray, np.ndarray, Vocabulary]:
    """IMDB sentiment data as padded token ids.

    Reviews are tokenized with :func:`tokenize`, mapped through a vocabulary of the
    ``num_words`` most frequent *training* words (built from the train split when
    ``vocabulary`` is ``None``, also for ``split="test"``: no test statistics are used), and
    padded/truncated at the end to ``maxlen``.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: the ``aclImdb`` folder or its parent.
        num_words: vocabulary size including ``<pad>`` (0) and ``<unk>`` (1).
        maxlen: sequence length.
        vocabulary: reuse a vocabulary (e.g. the one returned for the train split).

    Returns:
        ``(tokens, labels, vocabulary)``: ``int32`` ``(N, maxlen)``, ``int32`` ``(N,)``.
    """
    texts, labels = read_imdb(split, data_dir)
    tokenized = [tokenize(t) for t in texts]
    if vocabulary is None:
        train = (
            tokenized
            if split == "train"
            else [tokenize(t) for t in read_imdb("train", data_dir)[0]]
        )
        vocabulary = build_vocabulary(train, max_size=num_words)
    ids = [vocabulary.encode(t) for t in tokenized]
    return pad_sequences(ids, maxlen), labels, vocabulary


def load_text_corpus(
    path: str | os.PathLike,
    level: str = "char",
    *,
    vocabulary: Vocabulary | None = None,
    max_size: int | None = None,
) -> tuple[np.ndarray, Vocabulary]:
    """Read a UTF-8 text file as one stream of token ids for language modelling.

    Args:
        path: a plain-text file (e.g. a book from a public-domain library).
        level: ``"char"`` (characters, case kept) or ``"word"`` (see :func:`tokenize`).
        vocabulary: reuse a vocabulary (e.g. built on the training file); else one is built
            from this file.
        max_size: vocabulary size cap when building (``None``: all tokens).

    Returns:
        ``(ids, vocabulary)``: ``int32`` ids ``(L,)``. Cut them with :func:`lm_windows`.

    Raises:
        FileNotFoundError: if the file is missing.
        DataFileError: if it is not UTF-8 or holds no tokens.
    """
    path = as_path("path", path)
    if not path.is_file():
        raise FileNotFoundError(
            f"text corpus not found: {path}. Pass the path of a UTF-8 plain-text file."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(path, f"not UTF-8 text ({e})") from e
    tokens = tokenize(text, level)
    if not tokens:
        raise DataFileError(path, "no tokens: the file is empty")
    if vocabulary is None:
        vocabulary = build_vocabulary([tokens], max_size=max_size)
    return np.asarray(vocabulary.encode(tokens), np.int32), vocabulary


def lm_windows(
    ids: np.ndarray, seq_len: int, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a token stream into ``(inputs, targets)`` with targets shifted by one.

    ``inputs[i] = ids[s : s + seq_len]`` and ``targets[i] = ids[s + 1 : s + seq_len + 1]``
    with ``s = i * stride`` (default ``stride = seq_len``: non-overlapping windows).

    Examples:
        >>> import numpy as np
        >>> from gdjax.data import lm_windows
        >>> x, y = lm_windows(np.arange(9), seq_len=4)
        >>> assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
        >>> assert y.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    """
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise ValueError(f"seq_len must be an int >= 1; got {seq_len!r}")
    stride = seq_len if stride is None else stride
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be an int >= 1; got {stride!r}")
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D; got shape {ids.shape}")
    if len(ids) < seq_len + 1:
        raise ValueError(f"need at least seq_len + 1 = {seq_len + 1} ids; got {len(ids)}")
    starts = np.arange(0, len(ids) - seq_len, stride)
    idx = starts[:, None] + np.arange(seq_len)
    return ids[idx].astype(np.int32), ids[idx + 1].astype(np.int32)
