"""Run studies and write their pages, JSON, plots, and the index page."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from experiments._core import Context, Study
from experiments._io import (
    atomic_write_text,
    describe_machine,
    machine_info,
    write_figure,
    write_json,
)
from experiments._report import table

#: Pages in docs/results/ written by others that the index links when present.
EXTRA_PAGES: dict[str, str] = {
    "fashion_mnist_quality": "Fashion-MNIST quality (models/data)",
}


def run_study(study: Study, ctx: Context, out_dir: Path) -> dict[str, Any]:
    """Run one study and write ``<name>.json``, ``<name>.md`` and ``<name>_*.png``.

    Returns the run record stored in the JSON (``run`` key): timing, settings, machine.
    """
    t0 = time.perf_counter()
    result = study.run(ctx)
    seconds = time.perf_counter() - t0
    info = machine_info()
    run = {
        "study": study.name,
        "title": study.title,
        "source": study.source,
        "settings": "quick" if ctx.quick else "full",
        "seed": ctx.seed,
        "data": result.data,
        "headline": result.headline,
        "seconds": round(seconds, 2),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": info,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_names = []
    for stem, fig in result.figures.items():
        name = f"{study.name}_{stem}.png"
        write_figure(out_dir / name, fig)
        figure_names.append(name)
    write_json(out_dir / f"{study.name}.json", {"run": run, "results": result.numbers})
    atomic_write_text(
        out_dir / f"{study.name}.md", render_page(study, run, result.page, figure_names)
    )
    return run


def render_page(study: Study, run: dict[str, Any], body: str, figures: list[str]) -> str:
    """The study's Markdown page: title, data line, body, plots, and how it was produced."""
    cmd = f"python -m experiments {study.name}" + (" --quick" if run["settings"] == "quick" else "")
    plots = "\n\n".join(f"![{name}]({name})" for name in figures)
    return (
        f"# {study.title}\n\n"
        f"*Source: {study.source}.*\n\n"
        f"**Data:** {run['data']}\n\n"
        f"**Headline:** {run['headline']}\n\n"
        f"{body.strip()}\n\n" + (f"## Plots\n\n{plots}\n\n" if figures else "") + "---\n\n"
        f"Produced by `{cmd}` ({run['settings']} settings, seed {run['seed']}) on "
        f"{run['date']} in {run['seconds']:.0f} s; machine: {describe_machine(run['machine'])}; "
        f"gdjax {run['machine']['gdjax']}, JAX {run['machine']['jax']} "
        f"({run['machine']['jax_backend']} backend). All numbers are in "
        f"[`{study.name}.json`]({study.name}.json).\n"
    )


def write_index(out_dir: Path, studies: dict[str, Study]) -> Path:
    """Write ``index.md`` linking every study page present in ``out_dir`` (and extra pages)."""
    rows = []
    for name, study in studies.items():
        path = out_dir / f"{name}.json"
        if not path.exists():
            rows.append([f"{study.title} (`{name}`)", "not run yet", "—", "—", "—"])
            continue
        run = json.loads(path.read_text())["run"]
        rows.append(
            [
                f"[{study.title}]({name}.md)",
                run["headline"],
                f"{run['date']}, {run['settings']}",
                describe_machine(run["machine"]),
                run["machine"]["gdjax"],
            ]
        )
    extras = [
        f"- [{title}]({stem}.md)"
        for stem, title in EXTRA_PAGES.items()
        if (out_dir / f"{stem}.md").exists()
    ]
    text = (
        "# Results\n\n"
        "Every table of the source documents re-run for real with gdjax: each page puts the "
        "measured table beside the document's, says which data produced it, and reads the "
        "difference honestly. Regenerate with `python -m experiments all` (full settings) or "
        "`python -m experiments NAME`; `python -m experiments list` lists the studies.\n\n"
        + table(["study", "headline (measured vs document)", "run", "machine", "gdjax"], rows)
        + "\n\n"
        + ("## Other result pages\n\n" + "\n".join(extras) + "\n" if extras else "")
    )
    path = out_dir / "index.md"
    atomic_write_text(path, text)
    return path
