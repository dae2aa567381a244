"""gdjax: gradient descent for neural networks in JAX.

Optimizers are optax ``GradientTransformation``s built from small composable transformations;
a compiled training engine turns ``loss_fn + optimizer + data`` into fast, reproducible runs.
"""

from gdjax import tree_utils
from gdjax.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    OptState,
    Params,
    Schedule,
    Updates,
    apply_updates,
)
from gdjax.tree_utils import get_hyperparam

__version__ = "0.1.0"

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "OptState",
    "Params",
    "Schedule",
    "Updates",
    "__version__",
    "apply_updates",
    "chain",
    "get_hyperparam",
    "tree_utils",
]

# --- optimizers, transforms, schedules (issue 2) -------------------------------------------
from gdjax import _recipes, base, optimizers, schedules, transforms

# Public factories record how they were called, so that the training engine can pass an
# optimizer's numbers to its compiled programs as inputs (see gdjax/_recipes.py).
for _module in (optimizers, transforms, schedules):
    _recipes.record_module(_module, _module.__all__)
_recipes.record_module(base, ["chain"])
chain = base.chain
from gdjax.optimizers import *  # noqa: E402, F403
from gdjax.transforms import *  # noqa: E402, F403

__all__ += ["optimizers", "schedules", "transforms"]
__all__ += optimizers.__all__ + transforms.__all__

# --- losses, metrics, models, data (issue 4) -----------------------------------------------
from gdjax import data, losses, metrics, models  # noqa: E402

__all__ += ["data", "losses", "metrics", "models"]

# --- training engine (issue 3) -------------------------------------------------------------
from gdjax.train import (  # noqa: E402
    Diagnostics,
    EarlyStopping,
    FitResult,
    ReduceOnPlateau,
    SweepResult,
    TrainOptions,
    fit,
    grid,
    plot_history,
    set_cache_dir,
    sweep,
)

__all__ += [
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

# --- callbacks, loggers, best-k checkpoints, weight averaging, model summary (issue 15) -----
from gdjax.train import (  # noqa: E402
    EMA,
    BestCheckpoints,
    Callback,
    CSVLogger,
    MLflowLogger,
    ModelSummary,
    RunInfo,
    TensorBoardLogger,
    summary,
)

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

# --- beyond first order: curvature, second-order methods, minimize (issue 11) --------------
from gdjax import curvature  # noqa: E402
from gdjax._minimize import STOP_REASONS, MinimizeResult, minimize  # noqa: E402

__all__ += ["STOP_REASONS", "MinimizeResult", "curvature", "minimize"]

# --- federated learning (issue 12) ---------------------------------------------------------
from gdjax import federated  # noqa: E402

__all__ += ["federated"]

# --- hyperparameter tuning (issue 13) ------------------------------------------------------
from gdjax import tune  # noqa: E402

__all__ += ["tune"]
