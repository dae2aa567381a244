"""The training engine: ``fit``, ``sweep``, stopping rules, diagnostics, checkpoints, plots."""

from gdjax.train.diagnostics import Diagnostics
from gdjax.train.fit import FitResult, fit
from gdjax.train.plot import plot_history
from gdjax.train.stopping import EarlyStopping, ReduceOnPlateau
from gdjax.train.sweep import SweepResult, grid, sweep

__all__ = [
    "Diagnostics",
    "EarlyStopping",
    "FitResult",
    "ReduceOnPlateau",
    "SweepResult",
    "fit",
    "grid",
    "plot_history",
    "sweep",
]
