"""Batch scoring's output folder: refused when it exists, staged beside it, renamed into place.

Parts are written into a hidden staging folder next to the output,
``.<output>.<host>.<pid>.<random>.partial``, which becomes the output by one rename once every
part is written: a reader never sees a half-written output, and a killed job leaves only its
staging folder, which the next job writing the same output removes (its process is gone).
An overwrite moves the old output aside first (``.<output>.<host>.<pid>.old``); killed between
the two renames, the next job puts the old output back.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from .._numbers import is_number
from ..errors import AlreadyExists, InvalidInput

__all__ = ["check_output", "new_folder", "new_staging", "publish"]

_PART = re.compile(r"^part-\d{5}\.parquet$")


def check_output(target: Path, input: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Refuse an existing output (unless ``overwrite`` and it holds parts only), or one inside
    the input folder (the next job over that folder would score the predictions too)."""
    _recover(target)
    folder = Path(input).absolute()
    if folder.is_dir() and target.is_relative_to(folder):
        raise InvalidInput(
            f"output {str(target)!r} is inside the input folder {str(folder)!r}; write it "
            "elsewhere, or the next job over that folder would score the predictions too"
        )
    if not target.exists():
        return
    if not overwrite:
        raise AlreadyExists(
            f"output {str(target)!r} exists; choose another folder, or overwrite it "
            "(--overwrite, overwrite=True)"
        )
    _check_parts_only(target)


def _check_parts_only(target: Path) -> None:
    if not target.is_dir() or any(not _PART.match(p.name) for p in target.iterdir()):
        raise InvalidInput(
            f"output {str(target)!r} is not a batch-scoring output (only part-NNNNN.parquet "
            "files); it is not overwritten: remove it yourself or choose another folder"
        )


def new_staging(target: Path) -> Path:
    """A new staging folder for ``target``, after removing those of killed jobs."""
    prefix = _prefix(target)
    for folder in target.parent.glob(f"{glob.escape(prefix)}*.partial"):
        pid = folder.name[len(prefix) :].split(".", 1)[0]
        if is_number(pid) and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return new_folder(target.parent, f"{prefix}{os.getpid()}", ".partial")


def new_folder(parent: Path, prefix: str, suffix: str = "") -> Path:
    """A new uniquely named folder (``os.mkdir``: with the umask's permissions, unlike
    ``mkdtemp``'s 0700, since it becomes the output)."""
    while True:
        folder = parent / f"{prefix}.{secrets.token_hex(4)}{suffix}"
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


def publish(staging: Path, target: Path, *, overwrite: bool) -> None:
    """Rename the finished staging folder to ``target`` (``overwrite``: replacing an old
    output). Without ``overwrite``, an output that appeared while this job scored (another
    job's) is refused, never replaced: the rename itself fails on a folder holding files, so
    no earlier check can go stale before it."""
    if not overwrite or not target.exists():
        try:
            staging.rename(target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise AlreadyExists(
                f"output {str(target)!r} appeared while this job scored (another job writing "
                "it?) and is left as it is; choose another folder, or overwrite it "
                "(--overwrite, overwrite=True)"
            ) from None
        return
    _check_parts_only(target)  # what replaced it meanwhile is not overwritten either
    old = target.with_name(f"{_prefix(target)}{os.getpid()}.old")
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _recover(target: Path) -> None:
    """Undo an overwrite killed between its two renames: the old output, moved aside, comes
    back if nothing took its place (else it is removed), so it is never silently lost."""
    prefix = _prefix(target)
    for old in target.parent.glob(f"{glob.escape(prefix)}*.old"):
        pid = old.name[len(prefix) : -len(".old")]
        if not is_number(pid) or _alive(int(pid)):
            continue
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.rename(target)


def _prefix(target: Path) -> str:
    # Only this host's folders are judged by their pid: another host's, on a shared file
    # system, may belong to a live job.
    return f".{target.name}.{socket.gethostname()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
