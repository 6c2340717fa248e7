"""How a workspace file's bytes get a name in a local blob store: reflink, hardlink or copy.

These are DVC's cache types, tried in the configured order until one works (``data_link``):

- ``reflink``: a copy-on-write clone (Btrfs, XFS with reflink, bcachefs; Linux ``FICLONE``). The
  blocks are shared until either side is written, so it is as safe as a copy and nearly free.
- ``hardlink``: the same file under a second name. Free, but an in-place edit of the workspace
  file is an edit of the stored blob. The blob is made read-only, and with it the workspace file
  (it is the same inode): editors then refuse to write in place, or write a new file and rename
  it over the old one, which leaves the blob intact. Root ignores permissions, so an edit can
  still get through; it is caught the next time the blob is read, since every read verifies the
  hash (``loopwright data checkout`` and ``BlobStore.verify`` report it). The blob is exactly as
  durable as the workspace file: the add does not fsync it.
- ``copy``: the bytes once more (in the kernel). Always possible.

A mode the filesystem cannot do (another filesystem, no reflink support, a file owned by someone
else) falls through to the next one.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import LINK_MODES
from ..errors import InvalidInput

__all__ = ["LINK_MODES", "check_order", "place"]

_FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
# Errors that mean "this mode is not possible here", not "something is wrong".
_UNSUPPORTED = frozenset(
    {
        errno.EXDEV,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EINVAL,
        errno.ENOTTY,
        errno.ENOSYS,
        errno.EPERM,
        errno.EACCES,
        errno.EMLINK,
    }
)


def check_order(order: Sequence[str]) -> tuple[str, ...]:
    """The order as a tuple; an unknown mode or an empty order is an ``InvalidInput``."""
    unknown = [mode for mode in order if mode not in LINK_MODES]
    if unknown or not order:
        raise InvalidInput(
            f"link modes {list(order)!r} are not valid: give one or more of "
            f"{', '.join(LINK_MODES)}, in the order to try them"
        )
    return tuple(order)


def _reflink(source: str | os.PathLike[str], dest: Path) -> None:
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOTSUP, "reflinks are implemented for Linux only")
    import fcntl

    with open(source, "rb") as src:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
        except BaseException:
            os.close(fd)
            dest.unlink(missing_ok=True)
            raise
        os.close(fd)
    os.chmod(dest, 0o444)


def _hardlink(source: str | os.PathLike[str], dest: Path) -> None:
    os.link(source, dest)
    try:
        os.chmod(dest, 0o444)  # protects the blob, and the workspace file with it
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _copy(source: str | os.PathLike[str], dest: Path) -> None:
    shutil.copyfile(source, dest)
    os.chmod(dest, 0o444)


_PLACERS = {"reflink": _reflink, "hardlink": _hardlink, "copy": _copy}


def place(source: str | os.PathLike[str], dest: Path, order: Sequence[str]) -> str:
    """Give ``source``'s content the new name ``dest`` (read-only) by the first mode in
    ``order`` that works here; return that mode. ``dest``'s folder must exist; the caller
    checks the content afterwards."""
    tried = []
    for mode in order:
        try:
            _PLACERS[mode](source, dest)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED or mode == "copy":
                raise
            tried.append(f"{mode} ({exc.strerror or exc})")
            continue
        return mode
    raise InvalidInput(
        f"cannot store {os.fspath(source)}: none of the link modes {', '.join(tried)} works "
        "here; add 'copy' to the data_link setting (or --link)"
    )
