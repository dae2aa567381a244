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
from gdjax.transforms.momentum import TraceState, heavy_ball, trace
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
