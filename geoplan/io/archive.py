"""Zip safety: inspect an archive's central directory before a single byte is unpacked.

Imports come from strangers (a township's shared folder, a contractor's email). A zip can name members
"../../etc/cron.d/x", hold symlinks, or inflate a few kilobytes into gigabytes; all of that is refused from the
central directory, and extraction then streams into a private temporary directory with its own byte budget in
case the directory lies about sizes.
"""

from __future__ import annotations

import logging
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from geoplan.errors import UnreadableFileError

log = logging.getLogger(__name__)

MAX_MEMBERS = 1000
MAX_RATIO = 100.0
"""Largest accepted uncompressed/compressed ratio (text geodata compresses 5-20x; bombs 1000x and more)."""
RATIO_FLOOR_BYTES = 1024 * 1024
"""A member below this size cannot hurt whatever its ratio (a 30 kB blank .dbf may compress 200x)."""
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class NotAZipError(Exception):
    """The bytes are not a zip archive at all (as opposed to an unsafe one); readers report it in their words."""


def _refuse(name: str, reason: str) -> UnreadableFileError:
    return UnreadableFileError(f"{name}: unsafe or unreadable zip archive: {reason}")


def _check_member_name(name: str, archive: str) -> None:
    """Refuse absolute paths, drive letters and '..' components (both slash styles: Windows tools use '\\')."""
    if "\x00" in name:
        raise _refuse(archive, f"member name {name!r} contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise _refuse(archive, f"member {name!r} has an absolute path")
    if ".." in re.split(r"[\\/]", name):
        raise _refuse(archive, f"member {name!r} points outside the archive ('..')")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def check_members(zf: zipfile.ZipFile, *, max_bytes: int, archive: str) -> list[zipfile.ZipInfo]:
    """Validate every member from the central directory; return the members in archive order."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _refuse(archive, f"{len(infos)} members (at most {MAX_MEMBERS})")
    total = compressed = 0
    for info in infos:
        _check_member_name(info.filename, archive)
        if _is_symlink(info):
            raise _refuse(archive, f"member {info.filename!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise _refuse(archive, f"member {info.filename!r} is encrypted")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise _refuse(archive, f"member {info.filename!r} expands {ratio:.0f}x (zip bomb?)")
        total += info.file_size
        compressed += info.compress_size
    if total > max_bytes:
        raise _refuse(archive, f"unpacks to {total:,} bytes (limit {max_bytes:,})")
    if total > RATIO_FLOOR_BYTES and total / max(compressed, 1) > MAX_RATIO:
        raise _refuse(archive, f"expands {total / max(compressed, 1):.0f}x overall (zip bomb?)")
    return infos


@contextmanager
def open_zip(path: Path, *, max_bytes: int, archive: str) -> Iterator[zipfile.ZipFile]:
    """Open a zip whose central directory passed `check_members`."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise NotAZipError(str(exc)) from None
    with zf:
        check_members(zf, max_bytes=max_bytes, archive=archive)
        yield zf


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, archive: str) -> int:
    """Stream one member to disk, stopping as soon as it exceeds its declared size or the budget."""
    limit = min(info.file_size, budget)
    written = 0
    with zf.open(info) as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise _refuse(archive, f"member {info.filename!r} unpacks beyond its declared size")
            dst.write(chunk)
    return written


def _extract_all(zf: zipfile.ZipFile, root: Path, *, max_bytes: int, archive: str) -> None:
    budget = max_bytes
    resolved_root = root.resolve()
    for info in zf.infolist():
        target = (root / PurePosixPath(info.filename.replace("\\", "/"))).resolve()
        if not target.is_relative_to(resolved_root):  # belt and braces after _check_member_name
            raise _refuse(archive, f"member {info.filename!r} points outside the archive")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            budget -= _copy_member(zf, info, target, budget, archive)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, OSError) as exc:
            raise _refuse(archive, f"member {info.filename!r}: {exc}") from None


@contextmanager
def extracted(path: Path, *, max_bytes: int, archive: str) -> Iterator[Path]:
    """Unpack a checked zip into a private temporary directory that is removed afterwards, whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix="geoplan-unzip-"))
    try:
        with open_zip(path, max_bytes=max_bytes, archive=archive) as zf:
            _extract_all(zf, tmp, max_bytes=max_bytes, archive=archive)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        log.debug("removed %s", tmp)


def pack(files: list[Path], target: Path) -> None:
    """Write `files` (flat, by name) into a new deflated zip at `target`."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in files:
            zf.write(file, arcname=file.name)
