"""Same names, same keyword arguments, same defaults as optax 0.2.8 where optax has the name.

For every public gdjax optimizer, transformation, state and schedule that optax also exports,
every optax parameter exists in gdjax's signature with the same kind (positional parameters at
the same position), the same default, or no default where optax has none. gdjax may add
parameters of its own (``below_norm`` of `add_noise`, say). States carry optax's fields first;
gdjax may append the hyperparameter values it records.
"""

import inspect

import optax
import pytest

import gdjax
from gdjax import schedules

# Deliberate signature differences (name -> why). Every other shared name takes optax's
# parameters with optax's defaults. (The deliberate *behavioural* differences, such as
# `adadelta(learning_rate=None)` descending where optax's ascends, keep optax's signature and
# are documented in the docstrings.)
EXCEPTIONS: dict[str, str] = {
    "scale_by_factored_rms": (
        "decay_rate_fn defaults to gdjax's own function, not optax's private _decay_rate_pow; "
        "the same values, 1 - (t + 1) ** -c in float32 (the parity tests check it)"
    ),
    "lbfgs": "the default linesearch is gdjax's scale_by_zoom_linesearch with optax's settings "
    "(20 evaluations, first trial step 1), a different object from optax's default",
}


def _shared_names():
    pairs = {}
    for name in sorted(set(gdjax.__all__)):
        ours = getattr(gdjax, name)
        if hasattr(optax, name) and (inspect.isfunction(ours) or inspect.isclass(ours)):
            pairs[name] = (ours, getattr(optax, name))
    for name in schedules.__all__:
        if hasattr(optax.schedules, name):
            pairs[f"schedules.{name}"] = (getattr(schedules, name), getattr(optax.schedules, name))
    return pairs


SHARED = _shared_names()
FUNCTIONS = sorted(n for n, (ours, _) in SHARED.items() if inspect.isfunction(ours))
STATES = sorted(n for n, (ours, _) in SHARED.items() if inspect.isclass(ours))


def test_the_comparison_covers_the_library():
    # The named optimizers and transformations that optax also has, and the schedules.
    for name in ["sgd", "adam", "adamw", "nadam", "amsgrad", "rmsprop", "adadelta", "adamax"]:
        assert name in FUNCTIONS
    for name in ["add_noise", "apply_if_finite", "masked", "scale_by_learning_rate"]:
        assert name in FUNCTIONS
    assert "schedules.warmup_cosine_decay_schedule" in FUNCTIONS
    assert {"ScaleByAdamState", "ApplyIfFiniteState", "AddNoiseState"} <= set(STATES)
    assert len(FUNCTIONS) >= 35


def _differences(ours, theirs) -> list[str]:
    ours_params = inspect.signature(ours).parameters
    theirs_params = inspect.signature(theirs).parameters
    ours_positional = [p.name for p in ours_params.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
    found = []
    for index, (name, theirs_p) in enumerate(theirs_params.items()):
        if theirs_p.kind == theirs_p.VAR_POSITIONAL:  # *args: only the kind matters
            if not any(p.kind == p.VAR_POSITIONAL for p in ours_params.values()):
                found.append(f"*{name}: missing")
            continue
        if name not in ours_params:
            found.append(f"{name}: missing")
            continue
        ours_p = ours_params[name]
        if ours_p.kind != theirs_p.kind:
            found.append(f"{name}: kind {ours_p.kind.description} != {theirs_p.kind.description}")
        elif theirs_p.kind == theirs_p.POSITIONAL_OR_KEYWORD and (
            index >= len(ours_positional) or ours_positional[index] != name
        ):
            found.append(f"{name}: not at position {index}")
        if ours_p.default != theirs_p.default:
            theirs_default = "none" if theirs_p.default is inspect.Parameter.empty else None
            ours_default = "none" if ours_p.default is inspect.Parameter.empty else None
            found.append(
                f"{name}: default {ours_default or repr(ours_p.default)} != "
                f"{theirs_default or repr(theirs_p.default)}"
            )
    return found


@pytest.mark.parametrize("name", FUNCTIONS)
def test_signature_matches_optax(name):
    ours, theirs = SHARED[name]
    if name in EXCEPTIONS:
        assert _differences(ours, theirs), f"{name} now matches optax: drop it from EXCEPTIONS"
        return
    assert _differences(ours, theirs) == []


@pytest.mark.parametrize("name", STATES)
def test_state_starts_with_optax_fields(name):
    ours, theirs = SHARED[name]
    assert ours._fields[: len(theirs._fields)] == theirs._fields


def test_the_comparison_notices_a_difference():
    def ours(learning_rate, b1=0.9, *, nesterov=False):
        del learning_rate, b1, nesterov

    def theirs(learning_rate, b2=0.999, b1=0.8, *, nesterov=False, seed=None):
        del learning_rate, b2, b1, nesterov, seed

    assert _differences(ours, theirs) == [
        "b2: missing",
        "b1: not at position 2",
        "b1: default 0.9 != 0.8",
        "seed: missing",
    ]
