"""optax's remaining optimizers and transformations in gdjax, step by step against optax.

Issue 10, part A: `adabelief`, `adafactor`, `adamaxw`, `adan`, `fromage`, `lamb`, `lars`, `lion`,
`nadamw`, `noisy_sgd` with their ``scale_by_*``; `ema`, `centralize`, `apply_every`,
`adaptive_grad_clip`, per-example clipping, `clip_by_block_rms`, `scale_by_trust_ratio`,
`normalize_by_update_norm`, `zero_nans`, `set_to_zero`, `identity`, `keep_params_nonnegative`.
Every step of a 40-step run on a nested tree is compared; each test is one compiled program.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import schedules as S
from tests._opt_oracle import assert_close, assert_pairs_close, fast_jit, path, random_tree

STEPS = 40
NEW_OPTIMIZERS = [
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


# Adafactor factors both when allowed: the matrix along (0, 1), the 3-d array along (2, 1).
SHAPES = {"w": (3, 4), "layers": [(2, 4, 3)]}


def _problem(steps: int = STEPS, seed: int = 0, positive: bool = False):
    """A nested tree (a matrix, a 3-d array) and ``steps`` random gradients."""
    params = random_tree(seed, SHAPES)
    if positive:
        params = jax.tree.map(jnp.abs, params)
    return params, random_tree(seed + 1, SHAPES, steps=steps)


def _matrices(params):
    """A mask function: the 2-d leaves (here: the matrix, not the 3-d array)."""
    return jax.tree.map(lambda x: x.ndim == 2, params)


OURS_SCHEDULE = S.warmup_cosine_decay_schedule(0.0, 3e-2, 5, STEPS, 1e-3)
THEIRS_SCHEDULE = optax.warmup_cosine_decay_schedule(0.0, 3e-2, 5, STEPS, 1e-3)
NOISE_KEY = jax.random.key(3, impl="rbg")  # cheap to compile; the same stream on both sides

# name -> (build(module, schedule, value), [value compared with optax, another value]).
# Each optimizer runs with a schedule and non-default arguments (the defaults equal optax's:
# tests/test_opt_signatures.py), vmapped over one hyperparameter. The values are exact in
# float32 (so are 1 minus them): a traced float32 0.999 is not the Python float 0.999.
VMAPPED = {
    "adabelief": (lambda m, s, v: m.adabelief(s, b1=v, b2=0.99, nesterov=True), [0.875, 0.5]),
    "adafactor": (
        lambda m, s, v: m.adafactor(
            s,
            min_dim_size_to_factor=2,
            decay_rate=v,
            decay_offset=-2,
            momentum=0.9,
            weight_decay_rate=1e-3,
            weight_decay_mask=_matrices,
            clipping_threshold=0.5,
        ),
        [0.75, 0.5],
    ),
    "adamaxw": (lambda m, s, v: m.adamaxw(s, weight_decay=v, mask=_matrices), [2**-6, 0.5]),
    "adan": (lambda m, s, v: m.adan(s, b3=v, weight_decay=1e-2, mask=_matrices), [1 - 2**-6, 0.5]),
    "fromage": (lambda m, s, v: m.fromage(v, min_norm=1e-3), [2**-6, 2**-3]),
    "lamb": (
        lambda m, s, v: m.lamb(s, weight_decay=v, eps_root=1e-8, mask=_matrices),
        [2**-6, 1.0],
    ),
    "lars": (
        lambda m, s, v: m.lars(s, 1e-2, _matrices, v, 1e-6, _matrices, momentum=0.8, nesterov=True),
        [1.0, 2**-3],
    ),
    "lion": (lambda m, s, v: m.lion(s, b1=v, weight_decay=0.1, mask=_matrices), [0.75, 0.25]),
    "nadamw": (lambda m, s, v: m.nadamw(s, b2=v, mask=_matrices), [1 - 2**-6, 0.5]),
    "noisy_sgd": (lambda m, s, v: m.noisy_sgd(s, eta=v, gamma=0.3, key=NOISE_KEY), [2**-3, 2.0]),
}

# Other code paths: the defaults of Adafactor (no learning rate, not factored at this size),
# Fromage under a schedule.
UNBATCHED = {
    "adafactor defaults": lambda m, s: m.adafactor(),
    "fromage schedule": lambda m, s: m.fromage(s),
}


def test_every_new_optimizer_is_compared():
    assert set(VMAPPED) == set(NEW_OPTIMIZERS)
    assert set(NEW_OPTIMIZERS) <= set(gdjax.optimizers.__all__)


def test_new_optimizers_match_optax_step_by_step_also_vmapped():
    """Member 0 of each vmapped run equals optax's run with that value, at every step; the
    other member differs (the traced hyperparameter is used); the scheduled learning rate is
    read back from the state with `gdjax.get_hyperparam`."""
    params, grads = _problem()

    @fast_jit
    def go():
        pairs, read = {}, {}
        for name, (build, values) in VMAPPED.items():
            history, state = jax.vmap(
                lambda v, build=build: path(build(gdjax, OURS_SCHEDULE, v), params, grads)
            )(jnp.asarray(values))
            theirs = path(build(optax, THEIRS_SCHEDULE, values[0]), params, grads)[0]
            pairs[name] = (jax.tree.map(lambda x: x[0], history), theirs)
            pairs[f"{name} (other value)"] = jax.tree.map(lambda x: x[1], history)
            if name != "fromage":
                read[name] = gdjax.get_hyperparam(state, "learning_rate")
        for name, build in UNBATCHED.items():
            pairs[name] = (
                path(build(gdjax, OURS_SCHEDULE), params, grads)[0],
                path(build(optax, THEIRS_SCHEDULE), params, grads)[0],
            )
        return pairs, read

    pairs, read = go()
    others = {name: pairs.pop(f"{name} (other value)") for name in VMAPPED}
    assert_pairs_close(pairs, rtol=1e-5, atol=1e-6)
    for name, other in others.items():
        assert not np.allclose(other["w"], pairs[name][0]["w"]), f"{name}: value ignored"
    last = float(OURS_SCHEDULE(STEPS - 1))
    for name, value in read.items():  # both members recorded the schedule's last value
        np.testing.assert_allclose(value, [last, last], rtol=1e-6, err_msg=name)


def test_new_optimizers_keep_bfloat16_and_pass_none_and_empty_leaves():
    params = {
        "w": jnp.ones((2, 3), jnp.bfloat16),
        "s": jnp.ones((), jnp.bfloat16),
        "frozen": None,
        "empty": jnp.zeros((0, 3), jnp.bfloat16),
    }
    grads = jax.tree.map(lambda p: jnp.full((3, *p.shape), 0.5, p.dtype), params)
    opts = {name: getattr(gdjax, name)(0.05) for name in NEW_OPTIMIZERS}

    @fast_jit
    def go():
        return {name: path(opt, params, grads) for name, opt in opts.items()}

    for name, (history, state) in go().items():
        assert history["frozen"] is None and history["empty"].shape == (3, 0, 3), name
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(history)), name
        fresh = [x.dtype for x in jax.tree.leaves(opts[name].init(params))]
        assert [x.dtype for x in jax.tree.leaves(state)] == fresh, name  # stable across steps
        if name != "lars":  # LARS's trust ratio (0.001) makes its bfloat16 step round to 0
            assert float(history["w"][-1, 0, 0]) < 1.0, name  # moved downhill


def _descend(transform, module):
    return module.chain(transform, module.scale(-0.05))


def _transformations():
    def pair(build, descend=True):
        built = (build(gdjax), build(optax))
        return (
            tuple(_descend(t, m) for t, m in zip(built, (gdjax, optax), strict=True))
            if descend
            else built
        )

    return {
        "ema": pair(lambda m: m.ema(0.8)),
        "ema no debias float32 accumulator": pair(
            lambda m: m.ema(0.9, debias=False, accumulator_dtype=jnp.float32)
        ),
        "centralize": pair(lambda m: m.centralize()),
        "apply_every": pair(lambda m: m.apply_every(3)),
        "adaptive_grad_clip": pair(lambda m: m.adaptive_grad_clip(0.1)),
        "adaptive_grad_clip axis": pair(lambda m: m.adaptive_grad_clip(0.05, eps=0.1, axis=-1)),
        "clip_by_block_rms": pair(lambda m: m.clip_by_block_rms(0.5)),
        "scale_by_trust_ratio": pair(lambda m: m.scale_by_trust_ratio(0.5, 0.5, 1e-3)),
        "normalize_by_update_norm": pair(lambda m: m.normalize_by_update_norm(0.3)),
        "scale_by_param_block_norm": pair(lambda m: m.scale_by_param_block_norm()),
        "set_to_zero": pair(lambda m: m.set_to_zero()),
        "identity": pair(lambda m: m.identity()),
        "lion smooth": pair(lambda m: m.scale_by_lion(mode="smooth", smooth_beta=3.0)),
        "lion refined": pair(lambda m: m.scale_by_lion(b2=0.5, mode="refined")),
        "zero_nans": pair(lambda m: m.zero_nans()),
        # After the step: the step is what keep_params_nonnegative cuts.
        "keep_params_nonnegative": pair(
            lambda m: m.chain(m.sgd(0.3), m.keep_params_nonnegative()), descend=False
        ),
    }


def test_new_transformations_match_optax_step_by_step():
    params, grads = _problem(positive=True)
    grads["w"] = grads["w"].at[2, 0, 1].set(jnp.nan)  # for zero_nans (the others skip step 2)
    cases = _transformations()
    clean = {name: pair for name, pair in cases.items() if name != "zero_nans"}

    @fast_jit
    def go():
        finite = jax.tree.map(lambda g: g.at[2].set(0.0), grads)  # the NaN is for zero_nans
        out = {
            name: (path(ours, params, finite)[0], path(theirs, params, finite)[0])
            for name, (ours, theirs) in clean.items()
        }
        first3 = jax.tree.map(lambda g: g[:3], grads)  # the last of 3 steps holds the NaN
        runs = [path(side, params, first3) for side in cases["zero_nans"]]
        out["zero_nans"] = tuple(history for history, _ in runs)
        found = [state[0].found_nan for _, state in runs]
        return out, found

    results, (ours_found, theirs_found) = go()
    assert_pairs_close(results, rtol=1e-5, atol=1e-6)
    assert jax.tree.map(bool, ours_found) == jax.tree.map(bool, theirs_found)
    assert bool(ours_found["w"]) and not bool(ours_found["layers"][0])  # the last step's NaN
    stopped = results["keep_params_nonnegative"][0]
    assert float(jnp.min(stopped["w"])) == 0.0  # some parameter was stopped at 0
    assert_close(results["set_to_zero"][0]["w"][-1], params["w"], rtol=0, atol=0)


def test_per_example_clipping_matches_optax():
    batch = random_tree(7, {"w": (3, 2), "b": [(4,)]}, steps=5)  # 5 examples
    batch["w"] = batch["w"] * jnp.arange(5.0)[:, None, None]
    batch = jax.tree.map(lambda g: g.at[0].set(0.0), batch)  # one example with a zero gradient

    @fast_jit
    def go(batch):
        out = {}
        for clip in (0.0, 1.5, 1e3):
            out[f"global {clip}"] = (
                gdjax.per_example_global_norm_clip(batch, clip),
                optax.per_example_global_norm_clip(batch, clip),
            )
            for uniform in (True, False):
                out[f"layer {clip} uniform={uniform}"] = (
                    gdjax.per_example_layer_norm_clip(batch, clip, uniform),
                    optax.per_example_layer_norm_clip(batch, clip, uniform),
                )
        return out

    results = go(batch)
    assert_pairs_close(results)
    assert int(results["global 1.5"][0][1]) == 4  # all but the zero example were clipped
    with pytest.raises(ValueError, match="batch"):
        gdjax.per_example_global_norm_clip({"w": jnp.ones((3, 2)), "b": jnp.ones(2)}, 1.0)


def test_bad_hyperparameters_of_the_new_optimizers_are_named():
    for build, message in [
        (lambda: gdjax.lion(-1e-3), r"learning_rate must be in \[0, inf\]"),
        (lambda: gdjax.lamb(1e-3, b1=1.0), r"b1 must be in \[0, 1\)"),
        (lambda: gdjax.adan(1e-3, b3=-0.1), r"b3 must be in \[0, 1\)"),
        (lambda: gdjax.lars(0.1, trust_coefficient=-1.0), "trust_coefficient must be"),
        (lambda: gdjax.fromage(-0.1), "learning_rate must be"),
        (lambda: gdjax.adafactor(clipping_threshold=-1.0), "threshold must be"),
        (lambda: gdjax.ema(1.0), r"decay must be in \[0, 1\)"),
        (lambda: gdjax.scale_by_lion(mode="soft"), "mode must be 'hard', 'smooth' or 'refined'"),
    ]:
        with pytest.raises(ValueError, match=message):
            build()
    with pytest.raises(TypeError, match="min_dim_size_to_factor must be a Python int"):
        gdjax.adafactor(min_dim_size_to_factor=2.5)
    with pytest.raises(ValueError, match="needs `params`"):
        gdjax.scale_by_trust_ratio().update({"w": jnp.ones(2)}, optax.EmptyState())
