"""Recent methods beyond optax's core: schedule-free SGD/AdamW, Muon, ADOPT and AdEMAMix.

Each matches ``optax.contrib``'s function of the same name (arguments and defaults) and is
checked against its paper's update rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import optax

from gdjax import schedules
from gdjax.base import ScalarOrSchedule, chain
from gdjax.optimizers._adaptive import adamw
from gdjax.optimizers._sgd import sgd
from gdjax.transforms import (
    MuonDimensionNumbers,
    add_decayed_weights,
    partition,
    scale_by_ademamix,
    scale_by_adopt,
    scale_by_learning_rate,
    scale_by_muon,
    scale_by_rms,
    scale_by_shape,
    schedule_free,
)
from gdjax.transforms.adam_variants import _quarter_power
from gdjax.transforms.muon import NS_COEFFS_STANDARD, NS_PRESETS, resolve_dims
from gdjax.transforms.regularization import Mask

Extra = optax.GradientTransformationExtraArgs


def _dims_or_none(x: Any) -> bool:
    return x is None or (hasattr(x, "reduction_axis") and hasattr(x, "output_axis"))


def _warmed_up(
    learning_rate: ScalarOrSchedule, warmup_steps: int | None
) -> tuple[ScalarOrSchedule, ScalarOrSchedule]:
    """$\\gamma_t = \\gamma\\min(1, t/T)$ for the averaging weights (counted from $t = 1$), and
    the same values for the base optimizer, whose own count starts at 0."""
    if warmup_steps is None:
        return learning_rate, learning_rate
    warmup = schedules.linear_schedule(0.0, learning_rate, warmup_steps)
    return warmup, lambda count: warmup(count + 1)


def schedule_free_sgd(
    learning_rate: float | jax.Array = 1.0,
    warmup_steps: int | None = None,
    b1: float | jax.Array = 0.9,
    weight_decay: float | jax.Array | None = None,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> Extra:
    r"""Schedule-free SGD (Defazio et al., 2024): no decay schedule, averaging instead.

    $$
    y_t = (1-\beta_1) z_t + \beta_1 x_t, \quad
    z_{t+1} = z_t - \gamma_t \big(\nabla f(y_t) + \lambda y_t\big), \quad
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}
    $$

    with $c_{t+1} = \gamma_t^2 / \sum_{i \le t}\gamma_i^2$ and
    $\gamma_t = \gamma\min(1, t/T_{warmup})$ (see `schedule_free`). The parameters the
    training loop holds are $y_t$; evaluate at $x_t$ = ``schedule_free_eval_params(state,
    params)``.

    With a warm-up, ``optax.contrib.schedule_free_sgd`` 0.2.8 steps $z$ with
    $\gamma_{t-1}$ but weights the average with $\gamma_t$ (its first step leaves $z$ in
    place); gdjax uses $\gamma_t$ for both, as the paper does. Without warm-up the two agree.

    Args:
        learning_rate: $\gamma \ge 0$ (the peak).
        warmup_steps: length of the linear warm-up (``None``: none).
        b1: $\beta_1 \in (0, 1]$.
        weight_decay: $\lambda$, added to the gradient (``None``: none).
        weight_lr_power: the power $p$ of the averaging weights $(\max_{i \le t}\gamma_i)^p$.
        state_dtype: dtype of $z$.
    """
    lr, base_lr = _warmed_up(learning_rate, warmup_steps)
    base = sgd(base_lr)
    if weight_decay is not None:
        base = chain(add_decayed_weights(weight_decay), base)
    return schedule_free(base, lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def schedule_free_adamw(
    learning_rate: float | jax.Array = 0.0025,
    warmup_steps: int | None = None,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array = 0.0,
    weight_lr_power: float | jax.Array = 2.0,
    state_dtype: Any = None,
) -> Extra:
    r"""Schedule-free AdamW (Defazio et al., 2024).

    $$
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \quad
    z_{t+1} = z_t - \gamma_t\left(\frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
    + \lambda y_t\right)
    $$

    with $g_t = \nabla f(y_t)$, $\gamma_t = \gamma\min(1, t/T_{warmup})$ and $x$, $y$ as in
    `schedule_free_sgd` (the same warm-up difference from ``optax.contrib`` applies). As in
    ``optax.contrib``, Adam's bias correction divides $v_t$; the paper's Algorithm 1 folds
    $\sqrt{1-\beta_2^t}$ into $\gamma_t$ instead, so there it also scales the weight decay and
    the averaging weights $\gamma_t^2$. The two agree once $\beta_2^t \approx 0$.

    Args:
        learning_rate: $\gamma \ge 0$ (the peak).
        warmup_steps: length of the linear warm-up (``None``: none).
        b1: $\beta_1 \in (0, 1]$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon$.
        weight_decay: $\lambda \ge 0$.
        weight_lr_power: the power of the averaging weights.
        state_dtype: dtype of $z$.
    """
    lr, base_lr = _warmed_up(learning_rate, warmup_steps)
    base = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(base_lr),
    )
    return schedule_free(base, lr, b1=b1, weight_lr_power=weight_lr_power, state_dtype=state_dtype)


def adopt(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.9999,
    eps: float | jax.Array = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[jax.Array], jax.Array] = _quarter_power,
) -> Extra:
    r"""ADOPT (Taniguchi et al., 2024): Adam that converges for any $\beta_2$.

    $$
    m_t = \beta_1 m_{t-1} + (1-\beta_1)\operatorname{clip}\!\left(
    \frac{g_t}{\max(\sqrt{v_{t-1}}, \epsilon)}, t^{1/4}\right), \quad
    \theta_{t+1} = \theta_t - \alpha_t m_t, \quad
    v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2
    $$

    with $v_0 = g_0^2$ from the first call, which does not move the parameters (see
    `scale_by_adopt`).

    Args:
        learning_rate: $\alpha \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        eps: $\epsilon$.
        mu_dtype: dtype of the first moment.
        nesterov: look-ahead form; a Python bool.
        use_clipping: clip the normalized gradient; a Python bool.
        clip_value_fn: $t \mapsto$ clipping value ($t^{1/4}$).
    """
    return chain(
        scale_by_adopt(
            b1,
            b2,
            eps,
            mu_dtype,
            nesterov=nesterov,
            use_clipping=use_clipping,
            clip_value_fn=clip_value_fn,
        ),
        scale_by_learning_rate(learning_rate),
    )


def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: float | jax.Array = 0.9,
    b2: float | jax.Array = 0.999,
    b3: ScalarOrSchedule = 0.9999,
    alpha: ScalarOrSchedule = 5.0,
    eps: float | jax.Array = 1e-8,
    eps_root: float | jax.Array = 0.0,
    mu_dtype: Any = None,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Mask = None,
) -> Extra:
    r"""AdEMAMix (Pagliardini et al., 2024): AdamW plus a slow momentum.

    $$
    \theta_{t+1} = \theta_t - \eta_t\left(
    \frac{\hat m^{(1)}_t + \alpha\, m^{(2)}_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\theta_t\right)
    $$

    with $m^{(1)}$ Adam's momentum ($\beta_1$) and $m^{(2)}$ a slow EMA ($\beta_3$, not
    bias-corrected); see `scale_by_ademamix`. The paper warms up $\alpha$ and $\beta_3$ over
    the run, which schedules for ``alpha`` and ``b3`` do.

    Args:
        learning_rate: $\eta \ge 0$: a number, array or schedule.
        b1: $\beta_1 \in [0, 1)$.
        b2: $\beta_2 \in [0, 1)$.
        b3: $\beta_3$: a number, array or schedule.
        alpha: $\alpha \ge 0$: a number, array or schedule.
        eps: $\epsilon$.
        eps_root: $\epsilon$ inside the root.
        mu_dtype: dtype of the moments.
        weight_decay: $\lambda \ge 0$.
        mask: which parameters decay.
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: tuple | str = NS_COEFFS_STANDARD,
    ns_steps: int = 5,
    beta: float | jax.Array = 0.95,
    eps: float | jax.Array = 1e-8,
    weight_decay: float | jax.Array = 0.0,
    weight_decay_mask: Mask = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: Literal["frobenius", "spectral", "aol", "schatten"] = "frobenius",
    adam_b1: float | jax.Array = 0.9,
    adam_b2: float | jax.Array = 0.999,
    adam_eps_root: float | jax.Array = 0.0,
    adam_weight_decay: float | jax.Array = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: float | jax.Array | None = None,
) -> Extra:
    r"""Muon (Jordan et al., 2024): orthogonalized momentum for matrices, AdamW for the rest.

    For every matrix parameter $W$ (shape $n_{in} \times n_{out}$):

    $$
    m_t = \beta m_{t-1} + (1-\beta) g_t, \qquad
    W_{t+1} = W_t - \eta_t\Big(\sqrt{\max(1, n_{out}/n_{in})}\;
    \operatorname{NS}(\hat m_t) + \lambda W_t\Big)
    $$

    where $\operatorname{NS}$ replaces $\hat m_t = U\Sigma V^\top$ by about $UV^\top$ with
    five Newton-Schulz steps (`orthogonalize_via_newton_schulz`), and $\hat m_t$ is NAdam's
    moment by default. Parameters of other ranks (biases, scales) are trained by `adamw`
    with the ``adam_*`` settings. ``muon_weight_dimension_numbers`` (a tree of
    `MuonDimensionNumbers`, ``None`` leaves for AdamW, or a function of the parameters)
    extends Muon to other ranks; ``consistent_rms`` switches the shape factor to
    $\rho\sqrt{\max(n_{in}, n_{out})}$.

    Args:
        learning_rate: $\eta \ge 0$: a number, array or schedule.
        ns_coeffs: Newton-Schulz coefficients $(a, b, c)$, per-step rows, or a preset
            (``"standard"``, ``"dion"``).
        ns_steps: Newton-Schulz steps.
        beta: $\beta \in [0, 1)$.
        eps: $\epsilon$ (also AdamW's).
        weight_decay: $\lambda \ge 0$ for the matrices.
        weight_decay_mask: which Muon parameters decay.
        mu_dtype: dtype of the momenta.
        nesterov: NAdam's moment; a Python bool.
        adaptive: scale by the dual norm (see `scale_by_muon`); a Python bool.
        preconditioning: the rescaling before Newton-Schulz.
        adam_b1: AdamW's $\beta_1$.
        adam_b2: AdamW's $\beta_2$.
        adam_eps_root: AdamW's $\epsilon$ inside the root.
        adam_weight_decay: AdamW's weight decay.
        adam_learning_rate: AdamW's learning rate (``None``: ``learning_rate``).
        muon_weight_dimension_numbers: see above.
        consistent_rms: $\rho$, or ``None`` for the width factor.
    """
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    if isinstance(ns_coeffs, str):
        if ns_coeffs not in NS_PRESETS:
            raise ValueError(
                f"ns_coeffs preset must be one of {sorted(NS_PRESETS)}; got {ns_coeffs!r}"
            )
        ns_coeffs = NS_PRESETS[ns_coeffs]

    def dims_of(params):
        if muon_weight_dimension_numbers is None:
            return jax.tree.map(lambda p: MuonDimensionNumbers() if p.ndim == 2 else None, params)
        return resolve_dims(muon_weight_dimension_numbers, params)

    def labels(params):
        def label(d, sub):
            return jax.tree.map(lambda _: "adam" if d is None else "muon", sub)

        return jax.tree.map(label, dims_of(params), params, is_leaf=_dims_or_none)

    def muon_dims(updates):
        # Inside `partition` the AdamW leaves are masked out (optax.MaskedNode): mirror them.
        if muon_weight_dimension_numbers is None:
            return jax.tree.map(lambda _: MuonDimensionNumbers(), updates)
        return jax.tree.map(
            lambda d, _: optax.MaskedNode() if d is None else d,
            resolve_dims(muon_weight_dimension_numbers, updates),
            updates,
            is_leaf=_dims_or_none,
        )

    return partition(
        {
            "muon": chain(
                scale_by_muon(
                    ns_coeffs,
                    ns_steps,
                    beta,
                    eps,
                    mu_dtype,
                    nesterov=nesterov,
                    adaptive=adaptive,
                    preconditioning=preconditioning,
                    weight_dimension_numbers=muon_dims,
                ),
                scale_by_shape(muon_dims, consistent_rms),
                add_decayed_weights(weight_decay, weight_decay_mask),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(
                adam_learning_rate,
                b1=adam_b1,
                b2=adam_b2,
                eps=eps,
                eps_root=adam_eps_root,
                weight_decay=adam_weight_decay,
                mu_dtype=mu_dtype,
                nesterov=nesterov,
            ),
        },
        labels,
    )
