r"""Named optimizers: chains of transformations with optax's names, arguments and defaults.

Each returns an ``optax.GradientTransformationExtraArgs``. Every hyperparameter accepts a
Python number or a JAX array — also a traced one, so ``jax.vmap`` over learning rates (or
momenta, betas, weight decays) runs independent trajectories in one program — and
``learning_rate`` (and ``weight_decay``) also accept a schedule ``step -> value``.

Python-number hyperparameters are validated here, when the optimizer is built. The switches
that select the update rule (``nesterov``, ``centered``, ``eps_in_sqrt``, ``bias_correction``,
...) and dtypes and masks are static: Python values, not arrays (a traced one raises a
``TypeError`` naming the argument).
"""

from gdjax.optimizers._adaptive import (
    adadelta,
    adagrad,
    adam,
    adamax,
    adamw,
    amsgrad,
    nadam,
    rmsprop,
)
from gdjax.optimizers._adaptive_variants import novograd, radam, sm3, yogi
from gdjax.optimizers._modern import (
    ademamix,
    adopt,
    muon,
    schedule_free_adamw,
    schedule_free_sgd,
)
from gdjax.optimizers._optimistic import (
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
)
from gdjax.optimizers._parameter_free import dog, polyak_sgd, prodigy
from gdjax.optimizers._second_order import (
    gauss_newton,
    hessian_free,
    lbfgs,
    levenberg_marquardt,
    newton,
    perturbed_gd,
    simulated_annealing,
)
from gdjax.optimizers._sgd import momentum, nesterov, sgd
from gdjax.optimizers._sign import rprop, sign_sgd, signum

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "ademamix",
    "adopt",
    "amsgrad",
    "dog",
    "momentum",
    "muon",
    "nadam",
    "nesterov",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "prodigy",
    "radam",
    "rmsprop",
    "rprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "sgd",
    "sign_sgd",
    "signum",
    "sm3",
    "yogi",
]

# --- optax's remaining optimizers, part A of issue 10 --------------------------------------
from gdjax.optimizers._adaptive_more import (
    adabelief,
    adafactor,
    adamaxw,
    adan,
    lion,
    nadamw,
)
from gdjax.optimizers._layerwise import fromage, lamb, lars
from gdjax.optimizers._noise import noisy_sgd

__all__ += [
    "adabelief",
    "adafactor",
    "adamaxw",
    "adan",
    "fromage",
    "lamb",
    "lars",
    "lion",
    "nadamw",
    "noisy_sgd",
]
__all__ += [
    "gauss_newton",
    "hessian_free",
    "lbfgs",
    "levenberg_marquardt",
    "newton",
    "perturbed_gd",
    "simulated_annealing",
]
