"""The Fashion-MNIST quality script (issue 4's bar) runs end to end on tiny generated IDX files."""

from __future__ import annotations

import json
import re

import flax.linen as nn
import jax
import numpy as np
import pytest

import gdjax
from experiments import fashion_mnist_quality as fmq


def write_idx(path, array: np.ndarray) -> None:
    """An IDX file: magic 00 00 08 <ndim>, big-endian int32 dims, then the uint8 data."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def tiny_fashion(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 48), ("t10k", 20)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return tmp_path


def test_runs_both_models_and_writes_a_dated_versioned_page(tiny_fashion, tmp_path, monkeypatch):
    # The same two model families, narrower: the script's path is what is tested here.
    from gdjax.models import CNN, MLP

    monkeypatch.setitem(fmq.MODELS, "mlp", lambda: MLP(features=(16, 10), dropout_rate=0.2))
    monkeypatch.setitem(
        fmq.MODELS, "cnn", lambda: CNN(num_classes=10, channels=(4, 8), dense=8, dropout_rate=0.3)
    )
    out = tmp_path / "out"
    argv = ["--data-dir", str(tiny_fashion), "--out-dir", str(out), "--batch-size", "16"]
    # The script's path is what is tested: its keys (init, dropout, shuffle) come from XLA's
    # RngBitGenerator, whose programs compile several times faster on CPU than threefry's.
    with jax.default_prng_impl("rbg"):
        rc = fmq.main([*argv, "--mlp-epochs", "1", "--cnn-epochs", "1"])
    assert rc == 1  # one epoch on random pixels cannot reach the targets
    report = json.loads((out / "fashion_mnist_quality.json").read_text())
    assert [r["model"] for r in report["runs"]] == ["mlp", "cnn"]
    for r in report["runs"]:
        assert r["epochs"] == 1 and len(r["history"]) == 1 and not r["passed"]
        assert r["optimizer"] == "gdjax.adam" and r["trainer"] == "gdjax.fit"
        # the per-epoch record (fit's validation on the test split) agrees with the final check
        assert r["history"][-1]["test_accuracy"] == pytest.approx(
            r["final_test_accuracy"], abs=1e-6
        )
        assert 0.0 <= r["final_test_accuracy"] <= 1.0
        # 20 test images: the accuracy is a multiple of 1/20 (every image counted once)
        assert r["final_test_accuracy"] * 20 == pytest.approx(round(r["final_test_accuracy"] * 20))
    assert report["gdjax_version"] == gdjax.__version__
    page = (out / "fashion_mnist_quality.md").read_text()
    assert re.search(r"Run on \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC; machine: .+, \d+ cores", page)
    assert f"gdjax {gdjax.__version__}" in page
    header = "| model | params | epochs | batch | lr | trained with | train time (s) | train acc |"
    assert header in page and page.count("(FAIL) |") == 2
    assert not list(out.glob(".*"))  # no temporary files left


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--mlp-epochs", "0"), ("--batch-size", "0"), ("--lr", "-1"), ("--models", "rnn")],
)
def test_bad_arguments_exit_before_anything_runs(flag, value, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        fmq.main([flag, value, "--out-dir", str(out)])
    assert e.value.code == 2 and flag in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_counts_every_example_including_a_partial_last_batch():
    model = nn.Dense(3)
    x = np.random.default_rng(1).normal(size=(25, 4)).astype(np.float32)
    y = np.arange(25) % 3
    params = model.init(jax.random.key(0), x[:1])
    acc, loss = fmq.make_evaluate(model, batch_size=10)(params, x, y)
    logits = np.asarray(model.apply(params, x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert float(acc) == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-6)
    assert float(loss) == pytest.approx(-np.mean(logp[np.arange(25), y]), rel=1e-5)
