"""``gdjax.tune``: hyperparameter search where every rung and population is one vmapped program.

- Spaces: :class:`Uniform`, :class:`LogUniform`, :class:`IntUniform`, :class:`Choice`
  (static choices such as ``batch_size`` or a width become separate programs).
- Samplers: :class:`Grid`, :class:`Random`, :class:`Sobol`, :class:`Optuna` (ask-tell).
- Schedulers: :class:`SuccessiveHalving`, :class:`Hyperband` (survivors repacked into smaller
  programs), :class:`PBT` (exploit and explore inside one program).
- :func:`search` runs a search and returns a :class:`TuneResult`; :func:`lr_range_test` is
  the learning-rate range test (Smith 2017) from one sweep.
"""

from gdjax.tune.lr_range import LRRangeResult, lr_range_test
from gdjax.tune.optuna_sampler import Optuna
from gdjax.tune.result import TuneResult
from gdjax.tune.samplers import Grid, Random, Sobol
from gdjax.tune.schedulers import PBT, Hyperband, SuccessiveHalving
from gdjax.tune.search import search
from gdjax.tune.space import Choice, Dimension, IntUniform, LogUniform, Space, Uniform
from gdjax.tune.trials import Trial

__all__ = [
    "PBT",
    "Choice",
    "Dimension",
    "Grid",
    "Hyperband",
    "IntUniform",
    "LRRangeResult",
    "LogUniform",
    "Optuna",
    "Random",
    "Sobol",
    "Space",
    "SuccessiveHalving",
    "Trial",
    "TuneResult",
    "Uniform",
    "lr_range_test",
    "search",
]
