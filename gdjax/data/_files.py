"""File helpers shared by the readers: finding files, actionable errors, safe extraction."""

from __future__ import annotations

import gzip
import lzma
import os
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

__all__ = ["DataFileError", "extract_archive", "find_file", "open_stream", "read_up_to"]

_CHUNK = 1 << 20
#: Default limits of :func:`extract_archive` (the IMDB archive holds ~100,000 files, ~0.5 GB).
MAX_ARCHIVE_BYTES = 4 << 30
MAX_ARCHIVE_MEMBERS = 200_000


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


def open_stream(path: Path) -> BinaryIO:
    """Open a file for binary reading; a name ending in ``.gz`` is gunzipped as it is read."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_up_to(stream: BinaryIO, path: Path, size: int) -> bytearray:
    """Read at most ``size`` bytes of ``stream``, in chunks of at most 1 MiB.

    Memory follows what the file really holds, never more than ``size``: a gzip file that
    inflates to far more than its header announced costs no more than the announced size.

    Raises:
        DataFileError: if a ``.gz`` stream is not valid gzip, is truncated or fails its CRC.
    """
    out = bytearray()
    try:
        while len(out) < size:
            chunk = stream.read(min(_CHUNK, size - len(out)))
            if not chunk:
                break
            out += chunk
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        if path.suffix != ".gz":
            raise
        raise DataFileError(path, f"not a valid or complete gzip file ({e})") from e
    return out


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return value


def extract_archive(
    archive: str | os.PathLike,
    target_dir: str | os.PathLike,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> Path:
    """Extract a ``.tar``/``.tar.gz`` archive into ``target_dir``, refusing unsafe members.

    The whole archive is read and checked *before* anything is written: absolute paths, ``..``
    components, links, device files and anything else that would resolve outside
    ``target_dir`` raise an error, so an archive can never write outside its target folder;
    more than ``max_members`` members, or members announcing more than ``max_bytes`` bytes in
    total, raise an error (a small archive cannot fill the disk); and the compressed stream is
    read to its end, so a truncated or damaged ``.gz`` fails before writing.

    Args:
        archive: path of the archive (e.g. ``aclImdb_v1.tar.gz`` or ``cifar-10-binary.tar.gz``).
        target_dir: folder to extract into; created if missing.
        max_bytes: most bytes the extracted files may hold together (default 4 GiB).
        max_members: most members (files and folders) the archive may hold (default 200,000).

    Returns:
        The resolved target folder.

    Raises:
        FileNotFoundError: if the archive does not exist.
        ValueError: if ``max_bytes`` or ``max_members`` is not an int >= 1.
        DataFileError: if the archive is corrupt or truncated, exceeds a limit, or a member
            would land outside ``target_dir``.
    """
    archive = as_path("archive", archive)
    target = as_path("target_dir", target_dir).resolve()
    _positive_int("max_bytes", max_bytes)
    _positive_int("max_members", max_members)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members, total = [], 0
            for m in tar:  # headers only: each member's data is skipped, not kept
                if len(members) == max_members:
                    raise DataFileError(
                        archive,
                        f"more than max_members={max_members} members; pass a larger "
                        "max_members if you trust the archive",
                    )
                _check_member(archive, target, m)
                total += m.size
                if total > max_bytes:
                    raise DataFileError(
                        archive,
                        f"its files hold more than max_bytes={max_bytes} bytes ({total} up to "
                        f"member {m.name!r}); pass a larger max_bytes if you trust the archive",
                    )
                members.append(m)
            _read_to_end(tar, archive, max_bytes)
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise DataFileError(archive, f"not a valid or complete tar archive ({e})") from e
    return target


def _check_member(archive: Path, target: Path, m: tarfile.TarInfo) -> None:
    dest = (target / m.name).resolve()
    if os.path.isabs(m.name) or ".." in Path(m.name).parts:
        raise DataFileError(archive, f"member {m.name!r} has an unsafe path")
    if not dest.is_relative_to(target):
        raise DataFileError(archive, f"member {m.name!r} would extract outside {target}")
    if not (m.isfile() or m.isdir()):
        raise DataFileError(archive, f"member {m.name!r} is a link or special file; refused")


def _read_to_end(tar: tarfile.TarFile, archive: Path, max_bytes: int) -> None:
    """Read what follows the last member: a truncated or damaged compressed stream fails here.

    (tarfile stops at the end-of-archive blocks, before a ``.gz``'s CRC and length are read.)
    """
    rest = 0
    while chunk := tar.fileobj.read(_CHUNK):
        rest += len(chunk)
        if rest > max_bytes:
            raise DataFileError(
                archive, f"more than max_bytes={max_bytes} bytes after its last member"
            )
