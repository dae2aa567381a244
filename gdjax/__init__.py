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
    chain,
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

# --- losses, metrics, models, data (issue 4) -----------------------------------------------

# --- training engine (issue 3) -------------------------------------------------------------
