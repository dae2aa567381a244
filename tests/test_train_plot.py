"""plot_history draws one curve per run and key, from results, histories and sweeps."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import gdjax
from gdjax.train.fit import FitResult
from gdjax.train.sweep import SweepResult


def _result(losses, val=None):
    hist = {"loss": np.asarray(losses, np.float32)}
    if val is not None:
        hist["val_loss"] = np.asarray(val, np.float32)
    return FitResult(
        params=None, opt_state=None, model_state=None, history=hist, epochs_run=len(losses), steps=0
    )


def test_one_result_draws_train_solid_and_val_dashed():
    fig = gdjax.plot_history(_result([3.0, 2.0, 1.0], [3.5, 2.5, 2.0]))
    lines = fig.axes[0].lines
    assert [ln.get_label() for ln in lines] == ["loss", "val_loss"]
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    np.testing.assert_array_equal(lines[1].get_ydata(), [3.5, 2.5, 2.0])
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])


def test_many_runs_and_sweep():
    fig = gdjax.plot_history(
        {"a": _result([1.0, 0.5]), "b": {"loss": np.array([2.0, 1.0])}}, keys=["loss"], logy=True
    )
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["a loss", "b loss"]
    assert ax.get_yscale() == "log"
    sweep = SweepResult(
        params=None,
        opt_state=None,
        model_state=None,
        history={"loss": np.array([[1.0, 0.5], [1.0, 0.9], [1.0, 0.1]])},
        hparams={"lr": np.array([0.1, 0.01, 1.0])},
        seeds=np.zeros(3, int),
        epochs_run=np.full(3, 2),
        stop_reason=[None] * 3,
    )
    fig = gdjax.plot_history(sweep)
    assert [ln.get_label() for ln in fig.axes[0].lines] == [
        "lr=0.1 loss",
        "lr=0.01 loss",
        "lr=1 loss",
    ]


def test_plot_errors():
    with pytest.raises(ValueError, match="none of the keys"):
        gdjax.plot_history({"loss": np.ones(3)}, keys=["val_accuracy"])
    with pytest.raises(TypeError, match="runs must be"):
        gdjax.plot_history(42)
    with pytest.raises(ValueError, match="labels has 1 entries for 2 runs"):
        gdjax.plot_history([_result([1.0]), _result([2.0])], labels=["x"])
