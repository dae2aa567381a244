"""The training engine: ``fit``, ``sweep``, their options, stopping rules, diagnostics, plots."""

from gdjax.train.best import BestCheckpoints
from gdjax.train.callbacks import Callback, RunInfo
from gdjax.train.diagnostics import Diagnostics
from gdjax.train.ema import EMA
from gdjax.train.fit import FitResult, fit
from gdjax.train.loggers import CSVLogger, MLflowLogger, TensorBoardLogger
from gdjax.train.options import TrainOptions
from gdjax.train.plot import plot_history
from gdjax.train.programs import enable_default_cache, set_cache_dir
from gdjax.train.stopping import EarlyStopping, ReduceOnPlateau
from gdjax.train.summary import ModelSummary, summary
from gdjax.train.sweep import SweepResult, grid, sweep

enable_default_cache()

__all__ = [
    "Diagnostics",
    "EarlyStopping",
    "FitResult",
    "ReduceOnPlateau",
    "SweepResult",
    "TrainOptions",
    "fit",
    "grid",
    "plot_history",
    "set_cache_dir",
    "sweep",
]
# callbacks, loggers, best-k checkpoints, weight averaging, model summary (issue 15)
__all__ += [
    "EMA",
    "BestCheckpoints",
    "CSVLogger",
    "Callback",
    "MLflowLogger",
    "ModelSummary",
    "RunInfo",
    "TensorBoardLogger",
    "summary",
]
