"""The benchmark scripts run end to end (tiny synthetic data, no timing checked) and print the
side-by-side figures and ratios they exist for.

Their cost is compilation, so the settings keep the programs few and small: 256 examples (two
full batches of 128, no remainder-batch programs), hidden width 10 (the MLP's 10x10 layers share
one initializer program with each other) and as few runners as the checks need. Each script's
``main(argv)`` runs in this process (no second import of JAX and the libraries); the processes
a script starts itself (cold calls, one process per runner, a memory-capped child) remain. The
checks are of the scripts' plumbing, not of their figures, so the random keys are ``"rbg"``
(``JAX_DEFAULT_PRNG_IMPL``): threefry's programs take seconds each to compile on XLA:CPU."""

import contextlib
import importlib
import json
import os
import re
import sys
from pathlib import Path

import jax
import pytest

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
ROOT = BENCH.parents[1]


@contextlib.contextmanager
def _environ_restored():
    """Undo what a script does to ``os.environ`` (bench_tune's import sets a default) and what
    the ``run`` fixture sets for the processes a script starts, so later tests in this
    process and the processes they start see the environment they had."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        for name, value in before.items():
            if os.environ.get(name) != value:
                os.environ[name] = value


@pytest.fixture
def run(monkeypatch, capsys):
    """``run(script, *args, synthetic=256)``: the script's ``main`` on those arguments, in this
    process with ``"rbg"`` keys (and in the processes it starts); returns what it printed."""
    monkeypatch.syspath_prepend(str(BENCH))  # as when run from there: `import _common`

    def _run(script: str, *args: str, synthetic: int | None = 256) -> str:
        argv = [*(["--synthetic", str(synthetic)] if synthetic else []), *args]
        impl = jax.config.jax_default_prng_impl
        capsys.readouterr()
        with _environ_restored():
            # the processes it starts: the same keys, and this checkout's gdjax
            os.environ["JAX_DEFAULT_PRNG_IMPL"] = "rbg"
            path = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), path]))
            jax.config.update("jax_default_prng_impl", "rbg")
            try:
                importlib.import_module(script.removesuffix(".py")).main(argv)
            except SystemExit as stop:  # argparse's errors, a runner's process that failed
                pytest.fail(f"{script} {' '.join(argv)} exited: {stop.code}")
            finally:
                jax.config.update("jax_default_prng_impl", impl)
        return capsys.readouterr().out

    return _run


def test_bench_engine_reports_cold_warm_and_steady_for_every_runner(run, tmp_path):
    out = tmp_path / "engine.json"
    text = run(
        "bench_engine.py",
        *("--hidden", "10", "--rounds", "1", "--cold-epochs", "1", "--steady-epochs", "2"),
        *("--skip-torch", "--cold-runners", "gdjax.fit", "flax+optax loop"),
        *("--warm-runners", "gdjax.fit", "lax.scan epoch", "--out", str(out)),
    )
    for runner in ("gdjax.fit", "flax+optax loop"):
        row = rf"^\s+1 epoch\(s\)\s+{re.escape(runner)}\s+[0-9.]+\s+\["
        assert re.search(row, text, re.M), text
    assert re.search(r"fastest anchor flax\+optax loop: gdjax\.fit is [0-9.]+x its speed", text)
    assert re.search(r"^\s+gdjax\.fit\s+-?[0-9.]+\s+\[", text, re.M), text  # warm overhead
    assert re.search(r"fastest anchor lax\.scan epoch: gdjax\.fit is [0-9.]+x$", text, re.M)
    assert re.search(r"host-to-device copy of the data set: [0-9.]+ ms", text), text
    saved = json.loads(out.read_text())
    assert {"date", "machine", "versions", "results"} <= set(saved)
    assert set(saved["results"]) == {"cold", "warm", "steady"}
    assert len(saved["results"]["steady"]["10/gdjax.fit"]) == 1  # 2 epochs, the first left out


def test_bench_sweep_reports_every_runner_and_the_ratio(run, tmp_path):
    out = tmp_path / "sweep.json"
    args = ("--epochs", "2", "--members", "3", "--hidden", "10", "--rounds", "1", "--out", str(out))
    text = run("bench_sweep.py", *args)
    assert "3 learning rates, H=10" in text
    for runner in ("gdjax.sweep", "sequential flax loops", "vmapped lax.scan epoch"):
        assert re.search(rf"^{re.escape(runner)}\s+[0-9.]+\s+[0-9.]+ \[", text, re.M), text
    assert re.search(r"gdjax\.sweep steady throughput: [0-9.]+x the sequential loops", text), text
    saved = json.loads(out.read_text())
    assert len(saved["results"]["final_loss"]["gdjax.sweep"]) == 3


def test_bench_shuffle_prints_both_and_speedup(run):
    text = run("bench_shuffle.py", "--sizes", "100", "3000", "--reps", "3", synthetic=None)
    rows = re.findall(r"^\s+(\d+)\s+([0-9.]+) ms\s+([0-9.]+) ms\s+([0-9.]+)x$", text, re.M)
    assert [int(r[0]) for r in rows] == [100, 3000], text


def test_bench_conv_prints_each_runner_and_both_ratios(run):
    # one small conv stage and one batch: XLA's convolution inside the scan is a naive loop
    small = ("--channels", "4", "--dense", "0", "--skip-loop-patches")
    text = run("bench_conv.py", "--n", "128", "--epochs", "2", *small, synthetic=128)
    assert "CNN on 128 images" in text
    for runner in ("gdjax.fit, patches", "gdjax.fit, xla conv", "flax+optax loop, xla conv"):
        row = re.search(rf"^{re.escape(runner)}\s+([0-9.]+)\s+([0-9.]+)x\s+([0-9.]+)$", text, re.M)
        assert row and float(row.group(1)) > 0, text
    # Both implementations train the same model from the same start: the same final loss.
    finals = re.findall(r"^gdjax\.fit, \w+(?: conv)?\s+[0-9.]+\s+[0-9.]+x\s+([0-9.]+)$", text, re.M)
    assert len(finals) == 2 and abs(float(finals[0]) - float(finals[1])) < 1e-3, text
    assert re.search(r"patch convolution inside gdjax\.fit: [0-9.]+x faster than XLA's", text)


def test_bench_optimizers_prints_each_ratio_and_writes_json(run, tmp_path):
    out = tmp_path / "optimizers.json"
    names = ["sgd", "adopt"]  # one compared with optax, one with optax.contrib
    args = ["--tiny", "--repeats", "1", "--no-recheck", "--only", *names, "--out", str(out)]
    text = run("bench_optimizers.py", *args, synthetic=None)
    for name in names:
        row = re.search(
            rf"^{name}\s+([0-9.]+)s\s+([0-9.]+)s\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)x",
            text,
            re.M,
        )
        assert row and float(row.group(3)) > 0 and float(row.group(5)) > 0, text
    assert re.search(r"steady ratio gdjax/optax: median [0-9.]+, worst \w+ [0-9.]+", text)
    payload = json.loads(out.read_text())
    assert {"date", "machine", "versions", "parameters", "results"} <= set(payload)
    assert set(payload["results"]) == set(names)
    assert payload["results"]["adopt"]["oracle"] == "optax.contrib"
    assert payload["results"]["sgd"]["oracle"] == "optax"
    assert "momentum" in payload["not_compared"]  # gdjax-only forms are listed, not dropped


def test_bench_federated_prints_both_runners_and_the_speedup(run, tmp_path):
    out = tmp_path / "federated.json"
    text = run(
        "bench_federated.py",
        *("--clients", "6", "--per-round", "2", "--rounds", "2", "--epochs", "1"),
        *("--hidden", "10", "--repeats", "1", "--out", str(out)),
        synthetic=300,  # 6 clients of 50: 5 batches of 10 each
    )
    for runner in ("gdjax.federated.fit", "flax+optax loop"):
        row = re.search(rf"^{re.escape(runner)}\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", text, re.M)
        assert row and float(row.group(1)) > 0, text
    assert re.search(r"speed-up of gdjax\.federated\.fit: cold [0-9.]+x, warm [0-9.]+x", text)

    payload = json.loads(out.read_text())
    assert payload["settings"]["clients"] == 6 and payload["machine"]["jax"]
    assert set(payload["results"]) == {"gdjax.federated.fit", "flax+optax loop"}


def test_bench_tune_prints_every_tuner_both_targets_and_writes_json(run, tmp_path):
    out = tmp_path / "tune.json"
    text = run(
        "bench_tune.py",
        *("--epochs", "2", "--pbt-interval", "1", "--grid-points", "2", "--population", "4"),
        *("--hidden", "10", "--optuna-trials", "2", "--anchor-seeds", "1"),
        *("--gdjax-optuna-trials", "4", "--optuna-batch", "4", "--warm", "--out", str(out)),
        synthetic=192,  # 128 training examples (one batch), 64 for validation
    )
    # programs of 4 trials (grid, PBT, optuna batches) and of 1 (the survivor of the halving)
    assert "4 configurations, MLP 784-10-10-10" in text
    names = ["grid (one gdjax program)", "successive halving (gdjax)", "PBT (gdjax)"]
    names += ["successive halving (gdjax), warm"]
    names += ["optuna TPE in gdjax programs", "optuna TPE + sequential flax (anchor, seed 0)"]
    for name in names:
        assert re.search(rf"^{re.escape(name)}\s+[0-9.]+\s+\d+\s", text, re.M), text
    assert re.search(r"successive halving (reached|never reached) the target", text), text
    payload = json.loads(out.read_text())
    assert set(payload["runs"]) == set(names)
    assert payload["machine"]["cores"] >= 1 and payload["date"] and payload["versions"]["optuna"]
    assert payload["grid_compute_member_epochs"] == 4 * 2
    assert 0 < payload["grid_fraction_within_target"] <= 1


def test_bench_stream_prints_throughputs_and_the_capped_run(run, tmp_path):
    record = tmp_path / "stream.json"
    text = run(
        "bench_stream.py",
        *("--epochs", "2", "--rounds", "1", "--hidden", "10", "--json", str(record)),
        *("--big-gb", "0.004", "--big-batch", "256"),  # 1024 images: 4 batches, no remainder
    )
    for runner in ("in memory", "streamed, host arrays", "streamed, memmap"):
        row = re.search(rf"^{re.escape(runner)}\s+([0-9.]+) .* ([0-9.]+)x  yes$", text, re.M)
        assert row and float(row.group(2)) > 0, text  # and the same bits as in memory
    assert re.search(r"streamed throughput vs in memory: worst [0-9.]+x", text)
    assert re.search(r"peak resident [0-9.]+ GB", text)
    saved = json.loads(record.read_text())
    assert saved["larger_than_memory"]["limit_enforced"] is True
    assert {"date", "machine", "versions"} <= set(saved)


def test_bench_precision_prints_speed_and_accuracy_per_policy(run):
    text = run(
        "bench_precision.py", "--epochs", "2", "--rounds", "1", "--hidden", "10", "--models", "mlp"
    )
    for policy in ("float32", "bfloat16", "float16 + loss scaling"):
        row = re.search(
            rf"^{re.escape(policy)}\s+[0-9.]+\s+([0-9.]+)\s+[0-9.]+x\s+([0-9.]+)$", text, re.M
        )
        assert row and 0 <= float(row.group(2)) <= 1, text


def test_performance_page_figures_come_from_the_result_files():
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    page = report.PAGE.read_text()
    blocks = report.tables()
    # every generated block is on the page, and the page holds exactly what the files give
    for name in blocks:
        assert f"<!-- report:{name} -->" in page, name
    assert report.render(page, blocks) == page, "run experiments/benchmarks/report.py"
    assert {"engine-cold", "engine-warm", "engine-steady", "targets", "sweep"} <= set(blocks)
