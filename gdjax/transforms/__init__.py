"""Gradient transformations: small ``(init, update)`` building blocks, one family per module.

Every factory returns an ``optax.GradientTransformation`` whose state is a typed ``NamedTuple``;
they chain with each other and with optax's own transformations.
"""

from gdjax.transforms.adaptive import (
    ScaleByAdaDeltaState,
    ScaleByAdamState,
    ScaleByAmsgradState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByStddevState,
    ScaleByStddevWithCountState,
    scale_by_adadelta,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
)
from gdjax.transforms.clipping import clip, clip_by_global_norm, clip_by_norm
from gdjax.transforms.guards import ApplyIfFiniteState, apply_if_finite
from gdjax.transforms.momentum import HeavyBallState, TraceState, heavy_ball, trace
from gdjax.transforms.noise import AddNoiseState, add_noise
from gdjax.transforms.regularization import (
    AddDecayedWeightsState,
    L1RegularizationState,
    L2RegularizationState,
    add_decayed_weights,
    add_l1_regularization,
    add_l2_regularization,
)
from gdjax.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from gdjax.transforms.wrappers import (
    AccumulateState,
    MaskedState,
    accumulate_gradients,
    masked,
)

__all__ = [
    "AccumulateState",
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyIfFiniteState",
    "HeavyBallState",
    "L1RegularizationState",
    "L2RegularizationState",
    "MaskedState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAmsgradState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "ScaleByStddevWithCountState",
    "TraceState",
    "accumulate_gradients",
    "add_decayed_weights",
    "add_l1_regularization",
    "add_l2_regularization",
    "add_noise",
    "apply_if_finite",
    "clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "heavy_ball",
    "masked",
    "scale",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_amsgrad",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "trace",
]

# --- beyond first order (issue 11): need value / grad / value_fn extra arguments -----------
from gdjax.transforms.annealing import MetropolisState, metropolis
from gdjax.transforms.lbfgs import ScaleByLBFGSState, scale_by_lbfgs
from gdjax.transforms.least_squares import (
    ScaleByGaussNewtonState,
    ScaleByLevenbergMarquardtState,
    scale_by_gauss_newton,
    scale_by_levenberg_marquardt,
)
from gdjax.transforms.linesearch import (
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_zoom_linesearch,
)
from gdjax.transforms.newton import (
    ScaleByHessianFreeState,
    ScaleByNewtonState,
    scale_by_hessian_free,
    scale_by_newton,
)

__all__ += [
    "MetropolisState",
    "ScaleByGaussNewtonState",
    "ScaleByHessianFreeState",
    "ScaleByLBFGSState",
    "ScaleByLevenbergMarquardtState",
    "ScaleByNewtonState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "metropolis",
    "scale_by_gauss_newton",
    "scale_by_hessian_free",
    "scale_by_lbfgs",
    "scale_by_levenberg_marquardt",
    "scale_by_newton",
    "scale_by_zoom_linesearch",
]
