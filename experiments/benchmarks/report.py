"""Write the figures of ``docs/performance.md`` from the result files in ``docs/benchmarks/``.

Every table of figures on that page sits between ``<!-- report:NAME -->`` and
``<!-- /report:NAME -->`` and is generated here from ``docs/benchmarks/NAME.json``, so the page
cannot drift from the measurements (``tests/test_benchmarks.py`` regenerates the tables and
compares).

    python experiments/benchmarks/report.py          # rewrite the tables in the page
    python experiments/benchmarks/report.py --check  # exit 1 if the page differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "docs" / "benchmarks"

ANCHORS = ("flax+optax loop", "lax.scan epoch", "torch-2 eager", "torch-2 compile")
LABELS = {
    "gdjax.fit": "`gdjax.fit`",
    "gdjax.fit (persistent cache)": "`gdjax.fit`, persistent cache filled",
    "flax+optax loop": "flax + optax loop",
    "lax.scan epoch": "hand-written `lax.scan` epoch",
    "torch-2 eager": "PyTorch eager, fused Adam (2 threads)",
    "torch-2 compile": "PyTorch `torch.compile` (2 threads)",
    "gdjax.sweep": "`gdjax.sweep`, one program",
    "sequential flax loops": "sequential flax + optax loops (step compiled once)",
    "vmapped lax.scan epoch": "hand-written vmapped `lax.scan` epoch",
}


def _med(values: list[float]) -> float:
    return float(np.median(values))


def _spread(values: list[float], fmt: str) -> str:
    return f"{format(_med(values), fmt)} [{format(min(values), fmt)}–{format(max(values), fmt)}]"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _sizes(results: dict) -> list[int]:
    return sorted({int(k.split("/")[0]) for k in results["steady"]})


def engine_header(data: dict) -> str:
    s = data["settings"]
    return (
        f"Run {data['date']} on {data['machine']['cores']} cores ({data['machine']['platform']}),"
        f" jax {data['versions']['jax']}: {s['rounds']} interleaved rounds; cold calls are "
        "fresh processes (compile included, imports and data loading not timed); the warm "
        "overhead is a second call's time minus its epochs' time; steady is the median epoch "
        f"of {s['steady_epochs']}-epoch calls with the first epoch left out. Median "
        "[min–max]; seconds unless marked.\n"
    )


def engine_cold(data: dict) -> str:
    res = data["results"]
    rows = ["| H | epochs | runner | seconds | fastest anchor ÷ this |", "|---|---|---|---|---|"]
    for h in _sizes(res):
        for e in data["settings"]["cold_epochs"]:
            cell = {
                k.split("/", 2)[2]: v for k, v in res["cold"].items() if k.startswith(f"{h}/{e}/")
            }
            best = min((a for a in ANCHORS if a in cell), key=lambda a: _med(cell[a]))
            for runner, v in cell.items():
                ratio = _med(cell[best]) / _med(v)
                rows.append(
                    f"| {h} | {e} | {LABELS[runner]} | {_spread(v, '.2f')} | {ratio:.2f}× |"
                )
    return "\n".join(rows) + "\n"


def engine_warm(data: dict) -> str:
    res = data["results"]
    rows = [
        "| H | runner | fixed overhead of a warm call (ms) |",
        "|---|---|---|",
    ]
    for h in _sizes(res):
        for k, v in res["warm"].items():
            if k.startswith(f"{h}/") and not k.endswith("/copy"):
                ms = [1e3 * x for x in v]
                rows.append(f"| {h} | {LABELS[k.split('/', 1)[1]]} | {_spread(ms, '.1f')} |")
        copy = [1e3 * x for x in res["warm"][f"{h}/copy"]]
        rows.append(f"| {h} | *host-to-device copy of the data set* | {_spread(copy, '.1f')} |")
    return "\n".join(rows) + "\n"


def engine_steady(data: dict) -> str:
    res = data["results"]
    rows = ["| H | runner | s/epoch | this ÷ `gdjax.fit` |", "|---|---|---|---|"]
    for h in _sizes(res):
        cell = {k.split("/", 1)[1]: v for k, v in res["steady"].items() if k.startswith(f"{h}/")}
        fit = _med(cell["gdjax.fit"])
        for runner, v in cell.items():
            rows.append(f"| {h} | {LABELS[runner]} | {_spread(v, '.3f')} | {_med(v) / fit:.2f}× |")
    return "\n".join(rows) + "\n"


def _engine_targets(data: dict) -> list[str]:
    res = data["results"]
    rows = []
    for h in _sizes(res):
        cold = {k: v for k, v in res["cold"].items() if k.startswith(f"{h}/")}
        for e, need, what in ((1, 1.0, "no slower than"), (10, 1.5, "≥ 1.5× faster than")):
            cell = {k.split("/", 2)[2]: v for k, v in cold.items() if k.startswith(f"{h}/{e}/")}
            if not cell:
                continue
            best = min((a for a in ANCHORS if a in cell), key=lambda a: _med(cell[a]))
            for runner in ("gdjax.fit", "gdjax.fit (persistent cache)"):
                ratio = _med(cell[best]) / _med(cell[runner])
                rows.append(
                    f"| cold call, {e} epoch(s), H = {h}: {LABELS[runner]} {what} the fastest "
                    f"anchor ({LABELS[best]}) | {ratio:.2f}× | {_verdict(ratio >= need)} |"
                )
        overhead = 1e3 * _med(res["warm"][f"{h}/gdjax.fit"])
        copy = 1e3 * _med(res["warm"][f"{h}/copy"])
        rows.append(
            f"| warm call, H = {h}: fixed overhead ≤ 20 ms + the host-to-device copy "
            f"({copy:.1f} ms) | {overhead:.1f} ms | {_verdict(overhead <= 20 + copy)} |"
        )
        steady = {k.split("/", 1)[1]: v for k, v in res["steady"].items() if k.startswith(f"{h}/")}
        best = min((a for a in ANCHORS if a in steady), key=lambda a: _med(steady[a]))
        ratio = _med(steady[best]) / _med(steady["gdjax.fit"])
        need = 1.5 if h <= 32 else 1.2
        rows.append(
            f"| steady epoch, H = {h}: ≥ {need}× the fastest anchor ({LABELS[best]}) | "
            f"{ratio:.2f}× | {_verdict(ratio >= need)} |"
        )
    return rows


def sweep_table(data: dict) -> str:
    s, res = data["settings"], data["results"]
    steady = res["steady_per_member_epoch"]
    seq = _med(steady["sequential flax loops"])
    rows = [
        f"Run {data['date']}, {s['members']} learning rates, H = {s['hidden']}, {s['epochs']} "
        f"epochs per call, {s['rounds']} interleaved rounds; the first call compiles.\n",
        "| runner | first call (s) | steady s per member-epoch | throughput vs sequential |",
        "|---|---|---|---|",
    ]
    for runner, v in steady.items():
        rows.append(
            f"| {LABELS[runner]} | {res['first_call'][runner]:.2f} | {_spread(v, '.4f')} | "
            f"{seq / _med(v):.2f}× |"
        )
    return "\n".join(rows) + "\n"


def _sweep_targets(data: dict) -> list[str]:
    steady = data["results"]["steady_per_member_epoch"]
    ratio = _med(steady["sequential flax loops"]) / _med(steady["gdjax.sweep"])
    return [
        f"| sweep of {data['settings']['members']} rates, steady: ≥ 3× the sequential loops | "
        f"{ratio:.2f}× | {_verdict(ratio >= 3)} |"
    ]


def shuffle_table(data: dict) -> str:
    rows = [
        f"Run {data['date']}, median of {data['settings']['reps']} draws, milliseconds.\n",
        "| n | `jax.random.permutation` | gdjax `permutation` | speed-up |",
        "|---|---|---|---|",
    ]
    for n, v in data["results"].items():
        a, g = v["jax.random.permutation_ms"], v["gdjax_permutation_ms"]
        rows.append(f"| {int(n):,} | {a:.2f} | {g:.2f} | {a / g:.1f}× |")
    return "\n".join(rows) + "\n"


def _load_note(data: dict) -> str:
    """What the result file says about other load on the machine while it was measured."""
    for key in ("load_average_before_after", "load_average_at_end"):
        if key in data:
            first = data[key][0] if isinstance(data[key][0], list) else data[key]
            return f" Load average while measuring: about {first[0]:.0f} on 2 cores."
    note = data.get("note", "")
    return f" {note[0].upper()}{note[1:]}." if note else ""


def federated_table(data: dict) -> str:
    s, res = data["settings"], data["results"]
    rows = [
        f"Run {data['date']}: `{data['command']}`; {s['clients']} clients, "
        f"{s['clients_per_round']} per round, {s['local_epochs']} local epochs of batches of "
        f"{s['batch_size']}, MLP with {s['hidden']} hidden units.{_load_note(data)}\n",
        "| runner | first round, compile included (s) | warm round (s) | rounds/s |",
        "|---|---|---|---|",
    ]
    for name, v in res.items():
        rows.append(
            f"| {name} | {v['cold_first_round_seconds']:.1f} | {v['warm_round_seconds']:.2f} | "
            f"{v['warm_rounds_per_second']:.2f} |"
        )
    sp = data["speedup"]
    rows.append(
        f"\n`gdjax.federated.fit` ÷ the loop: {sp['warm']:.2f}× the speed on warm rounds, "
        f"{sp['cold']:.2f}× on the first round (its one program for all clients compiles longer)."
    )
    return "\n".join(rows) + "\n"


def tune_table(data: dict) -> str:
    s = data["settings"]
    rows = [
        f"Run {data['date']}: {s['configs']} configurations of (learning rate, weight decay), "
        f"{s['n_train']} training and {s['n_val']} validation images, {s['epochs']} epochs, "
        f"target validation accuracy {data['target_val_acc']:.4f} (the grid's best minus "
        f"0.005).{_load_note(data)}\n",
        "| tuner | wall (s) | member-epochs | best val. acc. | its test acc. | target reached after (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in data["runs"].items():
        reach = v.get("reach_seconds")
        rows.append(
            f"| {name} | {v['wall_seconds']:.1f} | {v['member_epochs']} | {v['best_val_acc']:.4f} "
            f"| {v['winner_test_acc']:.4f} | {'—' if reach is None else f'{reach:.1f}'} |"
        )
    t = data["targets"]
    rows.append(
        f"\nSuccessive halving used {t['halving_compute_fraction_of_grid']:.0%} of the grid's "
        f"compute. The fastest gdjax tuner ({t['fastest_gdjax_tuner']}) reached the target at "
        f"{t['speedup_over_optuna_flax']:.2f}× the speed of optuna driving sequential flax runs "
        f"(median over the anchor's seeds, {t['anchor_median_reach_seconds']:.1f} s)."
    )
    return "\n".join(rows) + "\n"


def stream_table(data: dict) -> str:
    t = data["throughput"]
    rows = [
        f"Run {data['date']}: `{data['command'].split(' --json')[0]}`; {t['model']}, "
        f"{t['n']} examples, batch {t['batch_size']}.{_load_note(data)}\n",
        "| data | first epoch (s) | steady epoch (s) | examples/s | vs in memory | same bits |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in t["runners"].items():
        rows.append(
            f"| {name} | {v['cold_s']:.2f} | {v['steady_s']:.2f} | {v['examples_per_s']:,.0f} | "
            f"{v['ratio_to_in_memory']:.2f}× | {'yes' if v['identical_to_in_memory'] else 'no'} |"
        )
    big = data.get("larger_than_memory")
    if big:
        rows.append(
            f"\nLarger than memory: {big['data_gb']:.1f} GB of {big['model']} streamed from a "
            f"memmap by a process limited to {big['limit_gb']:.1f} GB of data memory "
            f"(enforced: {'yes' if big['limit_enforced'] else 'no'}): {big['examples_per_s']:,.0f} "
            f"examples/s ({big['mb_per_s']:.1f} MB/s), peak anonymous memory "
            f"{big['sampled_peaks_mib']['RssAnon']:.0f} MiB (the rest of the resident set is "
            "the file's pages, which the kernel reclaims)."
        )
    return "\n".join(rows) + "\n"


def optimizers_table(data: dict) -> str:
    res = data["results"]
    final = {n: min(r["ratio"], r.get("recheck", r)["ratio"]) for n, r in res.items()}
    over = [n for n, v in final.items() if v > 1.10]
    rows = [
        f"Run {data['date']}: `{data['command']}`; {data['parameters']:,} parameters in "
        f"{data['leaves']} leaves, one jitted step with parameters and state donated, the "
        f"median of up to {data['repeats']} interleaved steady steps.{_load_note(data)}\n",
        "| optimizer | compared with | gdjax ms | optax ms | gdjax ÷ optax |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(res, key=lambda n: -final[n]):
        r = res[name]
        best = r.get("recheck", r) if r.get("recheck", r)["ratio"] < r["ratio"] else r
        rows.append(
            f"| `{name}` | {r['oracle']} | {best['steady_ms']['gdjax']:.2f} | "
            f"{best['steady_ms']['optax']:.2f} | {final[name]:.2f}× |"
        )
    worst = max(final, key=final.get)
    rows.append(
        f"\nMedian ratio {float(np.median(list(final.values()))):.2f}, worst `{worst}` "
        f"{final[worst]:.2f}×; slower than optax by more than 10%: "
        f"{', '.join(f'`{n}`' for n in over) or 'none'} (a ratio above 1.10 was measured once more "
        "with twice the repeats; the lower of the two counts)."
    )
    return "\n".join(rows) + "\n"


def second_order_table(data: dict) -> str:
    out = [f"Run {data['date']}: `python experiments/benchmarks/bench_second_order.py "
           f"{data['command']}`.{_load_note(data)}\n"]  # fmt: skip
    titles = {
        "logistic_breast_cancer": "Logistic regression, breast cancer",
        "multinomial_digits": "Multinomial logistic regression, digits",
        "least_squares": "Nonlinear least squares",
    }
    for key, title in titles.items():
        if key not in data:
            continue
        out += [
            f"**{title}** (relative gap to the optimum {data['target_relative_gap']:g}):\n",
            "| runner | steps | final gap | reached | cold (s) | warm (ms) |",
            "|---|---|---|---|---|---|",
        ]
        for r in data[key]["rows"]:
            out.append(
                f"| {r['runner']} | {r['steps']} | {r['final_relative_gap']:.1e} | "
                f"{'yes' if r['reached_1e-8'] else 'no'} | {r['cold_seconds']:.2f} | "
                f"{1e3 * r['warm_seconds']:.2f} |"
            )
        out.append("")
    v = data["vmapped_starts"]
    out.append(
        f"{v['starts']} starting points, L-BFGS: gdjax vmapped "
        f"{1e3 * v['gdjax_lbfgs_vmapped_warm_seconds']:.1f} ms against a loop of SciPy L-BFGS-B "
        f"runs {1e3 * v['scipy_lbfgsb_loop_warm_seconds']:.1f} ms (warm): "
        f"{v['throughput_ratio_warm']:.1f}× the throughput ({v['throughput_ratio_cold']:.1f}× cold)."
    )
    ras = data["rastrigin"]
    for dim in ("2-D", "10-D"):
        r = ras[dim]
        out.append(
            f"Rastrigin {dim}, {ras['starts']} starts reaching the global minimum: gradient "
            f"descent {100 * r['gd_fraction_global']:.1f}%, simulated annealing then gradient "
            f"descent {100 * r['sa_then_gd_fraction_global']:.1f}%."
        )
    out.append("\n| target (second-order issue) | measured | verdict |\n|---|---|---|")
    for name, t in data["targets"].items():
        out.append(f"| {name.replace('_', ' ')} | {t['measured']:.3g} | {_verdict(t['met'])} |")
    return "\n".join(out) + "\n"


def precision_table(data: dict) -> str:
    out = [f"Run {data['date']}: `{data['command'].split(' --json')[0]}`.{_load_note(data)}\n"]
    for key, title in (("mlp", "MLP"), ("cnn", "CNN")):
        if key not in data:
            continue
        res = data[key]
        out += [
            f"**{title}**, {res['n']:,} training images, {res['epochs']} epochs, batch 128:\n",
            "| compute | first epoch (s) | steady epoch (s) | vs float32 | test accuracy |",
            "|---|---|---|---|---|",
        ]
        for label, row in res["policies"].items():
            out.append(
                f"| {label} | {row['cold_s']:.2f} | {row['steady_s']:.3f} | "
                f"{row['speed_vs_float32']:.2f}× | {row['test_accuracy']:.4f} |"
            )
        out.append("")
    return "\n".join(out)


def targets(engine: dict, sweep: dict | None) -> str:
    rows = ["| target (engine issue) | measured | verdict |", "|---|---|---|"]
    rows += _engine_targets(engine)
    if sweep is not None:
        rows += _sweep_targets(sweep)
    return "\n".join(rows) + "\n"


def tables() -> dict[str, str]:
    """Every generated block of the page, by name."""
    out: dict[str, str] = {}
    load: Callable[[str], dict | None] = lambda n: (  # noqa: E731
        json.loads((RESULTS / f"{n}.json").read_text())
        if (RESULTS / f"{n}.json").exists()
        else None
    )
    engine, sweep, shuffle = load("engine"), load("sweep"), load("shuffle")
    for name, render_one in (
        ("federated", federated_table),
        ("tune", tune_table),
        ("stream", stream_table),
        ("optimizers", optimizers_table),
        ("second_order", second_order_table),
        ("precision", precision_table),
    ):
        data = load(name)
        if data is not None:
            out[name] = render_one(data)
    if shuffle is not None:
        out["shuffle"] = shuffle_table(shuffle)
    if engine is not None:
        out["engine-header"] = engine_header(engine)
        out["engine-cold"] = engine_cold(engine)
        out["engine-warm"] = engine_warm(engine)
        out["engine-steady"] = engine_steady(engine)
        out["targets"] = targets(engine, sweep)
    if sweep is not None:
        out["sweep"] = sweep_table(sweep)
    return out


BLOCK = re.compile(r"(<!-- report:([\w-]+) -->\n)(.*?)(<!-- /report:\2 -->)", re.S)


def render(page: str, blocks: dict[str, str]) -> str:
    """``page`` with each marked block replaced by its generated text."""

    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in blocks:
            raise KeyError(f"docs/performance.md has a block {name!r} that no result file fills")
        return m.group(1) + blocks[name] + m.group(4)

    return BLOCK.sub(fill, page)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    args = ap.parse_args()
    page = PAGE.read_text()
    new = render(page, tables())
    if args.check:
        if new != page:
            print("docs/performance.md differs from docs/benchmarks/*.json; run report.py")
            sys.exit(1)
        return
    PAGE.write_text(new)


if __name__ == "__main__":
    main()
