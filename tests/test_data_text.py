"""Text readers: tokenizer, vocabulary, padding, IMDB directory, corpus and LM windows."""

from __future__ import annotations

import numpy as np
import pytest

from gdjax import data
from gdjax.data import DataFileError

REVIEWS = {
    ("train", "pos", "0_9.txt"): "A great film.<br /><br />Great acting!",
    ("train", "pos", "1_7.txt"): "Great fun, don't miss it",
    ("train", "neg", "0_2.txt"): "Terrible. A waste of time.",
    ("train", "neg", "1_1.txt"): "bad bad film",
    ("test", "pos", "0_10.txt"): "great great",
    ("test", "neg", "0_3.txt"): "awful film zzz",
}


def make_imdb(root):
    for (split, label, name), text in REVIEWS.items():
        folder = root / "aclImdb" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (root / "aclImdb" / "train" / "unsup").mkdir()
    return root


def test_tokenize():
    assert data.tokenize("A great film.<br /><br />Great acting!") == [
        "a", "great", "film", "great", "acting",
    ]  # fmt: skip
    assert data.tokenize("Don't") == ["don't"]
    assert data.tokenize("ab", level="char") == ["a", "b"]
    with pytest.raises(ValueError, match="level"):
        data.tokenize("x", level="bpe")
    with pytest.raises(TypeError, match="text"):
        data.tokenize(3)


def test_vocabulary_top_k_and_roundtrip():
    vocab = data.build_vocabulary([["b", "a", "c", "a"], ["b", "a", "d"]], max_size=4)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b"]  # a:3, b:2, c/d dropped
    assert vocab.encode(["a", "b", "zzz"]) == [2, 3, 1]
    assert vocab.decode([2, 3, 0, 0]) == "a b"
    assert len(vocab) == 4 and "a" in vocab and "c" not in vocab
    ties = data.build_vocabulary([["y", "x", "z"]])
    assert ties.tokens[2:] == ["x", "y", "z"]  # equal counts: alphabetical
    assert data.build_vocabulary([["a", "a", "b"]], min_count=2).tokens == ["<pad>", "<unk>", "a"]
    with pytest.raises(ValueError, match="max_size"):
        data.build_vocabulary([["a"]], max_size=1)
    with pytest.raises(ValueError, match="min_count"):
        data.build_vocabulary([["a"]], min_count=0)
    with pytest.raises(ValueError, match="<pad>"):
        data.Vocabulary(["a", "b"])


