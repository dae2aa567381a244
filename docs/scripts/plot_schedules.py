"""Draw one PNG per schedule in ``gdjax.schedules`` for the docs.

Run: ``python docs/scripts/plot_schedules.py [OUT_DIR]`` (default ``docs/img/schedules``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from gdjax import schedules as S

STEPS = 200
EXAMPLES = {
    "constant_schedule": ("constant_schedule(0.1)", S.constant_schedule(0.1)),
    "linear_schedule": (
        "linear_schedule(0.1, 0.01, 150, 25)",
        S.linear_schedule(0.1, 0.01, 150, 25),
    ),
    "exponential_decay": ("exponential_decay(0.1, 20, 0.8)", S.exponential_decay(0.1, 20, 0.8)),
    "step_decay": ("step_decay(0.1, step_size=50, factor=0.5)", S.step_decay(0.1, 50, 0.5)),
    "inverse_time_decay": ("inverse_time_decay(0.1, 0.5, 10)", S.inverse_time_decay(0.1, 0.5, 10)),
    "polynomial_schedule": (
        "polynomial_schedule(0.1, 0.001, 2.0, 180)",
        S.polynomial_schedule(0.1, 0.001, 2.0, 180),
    ),
    "cosine_decay_schedule": ("cosine_decay_schedule(0.1, 200)", S.cosine_decay_schedule(0.1, 200)),
    "warmup_cosine_decay_schedule": (
        "warmup_cosine_decay_schedule(0.0, 0.1, 20, 200, 0.001)",
        S.warmup_cosine_decay_schedule(0.0, 0.1, 20, 200, 0.001),
    ),
    "piecewise_constant_schedule": (
        "piecewise_constant_schedule(0.1, {60: 0.5, 120: 0.2})",
        S.piecewise_constant_schedule(0.1, {60: 0.5, 120: 0.2}),
    ),
    "one_cycle_schedule": ("one_cycle_schedule(200, 0.1)", S.one_cycle_schedule(200, 0.1)),
    "join_schedules": (
        "join_schedules([linear 0 -> 0.1 over 30, exponential_decay(0.1, 30, 0.7)], [30])",
        S.join_schedules(
            [S.linear_schedule(0.0, 0.1, 30), S.exponential_decay(0.1, 30, 0.7)], [30]
        ),
    ),
    "warmup_constant_schedule": (
        "warmup_constant_schedule(0.0, 0.1, 40)",
        S.warmup_constant_schedule(0.0, 0.1, 40),
    ),
    "warmup_exponential_decay_schedule": (
        "warmup_exponential_decay_schedule(0.0, 0.1, 20, 30, 0.6, end_value=0.005)",
        S.warmup_exponential_decay_schedule(0.0, 0.1, 20, 30, 0.6, end_value=0.005),
    ),
    "linear_onecycle_schedule": (
        "linear_onecycle_schedule(200, 0.1)",
        S.linear_onecycle_schedule(200, 0.1),
    ),
    "cosine_onecycle_schedule": (
        "cosine_onecycle_schedule(200, 0.1)",
        S.cosine_onecycle_schedule(200, 0.1),
    ),
    "piecewise_interpolate_schedule": (
        'piecewise_interpolate_schedule("cosine", 0.1, {50: 0.5, 100: 0.2, 150: 0.5})',
        S.piecewise_interpolate_schedule("cosine", 0.1, {50: 0.5, 100: 0.2, 150: 0.5}),
    ),
    "sgdr_schedule": (
        "sgdr_schedule(3 cycles: warmup 5, lengths 40, 60, 100, peak 0.1)",
        S.sgdr_schedule(
            [
                {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 5, "decay_steps": n}
                for n in (40, 60, 100)
            ]
        ),
    ),
}


def plot_all(out_dir: Path) -> list[Path]:
    """Write ``<name>.png`` for each example into ``out_dir`` (atomically) and return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = jnp.arange(STEPS)
    written = []
    for name, (label, schedule) in EXAMPLES.items():
        values = jax.vmap(schedule)(steps)
        fig, ax = plt.subplots(figsize=(5, 2.6), dpi=90)
        ax.plot(steps, values, color="tab:blue")
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fd, tmp = tempfile.mkstemp(suffix=".png", dir=out_dir)
        os.close(fd)
        fig.savefig(tmp)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(path)
    return written


if __name__ == "__main__":
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "img" / "schedules"
    )
    for p in plot_all(target):
        print(p)
