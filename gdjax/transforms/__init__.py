"""Gradient transformations: small ``(init, update)`` building blocks, one family per module.

Every factory returns an ``optax.GradientTransformation`` whose state is a typed ``NamedTuple``;
they chain with each other and with optax's own transformations.
"""

from gdjax.transforms.adam_variants import (
    ScaleByAdemamixState,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_radam,
    scale_by_yogi,
)
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
from gdjax.transforms.combine import (
    PartitionState,
    freeze,
    multi_transform,
    named_chain,
    partition,
    selective_transform,
)
from gdjax.transforms.conditional import (
    ConditionallyMaskState,
    ConditionallyTransformState,
    conditionally_mask,
    conditionally_transform,
    skip_large_updates,
)
from gdjax.transforms.guards import ApplyIfFiniteState, apply_if_finite
from gdjax.transforms.lookahead import LookaheadParams, LookaheadState, lookahead
from gdjax.transforms.memory_efficient import (
    ScaleByNovogradState,
    ScaleBySM3State,
    scale_by_novograd,
    scale_by_sm3,
)
from gdjax.transforms.momentum import TraceState, heavy_ball, trace
from gdjax.transforms.muon import (
    MuonDimensionNumbers,
    MuonState,
    orthogonalize_via_newton_schulz,
    scale_by_muon,
    scale_by_shape,
)
from gdjax.transforms.noise import AddNoiseState, add_noise
from gdjax.transforms.optimistic import (
    ScaleByOptimisticGradientState,
    scale_by_optimistic_gradient,
)
from gdjax.transforms.parameter_free import (
    DoGState,
    ProdigyState,
    scale_by_dog,
    scale_by_polyak,
)
from gdjax.transforms.plateau import ReduceOnPlateauState, observe_plateau, reduce_on_plateau
from gdjax.transforms.regularization import (
    AddDecayedWeightsState,
    L1RegularizationState,
    L2RegularizationState,
    add_decayed_weights,
    add_l1_regularization,
    add_l2_regularization,
)
from gdjax.transforms.sam import SAMState, normalize, sam
from gdjax.transforms.scaling import (
    ScaleByScheduleState,
    scale,
    scale_by_learning_rate,
    scale_by_schedule,
)
from gdjax.transforms.schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_eval_params,
)
from gdjax.transforms.sign import ScaleByRpropState, scale_by_rprop, scale_by_sign
from gdjax.transforms.target import incremental_update, periodic_update
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
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "DoGState",
    "L1RegularizationState",
    "L2RegularizationState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedState",
    "MuonDimensionNumbers",
    "MuonState",
    "PartitionState",
    "ProdigyState",
    "ReduceOnPlateauState",
    "SAMState",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdemamixState",
    "ScaleByAmsgradState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "ScaleByScheduleState",
    "ScaleByStddevState",
    "ScaleByStddevWithCountState",
    "ScheduleFreeState",
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
    "conditionally_mask",
    "conditionally_transform",
    "freeze",
    "heavy_ball",
    "incremental_update",
    "lookahead",
    "masked",
    "multi_transform",
    "named_chain",
    "normalize",
    "observe_plateau",
    "orthogonalize_via_newton_schulz",
    "partition",
    "periodic_update",
    "reduce_on_plateau",
    "sam",
    "scale",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_amsgrad",
    "scale_by_dog",
    "scale_by_learning_rate",
    "scale_by_muon",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_polyak",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_shape",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_stddev",
    "scale_by_yogi",
    "schedule_free",
    "schedule_free_eval_params",
    "selective_transform",
    "skip_large_updates",
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

# --- beyond first order (issue 11): need value / grad / value_fn extra arguments -----------
from gdjax.transforms.annealing import MetropolisState, metropolis  # noqa: E402
from gdjax.transforms.lbfgs import ScaleByLBFGSState, scale_by_lbfgs  # noqa: E402
from gdjax.transforms.least_squares import (  # noqa: E402
    ScaleByGaussNewtonState,
    ScaleByLevenbergMarquardtState,
    scale_by_gauss_newton,
    scale_by_levenberg_marquardt,
)
from gdjax.transforms.linesearch import (  # noqa: E402
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_zoom_linesearch,
)
from gdjax.transforms.newton import (  # noqa: E402
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
