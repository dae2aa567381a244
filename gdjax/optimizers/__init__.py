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

__all__ = [
    "adadelta",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "amsgrad",
    "momentum",
    "nadam",
    "nesterov",
    "rmsprop",
    "sgd",
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
