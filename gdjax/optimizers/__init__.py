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
