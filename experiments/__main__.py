"""Command line: ``python -m experiments [NAME ...] [--quick] [--data-dir DIR] [--out DIR]``.

``python -m experiments list`` lists the studies. With no names, the default selection runs:
the studies that need no data beyond what pip installs and finish in minutes on a laptop.
``all`` runs every study.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "results"


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    """Parse and validate the command line (errors exit with status 2 before anything runs)."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description="Re-run the source documents' tables with gdjax and publish the results.",
        epilog="Studies: " + ", ".join(names) + ". Use 'list' to describe them, 'all' for all.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="studies to run, 'all' or 'list'")
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds per study)")
    parser.add_argument(
        "--data-dir", type=Path, help="folder with mnist/, cifar-10-batches-bin/, aclImdb/"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default docs/results)"
    )
    parser.add_argument("--seed", type=int, default=0, help="root PRNG seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names and n not in ("all", "list")]
    if unknown:
        parser.error(
            f"unknown study name(s): {', '.join(unknown)}. Valid names: {', '.join(names)} "
            "(or 'all', 'list')"
        )
    if "list" in args.names and len(args.names) > 1:
        parser.error("'list' takes no other names")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not an existing folder")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} exists and is not a folder")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from experiments import load_studies

    studies = load_studies()
    args = parse_args(argv, list(studies))
    if args.names == ["list"]:
        width = max(map(len, studies))
        for s in studies.values():
            flag = "*" if s.default else " "
            print(f"{flag} {s.name:<{width}}  {s.title}  ({s.source})")
        print("\n* = in the default selection (no names given)")
        return 0

    from experiments._core import Context
    from experiments._report import table
    from experiments._runner import run_study, write_index

    if not args.names:
        selected = [s for s in studies.values() if s.default]
    elif "all" in args.names:
        selected = list(studies.values())
    else:
        selected = [studies[n] for n in dict.fromkeys(args.names)]
    ctx = Context(
        quick=args.quick,
        data_dir=args.data_dir,
        seed=args.seed,
        show_progress=not args.no_progress,
    )
    rows, failed = [], []
    t0 = time.perf_counter()
    for study in selected:
        print(f"== {study.name}: {study.title}", flush=True)
        try:
            run = run_study(study, ctx, args.out)
        except Exception:  # one broken study must not lose the others' results
            traceback.print_exc()
            failed.append(study.name)
            rows.append([study.name, "FAILED (traceback above)", "—"])
            continue
        print(f"   {run['headline']}  [{run['seconds']:.0f} s]", flush=True)
        rows.append([study.name, run["headline"], f"{run['seconds']:.0f}"])
    index = write_index(args.out, studies)
    print("\n" + table(["study", "headline (measured vs document)", "seconds"], rows))
    print(
        f"\n{len(selected)} studies in {time.perf_counter() - t0:.0f} s; pages in {args.out}, index {index}"
    )
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
