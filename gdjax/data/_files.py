"""File helpers shared by the readers: finding files, actionable errors, safe extraction."""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DataFileError", "extract_archive", "find_file", "read_bytes"]


class DataFileError(ValueError):
    """A data file exists but is truncated, corrupt or mislabelled.

    A subclass of ``ValueError``; the message names the file and the check that failed.
    """

    def __init__(self, path: str | os.PathLike, check: str) -> None:
        self.path = str(path)
        self.check = check
        super().__init__(f"{self.path}: {check}")


def as_path(name: str, value: object) -> Path:
    """Convert a ``str``/``PathLike`` argument to a ``Path``, or raise ``TypeError`` naming it."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike; got {type(value).__name__}")
    return Path(value)


def find_file(directory: Path, candidates: Sequence[str], how_to_get: str) -> Path:
    """Return the first of ``directory / c`` for ``c`` in ``candidates`` that is a file.

    Raises:
        FileNotFoundError: naming every path tried and how to provide the file.
    """
    for name in candidates:
        path = directory / name
        if path.is_file():
            return path
    tried = ", ".join(str(directory / c) for c in candidates)
    raise FileNotFoundError(f"no data file found; looked for: {tried}. {how_to_get}")


def read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping names ending in ``.gz``.

    Raises:
        DataFileError: if a ``.gz`` file is not valid gzip or is truncated.
    """
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise DataFileError(path, f"not a valid or complete gzip file ({e})") from e


def extract_archive(archive: str | os.PathLike, target_dir: str | os.PathLike) -> Path:
    """Extract a ``.tar``/``.tar.gz`` archive into ``target_dir``, refusing unsafe members.

    Every member is checked *before* anything is written: absolute paths, ``..`` components,
    links, device files and anything else that would resolve outside ``target_dir`` raise an
    error, so an archive can never write outside its target folder.

    Args:
        archive: path of the archive (e.g. ``aclImdb_v1.tar.gz`` or ``cifar-10-binary.tar.gz``).
        target_dir: folder to extract into; created if missing.

    Returns:
        The resolved target folder.

    Raises:
        FileNotFoundError: if the archive does not exist.
        DataFileError: if the archive is corrupt or a member would land outside ``target_dir``.
    """
    archive = as_path("archive", archive)
    target = as_path("target_dir", target_dir).resolve()
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                dest = (target / m.name).resolve()
                if os.path.isabs(m.name) or ".." in Path(m.name).parts:
                    raise DataFileError(archive, f"member {m.name!r} has an unsafe path")
                if not dest.is_relative_to(target):
                    raise DataFileError(
                        archive, f"member {m.name!r} would extract outside {target}"
                    )
                if not (m.isfile() or m.isdir()):
                    raise DataFileError(
                        archive, f"member {m.name!r} is a link or special file; refused"
                    )
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataFileError(archive, f"not a valid or complete tar archive ({e})") from e
    return target
