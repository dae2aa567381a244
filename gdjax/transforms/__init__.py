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
from gdjax.transforms.plateau import ReduceOnPlateauState, observe_plateau, reduce_on_plateau
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
    "ReduceOnPlateauState",
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
    "observe_plateau",
    "reduce_on_plateau",
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

# --- optax's remaining transformations, part A of issue 10 ---------------------------------
from gdjax.transforms.adaptive_more import (
    FactoredState,
    ScaleByAdanState,
    ScaleByBeliefState,
    ScaleByLionState,
    scale_by_adan,
    scale_by_belief,
    scale_by_factored_rms,
    scale_by_lion,
)
from gdjax.transforms.averaging import ApplyEvery, EmaState, apply_every, ema
from gdjax.transforms.clipping import (
    adaptive_grad_clip,
    clip_by_block_rms,
    per_example_global_norm_clip,
    per_example_layer_norm_clip,
)
from gdjax.transforms.constraints import (
    ZeroNansState,
    keep_params_nonnegative,
    zero_nans,
)
from gdjax.transforms.layerwise import (
    centralize,
    normalize_by_update_norm,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from gdjax.transforms.scaling import identity, set_to_zero

__all__ += [
    "ApplyEvery",
    "EmaState",
    "FactoredState",
    "ScaleByAdanState",
    "ScaleByBeliefState",
    "ScaleByLionState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "apply_every",
    "centralize",
    "clip_by_block_rms",
    "ema",
    "identity",
    "keep_params_nonnegative",
    "normalize_by_update_norm",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "scale_by_adan",
    "scale_by_belief",
    "scale_by_factored_rms",
    "scale_by_lion",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_trust_ratio",
    "set_to_zero",
    "zero_nans",
]
