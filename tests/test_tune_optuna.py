"""gdjax.tune with an optuna study as its sampler: TPE asked for batches of trials trained as one
program, every epoch reported, a median pruner's decisions checked against its rule by hand."""

import jax.numpy as jnp
import numpy as np
import optuna
import pytest

from gdjax import tune
from tests.test_tune import COMMON, DATA, LRS, close, loss, losses, sgd

EPOCHS, BATCH, WARMUP = 4, 3, 2


@pytest.fixture(scope="module")
def study_and_result():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=WARMUP),
    )
    res = tune.search(
        loss,
        jnp.zeros(()),
        sgd,
        DATA,
        space={"lr": LRS},
        sampler=tune.Optuna(study, n_trials=9, batch=BATCH),
        batch_size=64,
        epochs=EPOCHS,
        **COMMON,
    )
    return study, res


def test_every_trial_reports_its_epochs_and_is_told_its_value(study_and_result):
    study, res = study_and_result
    assert len(study.trials) == len(res.trials) == 9
    for t, ft in zip(res.trials, study.trials, strict=True):
        assert ft.params == {"lr": t.config["lr"]}
        curve = losses(t.config["lr"], EPOCHS)[0]
        steps = sorted(ft.intermediate_values)
        assert steps == list(range(1, t.epochs + 1))
        close([ft.intermediate_values[s] for s in steps], curve[: t.epochs])
        if ft.state == optuna.trial.TrialState.PRUNED:
            assert t.status == "pruned" and t.epochs < EPOCHS
        else:
            assert ft.state == optuna.trial.TrialState.COMPLETE and t.epochs == EPOCHS
            assert ft.value == pytest.approx(curve[-1], rel=3e-4)
    assert res.best.number == study.best_trial.number


def test_pruning_follows_the_median_rule_and_frees_the_slots(study_and_result):
    _, res = study_and_result
    curves = {t.number: losses(t.config["lr"], EPOCHS)[0] for t in res.trials}
    completed: list[int] = []
    compute = 0
    pruned_any = False
    for start in range(0, 9, BATCH):
        batch = list(range(start, start + BATCH))
        expected = {}
        for n in batch:  # the median rule, by hand, against the trials completed before
            expected[n] = EPOCHS
            if len(completed) < 3:
                continue
            for e in range(WARMUP, EPOCHS):
                median = np.median([curves[c][e - 1] for c in completed])
                if curves[n][:e].min() > median:
                    expected[n] = e
                    break
        assert {n: res.trials[n].epochs for n in batch} == expected
        pruned_any |= any(e < EPOCHS for e in expected.values())
        size = BATCH  # frozen members cost their slot until half are frozen, then repacked
        for e in range(1, EPOCHS + 1):
            compute += size
            live = sum(expected[n] > e for n in batch)
            if live == 0:
                break
            if e < EPOCHS and live <= size // 2:
                size = 1 << (live - 1).bit_length()  # a power of two, padded with frozen
        completed += [n for n in batch if expected[n] == EPOCHS]
    assert pruned_any
    assert res.member_epochs == compute
