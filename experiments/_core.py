"""The contract between the runner and a study: a context in, a result out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from matplotlib.figure import Figure

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a study may look at: the size preset, where optional data lives, a progress bar.

    Attributes:
        quick: tiny settings (seconds per study) instead of the published ones.
        data_dir: a folder the user pointed at holding MNIST / CIFAR-10 / IMDB, or ``None``.
        seed: the root PRNG seed; every study derives its keys from it.
        show_progress: draw tqdm bars (off in tests).
    """

    quick: bool = False
    data_dir: Path | None = None
    seed: int = 0
    show_progress: bool = True

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
        """Wrap ``iterable`` in a tqdm bar labelled ``desc`` (a plain iterator when disabled)."""
        from tqdm.auto import tqdm

        yield from tqdm(
            iterable, desc=desc, total=total, disable=not self.show_progress, leave=False
        )

    def pick(self, quick: T, full: T) -> T:
        """``quick`` under ``--quick``, else ``full``."""
        return quick if self.quick else full


@dataclasses.dataclass
class StudyResult:
    """What a study hands back; the runner writes it to disk.

    Attributes:
        numbers: everything measured (JSON-serialisable: dicts, lists, numbers, strings); the
            runner adds the settings and timing.
        page: the Markdown body of the study's page (the runner adds the title and footer).
        figures: ``{file stem: matplotlib figure}``; written as ``<study>_<stem>.png``.
        headline: one line for the summary table: measured figure vs the document's figure.
        data: which data produced the numbers (one line).
    """

    numbers: dict[str, Any]
    page: str
    figures: dict[str, Figure]
    headline: str
    data: str


@dataclasses.dataclass(frozen=True)
class Study:
    """A registered study: its CLI name, title, source, whether it is in the default selection."""

    name: str
    title: str
    source: str
    run: Callable[[Context], StudyResult]
    default: bool = True
