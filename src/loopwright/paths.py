"""The one resolver for user-supplied relative paths (artifact paths, dataset paths ...).

Every path a user hands to Loopwright goes through :func:`normalize_relpath` (pure string rules)
or :func:`safe_join` (the same rules, then a check on the real filesystem). Rules, all raising
:class:`~loopwright.errors.UnsafePath` with a message naming the path and the fix:

- the path is a ``str`` (bytes are refused: decode them with ``os.fsdecode`` first), non-empty,
  valid Unicode (no lone surrogates) and at most 4096 bytes of UTF-8, each segment at most 255;
- no control characters (Unicode category ``Cc``: NUL, C0, DEL, C1);
- relative POSIX only: no leading ``/`` (so no UNC ``//host/share``), no backslash, no Windows
  drive (``C:`` starting the first segment, after any ``./``);
- no ``..`` segment, nor any segment made only of dots and spaces other than ``.`` (``...``,
  ``.. ``), which Windows trims to ``..``;
- no first segment (after any ``./``) starting with ``~`` (``expanduser`` and shells read it as a
  home folder);
- no percent-escape that a decoding layer could turn into a separator, dot, control character or
  another escape (``%2e %2f %5c %25 %00-%1f %7f``, overlong UTF-8 lead bytes, IIS ``%uXXXX``);
- no character that Unicode compatibility normalization (NFKC) folds to one of ``/ \\ . : % ~``
  or a control character (e.g. U+FF0F FULLWIDTH SOLIDUS, U+2024 ONE DOT LEADER, U+2026 ...), no
  slash look-alike (U+2215 DIVISION SLASH, U+2044, U+2216, U+29F5, U+29F8, U+29F9), and the NFKC
  form of the whole path must pass these rules too.

``.`` segments, repeated slashes and a trailing slash are folded away. Other characters are kept
as given (no Unicode normalization of the result), so names round-trip exactly.

Example:
    >>> normalize_relpath("models//./v1/model.pkl")
    'models/v1/model.pkl'
    >>> normalize_relpath("../etc/passwd", what="artifact path")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopwright.errors.UnsafePath: artifact path '../etc/passwd' is unsafe: '..' segments are ...
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import unicodedata

from .errors import UnsafePath

__all__ = [
    "MAX_PATH_BYTES",
    "MAX_SEGMENT_BYTES",
    "normalize_relpath",
    "open_folder_nofollow",
    "safe_join",
]

MAX_PATH_BYTES = 4096
MAX_SEGMENT_BYTES = 255

_RELATIVE_FIX = "give a path relative to its root"
_DRIVE = re.compile(r"[A-Za-z]:")
_DANGEROUS_ESCAPE = re.compile(
    r"%(?:2e|2f|5c|25|[01][0-9a-f]|7f|c0|c1|e0%[89][0-9a-f]|f0%8[0-9a-f]|u[0-9a-f]{4})",
    re.IGNORECASE,
)
_FOLD_TARGETS = frozenset("/\\.:%~")
# Slash look-alikes that NFKC keeps but other layers (Windows "best-fit" code pages, font-based
# review) read as a separator.
_SEPARATOR_LOOKALIKES = frozenset("\u2044\u2215\u2216\u29f5\u29f8\u29f9")


def normalize_relpath(path: str, *, what: str = "path") -> str:
    """Validate a user-supplied relative POSIX path and return its normal form.

    The normal form is ``"a/b/c"``: no leading or trailing slash, no empty or ``.`` segments.

    Args:
        path: the path as the user gave it.
        what: how to name the path in error messages, e.g. ``"artifact path"``.

    Raises:
        UnsafePath: naming the path and the rule it breaks (see the module docstring).

    Example:
        >>> normalize_relpath("./data/train.csv", what="dataset path")
        'data/train.csv'
    """
    if not isinstance(path, str):
        raise UnsafePath(
            f"{what} must be a str, not {type(path).__name__}; "
            "decode bytes paths first (e.g. with os.fsdecode)"
        )
    problem = _size_problem(path) or _structure_problem(path) or _fold_problem(path)
    if problem is None:
        folded = unicodedata.normalize("NFKC", path)
        if folded != path and (inner := _structure_problem(folded)) is not None:
            problem = f"under Unicode compatibility normalization it reads {folded!r}, and {inner}"
    if problem is not None:
        raise UnsafePath(f"{what} {_show(path)} is unsafe: {problem}")
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if not segments:
        raise UnsafePath(
            f"{what} {_show(path)} is empty once '.' segments and slashes are removed; "
            "name a file or folder under the root"
        )
    return "/".join(segments)


def safe_join(root: str | os.PathLike[str], path: str, *, what: str = "path") -> pathlib.Path:
    """Return ``root / normalize_relpath(path)``, refusing symlinks that lead outside ``root``.

    Besides the string rules of :func:`normalize_relpath`, the result is resolved on the real
    filesystem: ``os.path.realpath`` of the result must lie inside ``realpath(root)``, so no
    existing symlink along the way (dangling ones included) may point outside the root.
    Components that do not exist yet are fine. This is a check at call time: code that writes
    into a folder other users can modify must still not follow symlinks created afterwards.

    Args:
        root: the folder the path is relative to (it need not exist yet).
        path: the user-supplied relative path.
        what: how to name the path in error messages, e.g. ``"artifact path"``.

    Raises:
        UnsafePath: if the path breaks a string rule or escapes ``root`` through a symlink.

    Example:
        >>> safe_join("/srv/artifacts", "run1//model/./weights.bin")
        PosixPath('/srv/artifacts/run1/model/weights.bin')
    """
    joined = pathlib.Path(root) / normalize_relpath(path, what=what)
    real_root = os.path.realpath(root)
    real = os.path.realpath(joined)
    if os.path.commonpath([real_root, real]) != real_root:
        # The message deliberately omits both real paths: it may reach remote API clients.
        raise UnsafePath(
            f"{what} {_show(path)} is unsafe: it goes through a symbolic link that points "
            "outside its root; remove the link or give a path that does not cross it"
        )
    return joined


def open_folder_nofollow(root: str | os.PathLike[str], below: str, *, create: bool = False) -> int:
    """A descriptor of the folder ``root/below``, opened one folder at a time from ``root`` down,
    none of them followed if it is a symbolic link (``O_NOFOLLOW`` relative to the folder above).

    For folders other users can write to, where a link could appear after any check by
    :func:`safe_join`. ``root`` itself (the operator's folder) may be a link. ``below`` must
    already be checked (:func:`normalize_relpath`); empty and ``.`` segments are skipped. With
    ``create``, missing folders are made on the way. The caller closes the descriptor.

    Raises:
        OSError: a folder is missing (without ``create``), is a symbolic link or not a folder.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in [p for p in below.split("/") if p not in ("", ".")]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _show(path: str) -> str:
    """The path quoted for a message, cut short so a huge input cannot flood logs."""
    shown = repr(path)
    return shown if len(shown) <= 120 else shown[:100] + "...'"


def _size_problem(path: str) -> str | None:
    if path == "":
        return "it is empty; name a file or folder under the root"
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return "it contains lone surrogate code points (undecodable bytes); use valid UTF-8 names"
    if size > MAX_PATH_BYTES:
        return f"it is {size} bytes long (UTF-8), over the {MAX_PATH_BYTES}-byte limit; shorten it"
    return None


def _structure_problem(path: str) -> str | None:
    """The first ASCII-level rule ``path`` breaks, or ``None``."""
    for char in path:
        if unicodedata.category(char) == "Cc":
            return f"control character {char!r} is not allowed; remove it"
    if "\\" in path:
        return "backslashes are not allowed; use '/' as the separator"
    if path.startswith("/"):
        kind = "UNC paths ('//host/share')" if path.startswith("//") else "absolute paths"
        return f"{kind} are not allowed; {_RELATIVE_FIX}"
    if (escape := _DANGEROUS_ESCAPE.search(path)) is not None:
        return (
            f"percent-escape {escape.group()!r} is not allowed (a decoding layer could turn it "
            "into a separator, a dot, a control character or another escape); "
            "pass the decoded name"
        )
    segments = path.split("/")
    named = [segment for segment in segments if segment not in ("", ".")]
    # Checked on the first named segment, because './C:' normalizes to 'C:'.
    if named and _DRIVE.match(named[0]):
        return f"Windows drive letters are not allowed; {_RELATIVE_FIX}"
    if named and named[0].startswith("~"):
        return (
            "a first segment starting with '~' is not allowed (it reads as a home folder); "
            "rename it or put it inside a folder"
        )
    for segment in segments:
        if segment == "..":
            return f"'..' segments are not allowed; {_RELATIVE_FIX}"
        if segment not in ("", ".") and not segment.strip(". "):
            return (
                f"segment {segment!r} is made only of dots and spaces, which Windows trims "
                f"to '..', '.' or nothing; {_RELATIVE_FIX}"
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"segment {_show(segment)} is over {MAX_SEGMENT_BYTES} bytes (UTF-8); shorten it"
    return None


def _fold_problem(path: str) -> str | None:
    """A non-ASCII character that other layers may read as path syntax, or ``None``."""
    for char in path:
        if char.isascii():
            continue
        if char in _SEPARATOR_LOOKALIKES:
            return (
                f"character {_describe(char)} is not allowed because it looks like, and some "
                "layers map it to, a path separator; use another character"
            )
        folded = unicodedata.normalize("NFKC", char)
        if any(c in _FOLD_TARGETS or unicodedata.category(c) == "Cc" for c in folded):
            return (
                f"character {_describe(char)} is not allowed because Unicode compatibility "
                f"normalization turns it into {folded!r}; use another character"
            )
    return None


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"