def test_pad_sequences():
    seqs = [[1, 2, 3, 4], [5], []]
    np.testing.assert_array_equal(data.pad_sequences(seqs, 3), [[1, 2, 3], [5, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(
        data.pad_sequences(seqs, 3, padding="pre", truncating="pre"),
        [[2, 3, 4], [0, 0, 5], [0, 0, 0]],
    )
    assert data.pad_sequences(seqs, 2).dtype == np.int32
    with pytest.raises(ValueError, match="length"):
        data.pad_sequences(seqs, 0)
    with pytest.raises(ValueError, match="padding"):
        data.pad_sequences(seqs, 2, padding="middle")


def test_read_and_load_imdb(tmp_path):
    make_imdb(tmp_path)
    texts, labels = data.read_imdb("train", tmp_path)  # parent of aclImdb/
    assert labels.tolist() == [0, 0, 1, 1]
    assert texts[0] == "Terrible. A waste of time." and texts[3] == "Great fun, don't miss it"
    x, y, vocab = data.load_imdb("train", tmp_path / "aclImdb", num_words=6, maxlen=4)
    assert x.shape == (4, 4) and x.dtype == np.int32 and y.tolist() == [0, 0, 1, 1]
    # train counts: great 3; a, bad, film 2 each (ties alphabetical); the rest cut by num_words
    assert vocab.tokens == ["<pad>", "<unk>", "great", "a", "bad", "film"]
    assert x[0].tolist() == [1, 3, 1, 1]  # "terrible a waste of" truncated to 4
    assert vocab.decode(x[2]) == vocab.decode(vocab.encode(["a", "great", "film", "great"]))
    # the test split uses the train vocabulary: "zzz" is unknown, padding at the end
    xt, yt, vocab_t = data.load_imdb("test", tmp_path, num_words=6, maxlen=4)
    assert vocab_t.tokens == vocab.tokens
    assert yt.tolist() == [0, 1]
    assert xt[0].tolist() == [1, 5, 1, 0]  # "awful film zzz": unknown, film, unknown, padding
    xt2, _, _ = data.load_imdb("test", tmp_path, maxlen=4, vocabulary=vocab)
    np.testing.assert_array_equal(xt, xt2)


def test_imdb_broken_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"aclImdb_v1\.tar\.gz") as info:
        data.read_imdb("train", tmp_path)
    assert str(tmp_path / "train" / "neg") in str(info.value)
    with pytest.raises(ValueError, match="data_dir is required"):
        data.read_imdb("train", None)
    with pytest.raises(ValueError, match="split"):
        data.read_imdb("dev", tmp_path)
    make_imdb(tmp_path)
    pos = tmp_path / "aclImdb" / "train" / "pos"
    (pos / "5_2.txt").write_text("mislabelled")
    with pytest.raises(DataFileError, match="mislabelled: rating 2") as info:
        data.read_imdb("train", tmp_path)
    assert "5_2.txt" in str(info.value)
    (pos / "5_2.txt").unlink()
    (pos / "notes.md").write_text("x")
    with pytest.raises(DataFileError, match=r"<id>_<rating>\.txt"):
        data.read_imdb("train", tmp_path)
    (pos / "notes.md").unlink()
    (pos / "6_8.txt").write_bytes(b"\xff\xfe bad bytes")
    with pytest.raises(DataFileError, match="UTF-8"):
        data.read_imdb("train", tmp_path)
    for f in (tmp_path / "aclImdb" / "test" / "neg").iterdir():
        f.unlink()
    with pytest.raises(DataFileError, match="no reviews"):
        data.read_imdb("test", tmp_path)


def test_imdb_from_archive(tmp_path):
    import tarfile

    src = make_imdb(tmp_path / "src")
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as tar:
        tar.add(src / "aclImdb", arcname="aclImdb")
    target = data.extract_archive(tmp_path / "aclImdb_v1.tar.gz", tmp_path / "data")
    _, labels = data.read_imdb("test", target)
    assert labels.tolist() == [0, 1]


def test_text_corpus_and_lm_windows(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("abcab", encoding="utf-8")
    ids, vocab = data.load_text_corpus(path)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "c"]
    assert ids.tolist() == [2, 3, 4, 2, 3] and ids.dtype == np.int32
    words, wv = data.load_text_corpus(path, level="word")
    assert words.tolist() == [2] and wv.tokens[2] == "abcab"
    x, y = data.lm_windows(ids, seq_len=2)
    assert x.tolist() == [[2, 3], [4, 2]] and y.tolist() == [[3, 4], [2, 3]]
    x, y = data.lm_windows(np.arange(6), seq_len=3, stride=1)
    assert x.shape == (3, 3) and y[-1].tolist() == [3, 4, 5]
    other = tmp_path / "other.txt"
    other.write_text("abz")
    ids2, _ = data.load_text_corpus(other, vocabulary=vocab)
    assert ids2.tolist() == [2, 3, 1]


def test_text_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="text corpus not found"):
        data.load_text_corpus(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataFileError, match="empty"):
        data.load_text_corpus(tmp_path / "empty.txt")
    (tmp_path / "bin.txt").write_bytes(b"\x80\x81\x82")
    with pytest.raises(DataFileError, match="UTF-8") as info:
        data.load_text_corpus(tmp_path / "bin.txt")
    assert "bin.txt" in str(info.value)
    with pytest.raises(ValueError, match="seq_len"):
        data.lm_windows(np.arange(5), 0)
    with pytest.raises(ValueError, match="at least"):
        data.lm_windows(np.arange(3), 3)
    with pytest.raises(ValueError, match="1-D"):
        data.lm_windows(np.zeros((2, 4)), 2)
