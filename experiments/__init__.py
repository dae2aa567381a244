"""gdjax's experiment suite: re-run the source documents' tables with real, compiled training.

Run ``python -m experiments list`` for the studies and ``python -m experiments --help`` for the
options. Each study lives in :mod:`experiments.studies` as one short module exposing ``STUDY``.
"""

from __future__ import annotations

import importlib

from experiments._core import Context, Study, StudyResult

#: Study modules in the order of the issue (and of the index page).
STUDY_MODULES: tuple[str, ...] = (
    "digits_optimizers",
    "learning_rate",
    "feature_gradients",
    "gd_variants",
    "regularization",
    "batch_size",
    "activations",
    "dropout",
    "resnet_depth",
    "misconceptions",
    "momentum_annealing",
    "applications",
    "best_practices",
    "second_order",
    "federated",
    "tuning",
)


def load_studies() -> dict[str, Study]:
    """Import every study module and return ``{name: Study}`` in suite order."""
    studies = {}
    for module in STUDY_MODULES:
        study = importlib.import_module(f"experiments.studies.{module}").STUDY
        studies[study.name] = study
    return studies


__all__ = ["STUDY_MODULES", "Context", "Study", "StudyResult", "load_studies"]
